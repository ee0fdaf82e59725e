package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// The operator's files: a Grafana dashboard and Prometheus alert rules
// (deploy/README.md says how to load them).
const (
	dashboardFile = "../../deploy/grafana/lobbyd.json"
	alertsFile    = "../../deploy/prometheus/alerts.yml"
	runbookFile   = "../../docs/operations.md"
	runbookLink   = "docs/operations.md#alerts"
)

// promMetricName finds the metric names in a PromQL expression whose string
// literals were blanked: lobbyd's own and those of the Go and process
// collectors. (up and the other series Prometheus makes itself are not
// lobbyd's to export.)
var (
	promMetricName = regexp.MustCompile(`\b(?:lobbyd|process|go)_[a-z0-9_]+\b`)
	promString     = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
)

// metricNamesIn returns the metric names expr refers to. Label values such
// as queue="go_fast" are not names.
func metricNamesIn(expr string) []string {
	return promMetricName.FindAllString(promString.ReplaceAllString(expr, `""`), -1)
}

// missingMetrics returns, sorted, the names among referenced that exported
// (family name to type, as in /metrics' # TYPE lines) does not provide: a
// name is provided when it is an exported family, or a histogram's
// _bucket, _sum or _count series, or a summary's _sum or _count.
func missingMetrics(referenced []string, exported map[string]string) []string {
	var missing []string
	for _, name := range referenced {
		if provides(exported, name) {
			continue
		}
		if !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing
}

func provides(exported map[string]string, name string) bool {
	if _, ok := exported[name]; ok {
		return true
	}
	for suffix, types := range map[string][]string{
		"_bucket": {"histogram"}, "_sum": {"histogram", "summary"}, "_count": {"histogram", "summary"},
	} {
		if family, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(types, exported[family]) {
			return true
		}
	}
	return false
}

// grafanaDashboard is the part of a dashboard JSON model the tests read;
// the rest is walked as plain JSON.
type grafanaDashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID      int            `json:"id"`
	Type    string         `json:"type"`
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func readDashboard(t *testing.T) (grafanaDashboard, any) {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(raw, &d), "%s", dashboardFile)
	var tree any
	require.NoError(t, json.Unmarshal(raw, &tree))
	return d, tree
}

// dashboardQueries returns every PromQL string of the dashboard: each
// "expr" anywhere in it (panels, targets) and each query variable's query.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	d, tree := readDashboard(t)
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "expr" {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(tree)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		out = append(out, v.Definition)
		switch q := v.Query.(type) {
		case string:
			out = append(out, q)
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// alertRules is a Prometheus rule file. Decoding it with known fields only
// catches a misspelt key, which Prometheus would refuse.
type alertRules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlerts(t *testing.T) alertRules {
	t.Helper()
	f, err := os.Open(alertsFile)
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var r alertRules
	require.NoError(t, dec.Decode(&r), "%s", alertsFile)
	return r
}

// The dashboard is a Grafana JSON model with the data source and queue
// variables, no data source pinned by uid, and a query in every panel.
func TestDashboardIsValid(t *testing.T) {
	t.Parallel()
	d, tree := readDashboard(t)
	assert.GreaterOrEqual(t, d.SchemaVersion, 36)

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Name == "datasource" {
			assert.Equal(t, "prometheus", v.Query, "the datasource variable lists Prometheus data sources")
		}
		if v.Name == "queue" {
			assert.Equal(t, "label_values(lobbyd_queue_depth, queue)", v.Definition)
		}
	}
	assert.Equal(t, "datasource", vars["datasource"])
	assert.Equal(t, "query", vars["queue"])

	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "datasource" {
					ds, _ := e.(map[string]any)
					if ds == nil || ds["type"] != "grafana" { // the built-in annotations
						uid := e
						if ds != nil {
							uid = ds["uid"]
						}
						assert.Equal(t, "${datasource}", uid, "%s.datasource: no data source uid is pinned", path)
					}
				}
				walk(e, path+"."+k)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(tree, "dashboard")

	ids := map[int]string{}
	panels := 0
	var check func(ps []grafanaPanel)
	check = func(ps []grafanaPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Type == "row" {
				check(p.Panels)
				continue
			}
			panels++
			assert.NotEmpty(t, p.Title, "panel %d", p.ID)
			exprs := 0
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) != "" {
					exprs++
				}
			}
			assert.Positive(t, exprs, "panel %q has a target with a query", p.Title)
		}
	}
	check(d.Panels)
	assert.Positive(t, panels)
}

// The alert rules are a valid rule file: every rule an alert with an
// expression, a severity, a summary and the runbook link.
func TestAlertRulesAreValid(t *testing.T) {
	t.Parallel()
	r := readAlerts(t)
	require.NotEmpty(t, r.Groups)
	duration := regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	names := map[string]bool{}
	for _, g := range r.Groups {
		require.NotEmpty(t, g.Name)
		require.NotEmpty(t, g.Rules, "group %s", g.Name)
		for i, rule := range g.Rules {
			where := fmt.Sprintf("group %s, rule %d (%s)", g.Name, i, rule.Alert)
			assert.NotEmpty(t, rule.Alert, "%s: alert", where)
			assert.Empty(t, rule.Record, "%s: only alerts here", where)
			assert.False(t, names[rule.Alert], "%s: alert names are unique", where)
			names[rule.Alert] = true
			assert.NotEmpty(t, strings.TrimSpace(rule.Expr), "%s: expr", where)
			if rule.For != "" {
				assert.Regexp(t, duration, rule.For, "%s: for", where)
			}
			assert.Contains(t, []string{"critical", "warning", "info"}, rule.Labels["severity"], "%s: labels.severity", where)
			assert.NotEmpty(t, rule.Annotations["summary"], "%s: annotations.summary", where)
			assert.NotEmpty(t, rule.Annotations["description"], "%s: annotations.description", where)
			assert.Equal(t, runbookLink, rule.Annotations["runbook"], "%s: annotations.runbook", where)
		}
	}
}

// The runbook the alerts link to has an Alerts section that names every
// alert.
func TestAlertRunbookNamesEveryAlert(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(runbookFile)
	require.NoError(t, err)
	doc := string(raw)
	start := regexp.MustCompile(`(?m)^#+ Alerts\s*$`).FindStringIndex(doc)
	require.NotNil(t, start, "%s has an Alerts heading (the anchor #alerts)", runbookFile)
	section := doc[start[1]:]
	if end := regexp.MustCompile(`(?m)^#{1,3} `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	for _, g := range readAlerts(t).Groups {
		for _, rule := range g.Rules {
			assert.Contains(t, section, rule.Alert, "%s#alerts says what %s means and what to do", runbookFile, rule.Alert)
		}
	}
}

// Every metric the dashboard and the alerts query is one lobbyd exports.
// Labelled families appear in /metrics only once a label set was used, so
// the test drives a lobbyd through what makes each appear: a refused
// handshake, an error reply, a binary frame, an expired ticket, a match
// whose first RequestPartyService fails and is retried, and Redis failing
// for a moment.
func TestDashboardAndAlertMetricsAreExported(t *testing.T) {
	t.Parallel()
	referenced := map[string][]string{} // name -> the files querying it
	for file, exprs := range map[string][]string{dashboardFile: dashboardQueries(t), alertsFile: alertExprs(t)} {
		for _, e := range exprs {
			for _, name := range metricNamesIn(e) {
				if !slices.Contains(referenced[name], file) {
					referenced[name] = append(referenced[name], file)
				}
			}
		}
	}
	require.NotEmpty(t, referenced)
	names := make([]string, 0, len(referenced))
	for name := range referenced {
		names = append(names, name)
	}
	sort.Strings(names)

	exported := exportedByDrivenLobbyd(t, names)

	t.Run("an unknown name is missing", func(t *testing.T) {
		assert.Equal(t, []string{"lobbyd_connections_bucket", "lobbyd_no_such_metric"},
			missingMetrics([]string{"lobbyd_no_such_metric", "lobbyd_connections", "lobbyd_connections_bucket",
				"lobbyd_ticket_wait_seconds_bucket", "go_goroutines"}, exported),
			"a bogus name, and a histogram suffix on a gauge, are reported")
	})
	for _, name := range missingMetrics(names, exported) {
		t.Errorf("%s (queried by %s) is not exported by lobbyd", name, strings.Join(referenced[name], ", "))
	}
}

func alertExprs(t *testing.T) []string {
	var out []string
	for _, g := range readAlerts(t).Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

// dashboardQueues: a queue that matches pairs, and one whose tickets
// expire after a second.
const dashboardQueues = `queues:
  - name: default
    maxUsers: 2
    regions: [EastUs]
    playfab: {maxDevices: 2, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
  - name: brief
    maxUsers: 2
    regions: [EastUs]
    playfab: {maxDevices: 2, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
    ticketTimeout: 1s
    maxWait: 1s
`

// exportedByDrivenLobbyd starts lobbyd (in-process, through run), drives
// it through the events that label its vectors, and returns the families
// its /metrics showed (name to type), once every one of want is there or
// a few seconds have passed.
func exportedByDrivenLobbyd(t *testing.T, want []string) map[string]string {
	t.Helper()
	m := miniredis.RunT(t)
	queues := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(queues, []byte(dashboardQueues), 0o600))
	// Every RequestPartyService fails until the test has seen one fail.
	srv, fake := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake, Faults: fakeplayfab.Faults{ErrorRate: 1}},
		map[string]string{"LOBBYD_REDIS_URL": "redis://" + m.Addr(), "LOBBYD_CONFIG": queues, "LOBBYD_LOG_LEVEL": "error"})
	exported := map[string]string{}
	scrape := func() map[string]string {
		for name, typ := range scrapeFamilies(t, srv.URL) {
			exported[name] = typ
		}
		return exported
	}

	h := dial(t, srv.wsURL(), bearer("not.a.jwt"))
	require.Equal(t, http.StatusUnauthorized, h.status, "a refused handshake")

	solo := srv.player(t, "solo")
	r := solo.Request("queue.join", map[string]any{"queue": "no-such-queue"})
	require.False(t, r.OK(), "an error reply: %v", r)
	ticket := solo.ok(t, "queue.join", map[string]any{"queue": "brief"}).Obj("ticket").Str("ticketId")

	a, b := srv.player(t, "a"), srv.player(t, "b")
	a.ok(t, "queue.join", map[string]any{"queue": "default"})
	b.ok(t, "queue.join", map[string]any{"queue": "default"})
	storetest.Eventually(t, 10*time.Second, func() bool { return fake.Stats().Errors > 0 }, "a RequestPartyService failed")
	fake.SetFaults(fakeplayfab.Faults{})
	a.Next("match.ready")
	b.Next("match.ready")

	abuser := srv.player(t, "abuser")
	require.NoError(t, abuser.Conn.WriteMessage(websocket.BinaryMessage, []byte{1}))
	require.Equal(t, websocket.CloseUnsupportedData, abuser.CloseCode(), "an abuse disconnect")

	for {
		tk := solo.Next("queue.state").Obj("ticket")
		if tk.Str("ticketId") == ticket && tk.Str("status") != "searching" {
			require.Equal(t, "expired", tk.Str("status"))
			break
		}
	}

	// Redis fails every command for a moment: its error counter gets a
	// label. (Waited for only if the family is wanted at all.)
	if slices.Contains(want, "lobbyd_redis_errors_total") {
		m.SetError("ERR failing on purpose (dashboards test)")
		waitFor(2*time.Second, func() bool { _, ok := scrape()["lobbyd_redis_errors_total"]; return ok })
		m.SetError("")
	}
	waitFor(3*time.Second, func() bool { return len(missingMetrics(want, scrape())) == 0 })
	return exported
}

// waitFor polls cond until it holds or within has passed, and reports
// whether it held; the caller reports what is missing.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling /metrics
	}
	return true
}

// scrapeFamilies returns the families of GET /metrics, name to type, from
// its # TYPE lines.
func scrapeFamilies(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); len(f) == 2 {
				out[f[0]] = f[1]
			}
		}
	}
	return out
}
