package matchmaker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// rulesQueue is a 5v5 queue using every rule: the spec's example.
func rulesQueue() Queue {
	q := Queue{
		Name: "ranked5v5", MaxUsers: 10, Regions: []string{"EastUs", "WestUs", "NorthEurope"},
		Teams:        TeamRule{Count: 2, Size: 5, MaxImbalance: 50, WidenPerSecond: 5, MaxImbalanceCap: 300},
		Skill:        SkillRule{Source: SourceToken, InitialWindow: 100, WidenPerSecond: 10, MaxWindow: 600},
		MaxLatencyMs: 80,
		LatencyRelax: []LatencyStep{{After: Duration(20 * time.Second), MaxLatencyMs: 150}},
		Attributes: []Attribute{
			{Name: "mode", Type: domain.AttrString, Rule: RuleEqual, Required: true, Values: []string{"ctf", "tdm"}},
			{Name: "platform", Type: domain.AttrString, Source: SourceToken,
				Relax: []RelaxStep{{After: Duration(30 * time.Second), Rule: RuleAny}}},
			{Name: "maps", Type: domain.AttrStrings},
			{Name: "level", Type: domain.AttrNumber, MaxDistance: 5, Relax: []RelaxStep{
				{After: Duration(20 * time.Second), MaxDistance: 10}, {After: Duration(40 * time.Second), Rule: RuleAny}}},
		},
	}
	q.ApplyDefaults()
	return q
}

func TestRulesQueueValidates(t *testing.T) {
	q := rulesQueue()
	require.NoError(t, q.Validate())
	assert.Equal(t, RuleIntersect, q.Attributes[2].Rule, "the rule defaults to the type's")
	assert.Equal(t, SourceClient, q.Attributes[0].Source, "the source defaults to client")
	assert.Equal(t, 5, q.MaxLobbyMembers(), "a lobby fits one team")
	assert.Equal(t, 4, DefaultQueues()[0].MaxLobbyMembers(), "without teams, a whole match")
}

// Every bad rule is refused, naming the queue and the field.
func TestQueueValidateRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Queue)
		want   []string
	}{
		{"teams do not make maxUsers", func(q *Queue) { q.Teams.Size = 4 }, []string{"teams", "count 2 x size 4 is 8", "maxUsers 10"}},
		{"one team", func(q *Queue) { q.Teams.Count, q.Teams.Size = 1, 10 }, []string{"teams.count 1"}},
		{"teams without count", func(q *Queue) { q.Teams.Count = 0 }, []string{"teams.count 0"}},
		{"cap below maxImbalance", func(q *Queue) { q.Teams.MaxImbalanceCap = 40 }, []string{"teams.maxImbalanceCap 40", "maxImbalance (50)"}},
		{"negative imbalance", func(q *Queue) { q.Teams.WidenPerSecond = -1 }, []string{"teams:", "not negative"}},
		{"widening without a limit", func(q *Queue) { q.Teams.MaxImbalance, q.Teams.MaxImbalanceCap = 0, 0 }, []string{"teams: set maxImbalance"}},
		{"skill source", func(q *Queue) { q.Skill.Source = "server" }, []string{`skill.source "server"`}},
		{"unknown type", func(q *Queue) { q.Attributes[0].Type = "bool" }, []string{`attributes[0] (mode).type "bool"`}},
		{"rule that does not fit", func(q *Queue) { q.Attributes[2].Rule = RuleEqual }, []string{`attributes[2] (maps).rule "equal"`, "use intersect"}},
		{"any as a rule", func(q *Queue) { q.Attributes[0].Rule = RuleAny }, []string{`attributes[0] (mode).rule "any"`}},
		{"unknown source", func(q *Queue) { q.Attributes[1].Source = "server" }, []string{`attributes[1] (platform).source "server"`}},
		{"bad name", func(q *Queue) { q.Attributes[0].Name = "game mode" }, []string{`attributes[0].name "game mode"`}},
		{"reserved name", func(q *Queue) { q.Attributes[0].Name = "skill" }, []string{`"skill" names another rule`}},
		{"duplicate name", func(q *Queue) { q.Attributes[3].Name = "maps" }, []string{`attributes[3] (maps).name: "maps" is defined twice`}},
		{"values on a number", func(q *Queue) { q.Attributes[3].Values = []string{"1"} }, []string{"attributes[3] (level).values: only for string"}},
		{"empty value", func(q *Queue) { q.Attributes[0].Values = []string{""} }, []string{"attributes[0] (mode).values"}},
		{"maxDistance on a string", func(q *Queue) { q.Attributes[0].MaxDistance = 3 }, []string{"attributes[0] (mode).maxDistance: only for number"}},
		{"negative maxDistance", func(q *Queue) { q.Attributes[3].MaxDistance = -1 }, []string{"attributes[3] (level).maxDistance -1"}},
		{"steps not increasing", func(q *Queue) { q.Attributes[3].Relax[1].After = Duration(20 * time.Second) }, []string{"attributes[3] (level).relax[1].after 20s", "strictly increasing"}},
		{"step at 0s", func(q *Queue) { q.Attributes[1].Relax[0].After = 0 }, []string{"attributes[1] (platform).relax[0].after 0s"}},
		{"step past the timeout", func(q *Queue) { q.Attributes[1].Relax[0].After = Duration(time.Hour) }, []string{"relax[0].after 1h0m0s", "past ticketTimeout"}},
		{"step narrowing", func(q *Queue) { q.Attributes[3].Relax[0].MaxDistance = 4 }, []string{"attributes[3] (level).relax[0].maxDistance 4", "above the one before (5)"}},
		{"step with nothing", func(q *Queue) { q.Attributes[1].Relax[0].Rule = "" }, []string{"attributes[1] (platform).relax[0]: set rule: any or maxDistance"}},
		{"step with both", func(q *Queue) { q.Attributes[3].Relax[1].MaxDistance = 20 }, []string{"attributes[3] (level).relax[1]: set rule: any or maxDistance, not both"}},
		{"step with another rule", func(q *Queue) { q.Attributes[1].Relax[0].Rule = RuleEqual }, []string{`relax[0].rule "equal": a step can only set any`}},
		{"distance step on a string", func(q *Queue) { q.Attributes[1].Relax[0] = RelaxStep{After: Duration(time.Second), MaxDistance: 3} }, []string{"relax[0].maxDistance: only for number"}},
		{"step after any", func(q *Queue) {
			q.Attributes[3].Relax = append(q.Attributes[3].Relax, RelaxStep{After: Duration(50 * time.Second), MaxDistance: 30})
		}, []string{"relax[2]: comes after rule: any"}},
		{"latency relax without a limit", func(q *Queue) { q.MaxLatencyMs = 0 }, []string{"latencyRelax: needs maxLatencyMs"}},
		{"latency relax narrowing", func(q *Queue) { q.LatencyRelax[0].MaxLatencyMs = 60 }, []string{"latencyRelax[0].maxLatencyMs 60", "above the one before (80)"}},
		{"latency relax at 0s", func(q *Queue) { q.LatencyRelax[0].After = 0 }, []string{"latencyRelax[0].after 0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := rulesQueue()
			q.Attributes = append([]Attribute(nil), q.Attributes...)
			for i := range q.Attributes {
				q.Attributes[i].Relax = append([]RelaxStep(nil), q.Attributes[i].Relax...)
			}
			q.LatencyRelax = append([]LatencyStep(nil), q.LatencyRelax...)
			tc.mutate(&q)
			err := q.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), `queue "ranked5v5"`)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestRelaxSteps(t *testing.T) {
	q := rulesQueue()
	level := q.Attributes[3]
	for _, tc := range []struct {
		wait  time.Duration
		binds bool
		dist  float64
		step  int
		next  time.Duration
	}{
		{0, true, 5, -1, 20 * time.Second},
		{19999 * time.Millisecond, true, 5, -1, time.Millisecond},
		{20 * time.Second, true, 10, 0, 20 * time.Second},
		{40 * time.Second, false, 10, 1, 0},
	} {
		binds, dist, step := level.at(tc.wait)
		assert.Equal(t, tc.binds, binds, "at %v", tc.wait)
		assert.Equal(t, tc.dist, dist, "at %v", tc.wait)
		assert.Equal(t, tc.step, step, "at %v", tc.wait)
		assert.Equal(t, tc.next, level.nextRelax(tc.wait), "at %v", tc.wait)
	}
	assert.Equal(t, 80, q.MaxLatencyAt(19*time.Second))
	assert.Equal(t, 150, q.MaxLatencyAt(20*time.Second))
	assert.Equal(t, 50.0, q.Teams.ImbalanceAt(0))
	assert.Equal(t, 100.0, q.Teams.ImbalanceAt(10*time.Second))
	assert.Equal(t, 300.0, q.Teams.ImbalanceAt(time.Hour), "capped")
	assert.Equal(t, TeamRule{Count: 2, Size: 5}.ImbalanceAt(0), TeamRule{Count: 2, Size: 5}.ImbalanceAt(time.Hour))
	assert.True(t, TeamRule{Count: 2, Size: 5}.ImbalanceAt(0) > 1e300, "0: no limit")
}

// GET /v1/queues serves a queue without the new rules exactly as before,
// and one with them with every field.
func TestQueueJSON(t *testing.T) {
	b, err := json.Marshal(DefaultQueues()[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"default","maxUsers":4,"regions":["EastUs","WestUs","NorthEurope","WestEurope"],
		"ticketTimeout":"10m0s","maxWait":"1m30s","skill":{"initialWindow":0,"widenPerSecond":0,"maxWindow":0}}`, string(b))
	b, err = json.Marshal(rulesQueue())
	require.NoError(t, err)
	for _, want := range []string{`"teams":{"count":2,"size":5,"maxImbalance":50,"widenPerSecond":5,"maxImbalanceCap":300}`,
		`"source":"token"`, `"latencyRelax":[{"after":"20s","maxLatencyMs":150}]`,
		`{"name":"platform","type":"string","rule":"equal","source":"token","relax":[{"after":"30s","rule":"any"}]}`,
		`{"name":"level","type":"number","rule":"distance","source":"client","maxDistance":5,"relax":[{"after":"20s","maxDistance":10},{"after":"40s","rule":"any"}]}`} {
		assert.Contains(t, string(b), want)
	}
}
