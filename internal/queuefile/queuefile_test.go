package queuefile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/partyalloc"
)

func TestExampleConfigLoads(t *testing.T) {
	f, err := Load("../../lobbyd.example.yaml")
	require.NoError(t, err)
	require.Len(t, f.Queues, 5)
	assert.Empty(t, f.Deprecated, "the example uses playfab: blocks")
	duel := f.Queues[0]
	assert.Equal(t, "duel", duel.Name)
	assert.Equal(t, 2, duel.MaxUsers)
	assert.Equal(t, 5*time.Minute, duel.TicketTimeout.D())
	assert.Equal(t, 400.0, duel.Skill.MaxWindow)
	assert.Equal(t, 120, duel.MaxLatencyMs)
	assert.Equal(t, partyalloc.Network{MaxDevices: 2, MaxDevicesPerUser: 1, MaxUsersPerDevice: 1, MaxEndpointsPerDevice: 1,
		DirectPeerConnectivity: "AnyPlatformType"}, duel.PlayFab)
	assert.Equal(t, 45*time.Second, f.Queues[2].MaxWait.D())
	assert.Equal(t, 2, f.Queues[2].PlayFab.MaxUsersPerDevice)

	ranked := f.Queues[3].Queue
	assert.Equal(t, matchmaker.TeamRule{Count: 2, Size: 5, MaxImbalance: 50, WidenPerSecond: 5, MaxImbalanceCap: 300}, ranked.Teams)
	assert.Equal(t, 5, ranked.MaxLobbyMembers())
	assert.Equal(t, matchmaker.SourceToken, ranked.Skill.Source)
	require.Len(t, ranked.Attributes, 2)
	assert.Equal(t, matchmaker.Attribute{Name: "platform", Type: domain.AttrString, Rule: matchmaker.RuleEqual, Source: matchmaker.SourceToken,
		Relax: []matchmaker.RelaxStep{{After: matchmaker.Duration(30 * time.Second), Rule: matchmaker.RuleAny}}}, ranked.Attributes[1])
	assert.Equal(t, []matchmaker.LatencyStep{{After: matchmaker.Duration(20 * time.Second), MaxLatencyMs: 150}}, ranked.LatencyRelax)
	maps := f.Queues[4].Queue.Attributes[0]
	assert.Equal(t, matchmaker.RuleIntersect, maps.Rule)
	assert.Equal(t, matchmaker.SourceClient, maps.Source, "client by default")
}

// A queue file written before teams and attributes loads to the same
// queues as before: none of the new rules, and no change to the others.
func TestOldFileLoadsWithoutRules(t *testing.T) {
	f, err := Parse([]byte("queues:\n  - name: squad\n    maxUsers: 4\n    regions: [WestUs]\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n" +
		"    skill: {initialWindow: 100, widenPerSecond: 5, maxWindow: 400}\n    maxLatencyMs: 120\n"))
	require.NoError(t, err)
	q := f.Queues[0].Queue
	assert.False(t, q.Teams.Enabled())
	assert.Empty(t, q.Attributes)
	assert.Empty(t, q.LatencyRelax)
	assert.Empty(t, q.Skill.Source, "client, as before")
	assert.Equal(t, 4, q.MaxLobbyMembers())
	assert.Equal(t, matchmaker.SkillRule{InitialWindow: 100, WidenPerSecond: 5, MaxWindow: 400}, q.Skill)
}

func TestConfigDefaults(t *testing.T) {
	f, err := Parse([]byte(`
queues:
  - name: q
    maxUsers: 2
    regions: [WestUs]
    playfab:
      maxDevices: 2
      maxDevicesPerUser: 1
      maxUsersPerDevice: 1
`))
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, f.Queues[0].TicketTimeout.D())
	assert.Equal(t, 90*time.Second, f.Queues[0].MaxWait.D())
	assert.False(t, f.Queues[0].Skill.Enabled())
	assert.Zero(t, f.Queues[0].PlayFab.MaxEndpointsPerDevice)
	assert.Empty(t, f.Queues[0].PlayFab.DirectPeerConnectivity)
}

// The old flat form and the playfab: block load to the same queue and
// network; the old form is listed once per queue, with the fields written.
func TestOldFlatFormLoadsAsTheBlock(t *testing.T) {
	old := "queues:\n" +
		"  - name: duel\n    maxUsers: 2\n    regions: [EastUs]\n    maxDevices: 2\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    maxEndpointsPerDevice: 1\n    directPeerConnectivity: AnyPlatformType\n" +
		"  - name: squad\n    maxUsers: 4\n    regions: [EastUs]\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n"
	block := "queues:\n" +
		"  - name: duel\n    maxUsers: 2\n    regions: [EastUs]\n    playfab:\n      maxDevices: 2\n      maxDevicesPerUser: 1\n      maxUsersPerDevice: 1\n      maxEndpointsPerDevice: 1\n      directPeerConnectivity: AnyPlatformType\n" +
		"  - name: squad\n    maxUsers: 4\n    regions: [EastUs]\n    playfab: {maxDevices: 4, maxDevicesPerUser: 1, maxUsersPerDevice: 1}\n"
	fromOld, err := Parse([]byte(old))
	require.NoError(t, err)
	fromBlock, err := Parse([]byte(block))
	require.NoError(t, err)
	assert.Equal(t, fromBlock.Queues, fromOld.Queues)
	assert.Equal(t, fromBlock.Networks(), fromOld.Networks())
	assert.Equal(t, partyalloc.NetworkConfiguration{MaxUsers: 2, MaxDevices: 2, MaxUsersPerDevice: 1, MaxDevicesPerUser: 1,
		MaxEndpointsPerDevice: 1, DirectPeerConnectivityOptions: "AnyPlatformType"}, fromOld.Networks()["duel"])

	assert.Empty(t, fromBlock.Deprecated)
	assert.Empty(t, fromBlock.Warning())
	assert.Equal(t, []Deprecated{
		{"duel", []string{"maxDevices", "maxDevicesPerUser", "maxUsersPerDevice", "maxEndpointsPerDevice", "directPeerConnectivity"}},
		{"squad", []string{"maxDevices", "maxDevicesPerUser", "maxUsersPerDevice"}},
	}, fromOld.Deprecated)
	w := fromOld.Warning()
	for _, want := range []string{`"duel" (maxDevices, maxDevicesPerUser, maxUsersPerDevice, maxEndpointsPerDevice, directPeerConnectivity)`,
		`"squad" (maxDevices, maxDevicesPerUser, maxUsersPerDevice)`, "playfab: block"} {
		assert.Contains(t, w, want)
	}
	assert.Equal(t, 1, strings.Count(w, "\n")+1, "one line")
}

func TestDefaultIsTheBuiltInQueue(t *testing.T) {
	f := Default()
	require.Len(t, f.Queues, 1)
	assert.Equal(t, "default", f.Queues[0].Name)
	assert.Equal(t, partyalloc.NetworkConfiguration{MaxUsers: 4, MaxDevices: 4, MaxUsersPerDevice: 1, MaxDevicesPerUser: 1,
		MaxEndpointsPerDevice: 1}, f.Networks()["default"], "as before the playfab: block")
	require.NoError(t, f.Queues[0].Validate())
}

func TestConfigErrorsNameFileQueueAndField(t *testing.T) {
	base := "queues:\n  - name: squad\n    maxUsers: 4\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    regions: [WestUs]\n"
	block := "queues:\n  - name: squad\n    maxUsers: 4\n    regions: [WestUs]\n    playfab:\n      maxDevices: 4\n      maxDevicesPerUser: 1\n      maxUsersPerDevice: 1\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"typo in a field", base + "    maxWiat: 30s\n", []string{"maxWiat", "line 8"}},
		{"out of PlayFab's range", strings.Replace(base, "maxDevices: 4", "maxDevices: 200", 1), []string{"queues[0]", `"squad"`, "maxDevices 200", "between 1 and 128"}},
		{"bad duration", base + "    ticketTimeout: soon\n", []string{"ticketTimeout", "line 8", "not a duration"}},
		{"maxWait past the timeout", base + "    ticketTimeout: 1m\n    maxWait: 2m\n", []string{"maxWait", "ticketTimeout"}},
		{"skill without maxWindow", base + "    skill:\n      initialWindow: 100\n", []string{"skill", "maxWindow"}},
		{"skill maxWindow below initial", base + "    skill:\n      initialWindow: 100\n      maxWindow: 50\n", []string{"skill.maxWindow"}},
		{"unknown peer option", base + "    directPeerConnectivity: Sometimes\n", []string{"directPeerConnectivity"}},
		{"no regions", strings.Replace(base, "    regions: [WestUs]\n", "", 1), []string{"regions"}},
		{"duplicate names", base + strings.Replace(base, "queues:\n", "", 1), []string{"defined twice"}},
		{"empty file", "", []string{"empty"}},
		{"no queues", "queues: []\n", []string{"no queues"}},
		{"no network", "queues:\n  - name: squad\n    maxUsers: 4\n    regions: [WestUs]\n", []string{`"squad"`, "maxDevices 0"}},
		{"block out of range", strings.Replace(block, "maxDevices: 4", "maxDevices: 200", 1), []string{"queues[0]", `"squad"`, "playfab: maxDevices 200"}},
		{"block too small for maxUsers", strings.Replace(block, "maxDevices: 4", "maxDevices: 2", 1), []string{"playfab: maxUsers 4", "more than maxDevices"}},
		{"typo in the block", block + "      maxDevice: 4\n", []string{"maxDevice", "line 9"}},
		{"block and flat fields", block + "    maxEndpointsPerDevice: 1\n    directPeerConnectivity: None\n",
			[]string{`"squad"`, "maxEndpointsPerDevice, directPeerConnectivity written beside a playfab: block", "in the block only"}},
		{"teams that do not make maxUsers", block + "    teams: {count: 2, size: 3}\n", []string{`"squad"`, "teams", "count 2 x size 3 is 6", "maxUsers 4"}},
		{"rule that does not fit the type", block + "    attributes:\n      - {name: level, type: number, rule: equal}\n",
			[]string{`"squad"`, `attributes[0] (level).rule "equal"`, "use distance"}},
		{"unknown type", block + "    attributes:\n      - {name: mode, type: bool}\n", []string{`attributes[0] (mode).type "bool"`}},
		{"steps not increasing", block + "    attributes:\n      - name: level\n        type: number\n        maxDistance: 5\n        relax:\n          - {after: 20s, maxDistance: 10}\n          - {after: 10s, rule: any}\n",
			[]string{`attributes[0] (level).relax[1].after 10s`, "strictly increasing"}},
		{"bad duration in a step", block + "    attributes:\n      - name: platform\n        type: string\n        relax:\n          - {after: soon, rule: any}\n",
			[]string{"line 13", "after: \"soon\" is not a duration"}},
		{"typo in an attribute", block + "    attributes:\n      - {name: mode, type: string, requred: true}\n", []string{"requred"}},
		{"duplicate attributes", block + "    attributes:\n      - {name: mode, type: string}\n      - {name: mode, type: string}\n", []string{`"mode" is defined twice`}},
		{"latency relax without a limit", block + "    latencyRelax:\n      - {after: 20s, maxLatencyMs: 150}\n", []string{"latencyRelax: needs maxLatencyMs"}},
		{"unknown skill source", block + "    skill: {source: server}\n", []string{`skill.source "server"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lobbyd.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			_, err := Load(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path, "the error names the file")
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	for line, want := range map[string]string{
		"    ticketTimeout: soon":               "ticketTimeout",
		"  - {after: soon, rule: any}":          "after",
		"      - {after: 20s, maxLatencyMs: x}": "maxLatencyMs",
		"          - after: \"later\"":          "after",
	} {
		value := map[string]string{"    ticketTimeout: soon": "soon", "  - {after: soon, rule: any}": "soon",
			"      - {after: 20s, maxLatencyMs: x}": "x", "          - after: \"later\"": "later"}[line]
		assert.Equal(t, want, keyOf(line, value), line)
	}
}

// Every field a queue file may set has a row in README.md's "Queue file"
// table, by its path (`skill.maxWindow`, `attributes[].relax[].after`);
// the old flat network fields are described in prose there.
func TestEveryQueueFieldIsInTheReadme(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var paths []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.Type == reflect.TypeOf(flatNetwork{}) {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case opts == "inline":
				walk(prefix, ft)
			case ft.Kind() == reflect.Struct:
				walk(prefix+name+".", ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(prefix+name+"[].", ft.Elem())
			default:
				paths = append(paths, prefix+name)
			}
		}
	}
	walk("", reflect.TypeOf(queue{}))
	require.Contains(t, paths, "attributes[].relax[].maxDistance", "the walk reaches nested fields")
	for _, p := range paths {
		assert.Contains(t, string(readme), "| `"+p+"` |", "README row for %s", p)
	}
}
