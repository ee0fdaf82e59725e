// The queue file is read by internal/queuefile, which hands the matchmaker
// its part; this fuzz test of the whole file stays here, with its corpus.
package matchmaker_test

import (
	"encoding/json"
	"math"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/queuefile"
	"github.com/lobbyd/lobbyd/matchmaker"
)

// FuzzParseConfig feeds arbitrary bytes to the queue file parser. Whatever
// it accepts must pass Validate and ValidateQueues, obey the rules of
// README.md's "Queue file" table and PlayFab's network limits (checked
// here from the documents, not through Validate), and encode as the JSON
// of GET /v1/queues.
func FuzzParseConfig(f *testing.F) {
	example, err := os.ReadFile("../lobbyd.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	base := "queues:\n  - name: squad\n    maxUsers: 4\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    regions: [WestUs]\n"
	for _, extra := range []string{
		"",
		"    maxWiat: 30s\n",
		"    ticketTimeout: soon\n",
		"    ticketTimeout: 1m\n    maxWait: 2m\n",
		"    skill:\n      initialWindow: 100\n",
		"    skill:\n      initialWindow: 100\n      widenPerSecond: 5\n      maxWindow: 50\n",
		"    skill:\n      maxWindow: 100\n      widenPerSecond: .nan\n",
		"    directPeerConnectivity: Sometimes\n",
		"    maxLatencyMs: -1\n",
		"    maxEndpointsPerDevice: 33\n",
		"    ticketTimeout: -5s\n",
		"    maxWait: 0s\n",
		"    teams: {count: 2, size: 2, maxImbalance: 50, widenPerSecond: 5, maxImbalanceCap: 300}\n",
		"    teams: {count: 2, size: 3}\n",
		"    teams: {count: 2, size: 2, maxImbalance: 50, maxImbalanceCap: 10}\n",
		"    skill: {source: token, maxWindow: 100}\n",
		"    skill: {source: server}\n",
		"    attributes:\n      - {name: mode, type: string, required: true, values: [ctf, tdm]}\n",
		"    attributes:\n      - {name: level, type: number, maxDistance: 5, relax: [{after: 20s, maxDistance: 10}, {after: 40s, rule: any}]}\n",
		"    attributes:\n      - {name: level, type: number, rule: equal}\n",
		"    attributes:\n      - {name: maps, type: strings, relax: [{after: 20s, rule: any}, {after: 10s, rule: any}]}\n",
		"    attributes:\n      - {name: platform, type: string, source: token}\n      - {name: platform, type: string}\n",
		"    maxLatencyMs: 80\n    latencyRelax: [{after: 20s, maxLatencyMs: 150}]\n",
		"    latencyRelax: [{after: 20s, maxLatencyMs: 150}]\n",
		"---\nqueues: []\n",
		"  - name: squad\n    maxUsers: 2\n    maxDevices: 2\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    regions: [EastUs]\n",
	} {
		f.Add([]byte(base + extra))
	}
	for _, raw := range []string{"", "queues: []\n", "queues:\n  - {}\n", "queues: {}\n", "{", "- 1\n", "queues: !!binary aGk=\n",
		"queues:\n  - &q {name: a, maxUsers: 2, maxDevices: 2, maxDevicesPerUser: 1, maxUsersPerDevice: 1, regions: [WestUs]}\n  - *q\n",
		"queues:\n  - name: a\n    maxUsers: 2\n    regions: [WestUs]\n    playfab: {maxDevices: 2, maxDevicesPerUser: 1, maxUsersPerDevice: 1}\n",
		"queues:\n  - name: a\n    maxUsers: 2\n    regions: [WestUs]\n    maxDevices: 2\n    playfab: {maxDevices: 2, maxDevicesPerUser: 1, maxUsersPerDevice: 1}\n",
		"queues:\n  - name: a\n    maxUsers: 3\n    regions: [WestUs]\n    playfab: {maxDevices: 1, maxDevicesPerUser: 1, maxUsersPerDevice: 2, directPeerConnectivity: Never}\n"} {
		f.Add([]byte(raw))
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := queuefile.Parse(raw)
		queues := file.Queues
		if err != nil {
			if queues != nil {
				t.Fatalf("an error (%v) came with queues", err)
			}
			return
		}
		if err := matchmaker.ValidateQueues(file.Matchmaking()); err != nil {
			t.Fatalf("accepted queues do not validate: %v", err)
		}
		names := map[string]bool{}
		for _, q := range queues {
			if err := q.Validate(); err != nil {
				t.Fatalf("accepted queue does not validate: %v", err)
			}
			if err := q.PlayFab.Validate(q.MaxUsers); err != nil {
				t.Fatalf("accepted network does not validate: %v", err)
			}
			if names[q.Name] {
				t.Fatalf("queue %q accepted twice", q.Name)
			}
			names[q.Name] = true
			checkQueueRules(t, q)
		}
		if _, err := json.Marshal(queues); err != nil {
			t.Fatalf("accepted queues cannot be served as JSON: %v", err)
		}
	})
}

var (
	queueNameRule  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	peerOptionRule = []string{"", "None", "SamePlatformType", "DifferentPlatformType", "AnyPlatformType",
		"SameEntityLoginProvider", "DifferentEntityLoginProvider", "AnyEntityLoginProvider",
		"AnyPlatformTypeAndEntityLoginProvider", "OnlyServers"}
)

// checkQueueRules checks an accepted queue against README.md ("Queue
// file") and the PlayFab contract (PartyNetworkConfiguration).
func checkQueueRules(t *testing.T, file queuefile.Queue) {
	t.Helper()
	q, n := file.Queue, file.PlayFab
	in := func(v, lo, hi int) bool { return v >= lo && v <= hi }
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) && x >= 0 }
	switch {
	case !queueNameRule.MatchString(q.Name):
		t.Fatalf("accepted name %q", q.Name)
	case !in(q.MaxUsers, 2, 1024):
		t.Fatalf("accepted maxUsers %d", q.MaxUsers)
	case !in(n.MaxDevices, 1, 128), !in(n.MaxUsersPerDevice, 1, 8), n.MaxDevicesPerUser < 1,
		!in(n.MaxEndpointsPerDevice, 0, 32):
		t.Fatalf("accepted a network PlayFab refuses: %+v", n)
	case n.MaxDevices*n.MaxUsersPerDevice < q.MaxUsers:
		t.Fatalf("accepted maxUsers %d beyond %d devices of %d users", q.MaxUsers, n.MaxDevices, n.MaxUsersPerDevice)
	case !slices.Contains(peerOptionRule, n.DirectPeerConnectivity):
		t.Fatalf("accepted directPeerConnectivity %q", n.DirectPeerConnectivity)
	case len(q.Regions) == 0:
		t.Fatal("accepted a queue without regions")
	case q.TicketTimeout.D() <= 0 || q.TicketTimeout.D() > time.Hour:
		t.Fatalf("accepted ticketTimeout %v", q.TicketTimeout.D())
	case q.MaxWait.D() < 0 || q.MaxWait > q.TicketTimeout:
		t.Fatalf("accepted maxWait %v with ticketTimeout %v", q.MaxWait.D(), q.TicketTimeout.D())
	case !finite(q.Skill.InitialWindow) || !finite(q.Skill.WidenPerSecond) || !finite(q.Skill.MaxWindow):
		t.Fatalf("accepted a skill rule that is not finite numbers: %+v", q.Skill)
	case q.Skill.MaxWindow > 0 && q.Skill.MaxWindow < q.Skill.InitialWindow:
		t.Fatalf("accepted skill.maxWindow below initialWindow: %+v", q.Skill)
	case q.MaxLatencyMs < 0:
		t.Fatalf("accepted maxLatencyMs %d", q.MaxLatencyMs)
	}
	for _, r := range q.Regions {
		if r == "" || len(r) > 64 {
			t.Fatalf("accepted region %q", r)
		}
	}
	checkRulesOfQueue(t, q)
	if w := q.Skill.Window(0); math.IsNaN(w) {
		t.Fatalf("skill window at no wait is NaN: %+v", q.Skill)
	}
}

// checkRulesOfQueue checks an accepted queue's teams, attributes and
// relax steps against the README's "Queue file" table and
// docs/matchmaking.md.
func checkRulesOfQueue(t *testing.T, q matchmaker.Queue) {
	t.Helper()
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) && x >= 0 }
	if tr := q.Teams; tr != (matchmaker.TeamRule{}) {
		switch {
		case tr.Count < 2 || tr.Size < 1 || tr.Count*tr.Size != q.MaxUsers:
			t.Fatalf("accepted teams %+v for maxUsers %d", tr, q.MaxUsers)
		case !finite(tr.MaxImbalance) || !finite(tr.WidenPerSecond) || !finite(tr.MaxImbalanceCap):
			t.Fatalf("accepted teams that are not finite numbers: %+v", tr)
		case tr.MaxImbalanceCap != 0 && tr.MaxImbalanceCap < tr.MaxImbalance:
			t.Fatalf("accepted maxImbalanceCap below maxImbalance: %+v", tr)
		}
		if q.MaxLobbyMembers() != tr.Size {
			t.Fatalf("a lobby of a queue with teams may hold %d, not the team size %d", q.MaxLobbyMembers(), tr.Size)
		}
	}
	if s := q.Skill.Source; s != "" && s != matchmaker.SourceClient && s != matchmaker.SourceToken {
		t.Fatalf("accepted skill.source %q", s)
	}
	rules := map[domain.AttrType]matchmaker.Rule{domain.AttrString: matchmaker.RuleEqual,
		domain.AttrStrings: matchmaker.RuleIntersect, domain.AttrNumber: matchmaker.RuleDistance}
	names := map[string]bool{}
	for _, a := range q.Attributes {
		want, ok := rules[a.Type]
		switch {
		case !queueNameRule.MatchString(a.Name) || names[a.Name] || slices.Contains([]string{"skill", "region", "latency", "teams"}, a.Name):
			t.Fatalf("accepted attribute name %q", a.Name)
		case !ok || a.Rule != want:
			t.Fatalf("accepted attribute %q of type %q with rule %q", a.Name, a.Type, a.Rule)
		case a.Source != matchmaker.SourceClient && a.Source != matchmaker.SourceToken:
			t.Fatalf("accepted attribute %q from %q", a.Name, a.Source)
		case !finite(a.MaxDistance):
			t.Fatalf("accepted maxDistance %v", a.MaxDistance)
		}
		names[a.Name] = true
		var after time.Duration
		for _, step := range a.Relax {
			if step.After.D() <= after || step.After > q.TicketTimeout || (step.Rule != "" && step.Rule != matchmaker.RuleAny) {
				t.Fatalf("accepted relax steps %+v", a.Relax)
			}
			after = step.After.D()
		}
	}
	if len(q.LatencyRelax) > 0 && q.MaxLatencyMs == 0 {
		t.Fatal("accepted latencyRelax without maxLatencyMs")
	}
	after, ms := time.Duration(0), q.MaxLatencyMs
	for _, step := range q.LatencyRelax {
		if step.After.D() <= after || step.MaxLatencyMs <= ms {
			t.Fatalf("accepted latencyRelax %+v", q.LatencyRelax)
		}
		after, ms = step.After.D(), step.MaxLatencyMs
	}
	if w := q.Teams.ImbalanceAt(time.Hour); math.IsNaN(w) {
		t.Fatalf("allowed imbalance is NaN: %+v", q.Teams)
	}
}
