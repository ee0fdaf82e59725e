package matchmaker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// whyQueue has one rule of every kind, each with relax steps.
func whyQueue() Queue {
	q := Queue{Name: "why", MaxUsers: 4, Regions: []string{"EastUs", "WestUs", "NorthEurope"},
		Skill: SkillRule{InitialWindow: 100, WidenPerSecond: 10, MaxWindow: 500}, MaxWait: Duration(time.Minute),
		MaxLatencyMs: 80, LatencyRelax: []LatencyStep{{After: Duration(20 * time.Second), MaxLatencyMs: 150}},
		Attributes: []Attribute{
			{Name: "mode", Type: domain.AttrString},
			{Name: "platform", Type: domain.AttrString, Relax: []RelaxStep{{After: Duration(30 * time.Second), Rule: RuleAny}}},
			{Name: "maps", Type: domain.AttrStrings},
			{Name: "level", Type: domain.AttrNumber, MaxDistance: 5, Relax: []RelaxStep{{After: Duration(20 * time.Second), MaxDistance: 10}}},
		}}
	q.ApplyDefaults()
	return q
}

// randomWhyTicket draws every value from a few, so that rules leave some
// tickets compatible and others not.
func randomWhyTicket(rng *rand.Rand, q Queue, i int, now time.Time) domain.Ticket {
	t := ticketOf(fmt.Sprint("t", i), 1+rng.IntN(2))
	t.Queue, t.Status = q.Name, domain.TicketSearching
	t.CreatedAt = now.Add(-time.Duration(rng.IntN(40000)) * time.Millisecond)
	t.Skill = math.Round(1500 + rng.NormFloat64()*200)
	t.Attributes = map[string]domain.AttrValue{}
	if rng.IntN(5) > 0 {
		t.Attributes["mode"] = str([]string{"ctf", "tdm", "dm"}[rng.IntN(3)])
	}
	switch rng.IntN(6) {
	case 0:
		t.Attributes["platform"] = domain.AttrValue{Type: domain.AttrString, Mixed: []string{"pc", "xbox"}}
	case 1:
	default:
		t.Attributes["platform"] = str([]string{"pc", "xbox", "ps"}[rng.IntN(3)])
	}
	if rng.IntN(4) > 0 {
		all := []string{"dust", "harbor", "mill", "yard"}
		var pick []string
		for _, m := range all {
			if rng.IntN(3) == 0 {
				pick = append(pick, m)
			}
		}
		t.Attributes["maps"] = strs(pick...) // sometimes empty: a lobby sharing nothing
	}
	if rng.IntN(5) > 0 {
		t.Attributes["level"] = number(float64(rng.IntN(30)))
	}
	switch rng.IntN(3) {
	case 0:
		t.Regions = []string{q.Regions[rng.IntN(3)]}
	case 1:
		t.Latencies = map[string]int{"EastUs": 20 + rng.IntN(150), "WestUs": 20 + rng.IntN(150), "NorthEurope": 20 + rng.IntN(150)}
	}
	return t
}

// compatibleOn is the test's own reading of each rule, pair by pair: is b
// compatible with a on rule, for a group whose oldest ticket is a?
func compatibleOn(q Queue, rule string, a, b domain.Ticket, now time.Time) bool {
	wait := now.Sub(a.CreatedAt)
	switch rule {
	case "skill":
		return wait >= q.MaxWait.D() || math.Abs(a.Skill-b.Skill) <= q.Skill.Window(wait)
	case "region":
		limit := q.MaxLatencyAt(wait)
		for _, ra := range acceptableAt(&q, &a, limit) {
			for _, rb := range acceptableAt(&q, &b, limit) {
				if ra.name == rb.name {
					return true
				}
			}
		}
		return false
	}
	attr, _ := q.attribute(rule)
	binds, dist, _ := attr.at(wait)
	va, hasA := a.Attributes[rule]
	vb, hasB := b.Attributes[rule]
	switch {
	case !binds:
		return true
	case attr.Type == domain.AttrString && (len(va.Mixed) > 0 || len(vb.Mixed) > 0):
		return false
	case attr.Type == domain.AttrStrings && ((hasA && len(va.Strs) == 0) || (hasB && len(vb.Strs) == 0)):
		return false
	case !hasA || !hasB:
		return true
	case attr.Type == domain.AttrString:
		return va.Str == vb.Str
	case attr.Type == domain.AttrStrings:
		return shareAny(va.Strs, vb.Strs)
	}
	return math.Abs(va.Num-vb.Num) <= dist
}

// Below the summary's caps, queue.why's counts are exact: they agree with
// the rules applied pair by pair.
func TestWhyCountsMatchTheRules(t *testing.T) {
	q := whyQueue()
	rng := rand.New(rand.NewPCG(3, 5))
	now := t0.Add(time.Hour)
	var tickets []domain.Ticket
	for i := range 200 {
		tickets = append(tickets, randomWhyTicket(rng, q, i, now))
	}
	sum := summarize(q, tickets, now)
	// Through JSON, as another node reads it.
	b, err := json.Marshal(sum)
	require.NoError(t, err)
	var read queueSummary
	require.NoError(t, json.Unmarshal(b, &read))
	read.prepare(q)
	later := now.Add(1500 * time.Millisecond) // a queue.why a moment after the pass
	for _, a := range tickets[:60] {
		w := read.why(q, a, later)
		assert.Equal(t, a.ID, w.Ticket)
		require.Len(t, w.Rules, 6)
		for _, r := range w.Rules {
			want := 0
			for _, b := range tickets {
				if b.ID != a.ID && compatibleOn(q, r.Rule, a, b, later) {
					want++
				}
			}
			assert.Equal(t, want, r.Compatible, "ticket %s, rule %s", a.ID, r.Rule)
		}
	}
}

func TestWhyRelaxesAndBlocks(t *testing.T) {
	q := whyQueue()
	now := t0.Add(time.Hour)
	pc := func(id string, at time.Duration) domain.Ticket {
		t := tk(id, 1, 0, 1500, map[string]domain.AttrValue{"platform": str("pc"), "mode": str("ctf")})
		t.CreatedAt, t.Status, t.Queue = now.Add(-at), domain.TicketSearching, q.Name
		return t
	}
	xbox := pc("xbox", 18*time.Second)
	xbox.Attributes = map[string]domain.AttrValue{"platform": str("xbox"), "mode": str("ctf")}
	tickets := []domain.Ticket{xbox, pc("a", time.Second), pc("b", time.Second), pc("c", time.Second), pc("d", time.Second)}
	w := summarize(q, tickets, now).why(q, xbox, now)
	b, err := json.Marshal(w)
	require.NoError(t, err)
	assert.JSONEq(t, `{"ticket":"xbox","rules":[
		{"rule":"mode","compatible":4},
		{"rule":"platform","compatible":0,"relaxesInMs":12000},
		{"rule":"maps","compatible":4},
		{"rule":"level","compatible":4,"relaxesInMs":2000},
		{"rule":"skill","compatible":4,"relaxesInMs":42000},
		{"rule":"region","compatible":4,"relaxesInMs":2000}],
		"blockedBy":"platform"}`, string(b))

	w = summarize(q, tickets, now).why(q, xbox, now.Add(12*time.Second))
	assert.Equal(t, 4, w.Rules[1].Compatible, "relaxed to any")
	assert.Zero(t, w.Rules[1].RelaxesInMs, "no step left")
	assert.Empty(t, w.BlockedBy)
}

// A node answers queue.why from the summary its queue's leader wrote,
// and sets the blocked-tickets gauge.
func TestWhyFromTheLeader(t *testing.T) {
	q := whyQueue()
	st := storetest.Embedded(t)
	vc := &clock{now: t0}
	reg := prometheus.NewRegistry()
	leader := &Service{Store: st, Queues: []Queue{q}, NodeID: "leader", Notifier: &recordingNotifier{}, Now: vc.Now, Registerer: reg}
	other := &Service{Store: st, Queues: []Queue{q}, NodeID: "other", Now: vc.Now}
	lead(t, leader)
	ctx := context.Background()
	join := func(player, platform string) domain.Ticket {
		tk, err := leader.Join(ctx, domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: player}}, Skill: 1500,
			Attributes: map[string]domain.AttrValue{"platform": str(platform)}})
		require.NoError(t, err)
		return tk
	}
	lonely := join("lonely", "xbox")
	for i := range 2 {
		join(fmt.Sprint("pc", i), "pc")
	}
	_, err := other.Why(ctx, lonely)
	require.ErrorIs(t, err, ErrNoSummary, "no pass summarised yet")
	assert.ErrorIs(t, err, domain.ErrUnavailable)

	vc.Advance(2 * time.Second)
	_, err = leader.formOnce(ctx, q)
	require.NoError(t, err)
	job, ok := leader.summaryDue(q, vc.Now())
	require.True(t, ok)
	leader.writeSummary(ctx, q, job)
	_, ok = leader.summaryDue(q, vc.Now().Add(time.Millisecond))
	assert.False(t, ok, "at most one a second")

	vc.Advance(time.Second)
	w, err := other.Why(ctx, lonely)
	require.NoError(t, err)
	assert.Equal(t, "platform", w.BlockedBy)
	assert.Equal(t, WhyRule{Rule: "platform", Compatible: 0, RelaxesInMs: 27000}, w.Rules[1])
	assert.Equal(t, 2, w.Rules[0].Compatible, "mode: nobody has one, everyone is compatible")
	gauge := func(rule string) float64 { return gathered(t, reg, "lobbyd_tickets_blocked", "rule", rule) }
	// Every ticket needs 3 more players and has 2 others: the xbox one is
	// blocked by platform (0 compatible), each pc one too (1 compatible,
	// fewer than on any other rule).
	assert.Equal(t, 3.0, gauge("platform"))
	assert.Zero(t, gauge("mode"))
	assert.Zero(t, gauge("region"))

	lonely.Status = domain.TicketMatched
	_, err = other.Why(ctx, lonely)
	assert.ErrorIs(t, err, domain.ErrNotFound)
	lonely.Queue = "nope"
	_, err = other.Why(ctx, lonely)
	assert.ErrorIs(t, err, ErrUnknownQueue)
}

func TestSketch(t *testing.T) {
	var exact []float64
	for i := range 100 {
		exact = append(exact, float64(i))
	}
	s := newSketch(exact)
	assert.Equal(t, 11, s.count(10, 20))
	assert.Equal(t, 0, s.count(200, 300))
	var many []float64
	for i := range 10000 {
		many = append(many, float64(i))
	}
	s = newSketch(many)
	require.Len(t, s.Q, sketchPoints)
	assert.InDelta(t, 2000, s.count(1000, 3000), 100, "an estimate past sketchPoints")
	assert.Equal(t, 10000, s.count(-1, 1e9))
}

// gathered is the value of the registry's metric of that name whose label
// has that value (a gauge's or a counter's; a histogram's count), or -1.
func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	if v, ok := testutil.Metric(t, reg, name, map[string]string{label: value}); ok {
		return v
	}
	return -1
}

// BenchmarkSummary measures the leader's summary of 50,000 waiting
// tickets of the queue.why test queue, with the blocked-tickets gauge: the
// work its summarizer does at most once a second, off the formation loop.
func BenchmarkSummary(b *testing.B) {
	q := whyQueue()
	rng := rand.New(rand.NewPCG(3, 6))
	now := t0.Add(time.Hour)
	tickets := make([]domain.Ticket, 50000)
	for i := range tickets {
		tickets[i] = randomWhyTicket(rng, q, i, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		sum := summarize(q, tickets, now)
		blocked := 0
		var rules []WhyRule
		var masks []uint64
		for _, t := range tickets {
			w := sum.whyInto(q, t, now, rules, &masks)
			if rules = w.Rules; w.BlockedBy != "" {
				blocked++
			}
		}
		if blocked == 0 {
			b.Fatal("nobody blocked")
		}
	}
}

// A running leader writes summaries on its own, and a node's Why answers
// from them once one is written; stopping the node stops its summarizer.
func TestRunWritesSummaries(t *testing.T) {
	q := whyQueue()
	st := storetest.Embedded(t)
	leader := &Service{Store: st, Queues: []Queue{q}, NodeID: "leader", Notifier: &recordingNotifier{}, FormInterval: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- leader.Run(ctx) }()
	tk, err := leader.Join(ctx, domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: "alone"}}, Skill: 1500})
	require.NoError(t, err)
	other := &Service{Store: st, Queues: []Queue{q}, NodeID: "other"}
	var w Why
	storetest.Eventually(t, 10*time.Second, func() bool {
		w, err = other.Why(context.Background(), tk)
		return err == nil
	}, "no summary written")
	assert.Equal(t, tk.ID, w.Ticket)
	assert.Equal(t, "mode", w.BlockedBy, "alone in its queue, every rule leaves it nobody: the first is named")
	cancel()
	require.NoError(t, <-done)
}
