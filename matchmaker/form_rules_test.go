package matchmaker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// tk makes a ticket of size players created at t0+at.
func tk(id string, size int, at time.Duration, skill float64, attrs map[string]domain.AttrValue) domain.Ticket {
	t := ticketOf(id, size)
	t.CreatedAt, t.Skill, t.Attributes = t0.Add(at), skill, attrs
	if size > 1 {
		t.LobbyID = "lobby-" + id
	}
	return t
}

func ids(ms []domain.Match) [][]string {
	var out [][]string
	for _, m := range ms {
		out = append(out, m.TicketIDs)
	}
	return out
}

// attrQueue is a queue of four without teams and one attribute.
func attrQueue(a Attribute) Queue {
	q := DefaultQueues()[0]
	q.Attributes = []Attribute{a}
	q.ApplyDefaults()
	return q
}

func TestEqualRule(t *testing.T) {
	q := attrQueue(Attribute{Name: "platform", Type: domain.AttrString, Source: SourceToken,
		Relax: []RelaxStep{{After: Duration(30 * time.Second), Rule: RuleAny}}})
	pc, xbox := map[string]domain.AttrValue{"platform": str("pc")}, map[string]domain.AttrValue{"platform": str("xbox")}
	mixed := map[string]domain.AttrValue{"platform": {Type: domain.AttrString, Mixed: []string{"pc", "xbox"}}}
	tickets := []domain.Ticket{
		tk("a", 1, 0, 0, pc), tk("b", 1, time.Millisecond, 0, xbox), tk("c", 1, 2*time.Millisecond, 0, xbox),
		tk("d", 1, 3*time.Millisecond, 0, xbox), tk("e", 1, 4*time.Millisecond, 0, pc),
		tk("f", 1, 5*time.Millisecond, 0, nil), // no platform: matches any, so joins the oldest group
		tk("g", 1, 6*time.Millisecond, 0, xbox),
	}
	got := formMatches(q, tickets, t0.Add(time.Second))
	require.Equal(t, [][]string{{"b", "c", "d", "g"}}, ids(got), "the xbox players")
	assert.Equal(t, domain.MatchAttr{Type: domain.AttrString, Value: "xbox"}, got[0].Attributes["platform"])
	assert.Empty(t, got[0].Quality.Relaxed)

	// The rule relaxes at its step, not a millisecond before.
	cross := []domain.Ticket{tk("a", 1, 0, 0, pc), tk("b", 1, 0, 0, xbox), tk("c", 1, 0, 0, pc), tk("d", 1, 0, 0, xbox)}
	assert.Empty(t, formMatches(q, cross, t0.Add(30*time.Second-time.Millisecond)))
	got = formMatches(q, cross, t0.Add(30*time.Second))
	require.Len(t, got, 1)
	assert.NotContains(t, got[0].Attributes, "platform", "values differ: no common value")
	assert.Equal(t, []string{"platform"}, got[0].Quality.Relaxed)
	assert.EqualValues(t, 30000, got[0].Quality.WaitMs)

	// A relaxed rule that the match did not need is not reported relaxed.
	same := []domain.Ticket{tk("a", 1, 0, 0, pc), tk("b", 1, 0, 0, pc), tk("c", 1, 0, 0, pc), tk("d", 1, 0, 0, pc)}
	got = formMatches(q, same, t0.Add(time.Minute))
	require.Len(t, got, 1)
	assert.Equal(t, domain.MatchAttr{Type: domain.AttrString, Value: "pc"}, got[0].Attributes["platform"])
	assert.Empty(t, got[0].Quality.Relaxed)

	// A lobby whose members disagree matches nobody, not even pc players,
	// until the rule relaxes; then it is placed first (it is oldest).
	withMixed := []domain.Ticket{tk("lobby", 2, 0, 0, mixed), tk("a", 1, time.Second, 0, pc), tk("b", 1, time.Second, 0, pc),
		tk("c", 1, time.Second, 0, pc), tk("d", 1, time.Second, 0, pc)}
	assert.Equal(t, [][]string{{"a", "b", "c", "d"}}, ids(formMatches(q, withMixed, t0.Add(29*time.Second))))
	got = formMatches(q, withMixed, t0.Add(30*time.Second))
	assert.Equal(t, [][]string{{"lobby", "a", "b"}}, ids(got))
	assert.Equal(t, []string{"platform"}, got[0].Quality.Relaxed)
}

func TestIntersectRule(t *testing.T) {
	q := attrQueue(Attribute{Name: "maps", Type: domain.AttrStrings, Relax: []RelaxStep{{After: Duration(time.Minute), Rule: RuleAny}}})
	maps := func(m ...string) map[string]domain.AttrValue { return map[string]domain.AttrValue{"maps": strs(m...)} }
	tickets := []domain.Ticket{
		tk("a", 1, 0, 0, maps("dust", "harbor", "mill")),
		tk("b", 1, 1, 0, maps("yard")),
		tk("c", 1, 2, 0, maps("harbor", "mill")),
		tk("d", 1, 3, 0, nil),
		tk("e", 1, 4, 0, maps("dust", "harbor")), // shares harbor with a, c
		tk("f", 1, 5, 0, maps("mill")),
	}
	got := formMatches(q, tickets, t0.Add(time.Second))
	require.Equal(t, [][]string{{"a", "c", "d", "e"}}, ids(got))
	assert.Equal(t, domain.MatchAttr{Type: domain.AttrStrings, Values: []string{"harbor"}}, got[0].Attributes["maps"], "the shared values, sorted")

	got = formMatches(q, []domain.Ticket{tk("a", 1, 0, 0, maps("x")), tk("b", 1, 0, 0, maps("y")), tk("c", 1, 0, 0, maps("x", "y")),
		tk("d", 1, 0, 0, maps("x"))}, t0.Add(time.Minute))
	require.Len(t, got, 1, "relaxed to any")
	assert.NotContains(t, got[0].Attributes, "maps", "nothing shared")
	assert.Equal(t, []string{"maps"}, got[0].Quality.Relaxed)
}

func TestDistanceRule(t *testing.T) {
	q := attrQueue(Attribute{Name: "level", Type: domain.AttrNumber, MaxDistance: 5,
		Relax: []RelaxStep{{After: Duration(20 * time.Second), MaxDistance: 10}}})
	level := func(v float64) map[string]domain.AttrValue { return map[string]domain.AttrValue{"level": number(v)} }
	tickets := []domain.Ticket{tk("a", 1, 0, 0, level(10)), tk("b", 1, 0, 0, level(18)), tk("c", 1, 0, 0, level(14)),
		tk("d", 1, 0, 0, level(15)), tk("e", 1, 0, 0, level(12))}
	assert.Equal(t, [][]string{{"a", "c", "d", "e"}}, ids(formMatches(q, tickets, t0.Add(19*time.Second))), "within 5")
	wide := []domain.Ticket{tk("a", 1, 0, 0, level(10)), tk("b", 1, 0, 0, level(18)), tk("c", 1, 0, 0, level(20)), tk("d", 1, 0, 0, level(13))}
	assert.Empty(t, formMatches(q, wide, t0.Add(19*time.Second)))
	got := formMatches(q, wide, t0.Add(20*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, domain.MatchAttr{Type: domain.AttrNumber, Min: 10, Max: 20}, got[0].Attributes["level"])
	assert.Equal(t, []string{"level"}, got[0].Quality.Relaxed)
}

func TestLatencyRelax(t *testing.T) {
	q := DefaultQueues()[0]
	q.MaxLatencyMs = 80
	q.LatencyRelax = []LatencyStep{{After: Duration(20 * time.Second), MaxLatencyMs: 150}}
	far := tk("far", 1, 0, 0, nil)
	far.Latencies = map[string]int{"EastUs": 120, "WestUs": 300}
	near := func(id string) domain.Ticket {
		t := tk(id, 1, time.Second, 0, nil)
		t.Latencies = map[string]int{"EastUs": 30, "WestUs": 20}
		return t
	}
	tickets := []domain.Ticket{far, near("a"), near("b"), near("c"), near("d")}
	got := formMatches(q, tickets, t0.Add(19*time.Second))
	require.Equal(t, [][]string{{"a", "b", "c", "d"}}, ids(got), "120 ms is over the limit for now")
	assert.Empty(t, got[0].Quality.Relaxed)
	got = formMatches(q, tickets, t0.Add(20*time.Second))
	require.Equal(t, [][]string{{"far", "a", "b", "c"}}, ids(got))
	assert.Equal(t, []string{"EastUs"}, got[0].Regions)
	assert.Equal(t, []string{"latency"}, got[0].Quality.Relaxed)
	// A newer group's limit is its own oldest ticket's: "far" does not join
	// a group of fresh tickets just because it waited.
	fresh := []domain.Ticket{near("a"), near("b"), near("c"), far}
	fresh[3].CreatedAt = t0.Add(2 * time.Second)
	assert.Empty(t, formMatches(q, fresh, t0.Add(20*time.Second)))
}

func teamsQueue() Queue {
	q := DefaultQueues()[0]
	q.MaxUsers = 10
	q.Teams = TeamRule{Count: 2, Size: 5, MaxImbalance: 50, WidenPerSecond: 5, MaxImbalanceCap: 200}
	q.ApplyDefaults()
	return q
}

func TestTeams(t *testing.T) {
	q := teamsQueue()
	require.NoError(t, q.Validate())
	var tickets []domain.Ticket
	lobby := tk("lobby", 3, 0, 1000, nil)
	tickets = append(tickets, lobby)
	for i, skill := range []float64{1600, 1400, 900, 1100, 1000, 1200, 800} {
		tickets = append(tickets, tk(fmt.Sprint("s", i), 1, time.Duration(i+1)*time.Millisecond, skill, nil))
	}
	got := formMatches(q, tickets, t0.Add(time.Second))
	require.Len(t, got, 1)
	m := got[0]
	require.Len(t, m.Teams, 2)
	players := map[string]float64{}
	for _, tt := range tickets {
		for _, p := range tt.Players {
			players[p.ID] = tt.Skill
		}
	}
	var means []float64
	for _, team := range m.Teams {
		require.Len(t, team, 5)
		sum := 0.0
		for _, p := range team {
			sum += players[p]
		}
		means = append(means, sum/5)
	}
	assert.Subset(t, m.Teams[0], lobby.PlayerIDs(), "the lobby is on one team, the oldest ticket's team first")
	assert.InDelta(t, math.Abs(means[0]-means[1]), m.Quality.TeamImbalance, 1e-9)
	sizes, skills := splitInput(tickets)
	assert.InDelta(t, bruteForceImbalance(sizes, skills, 2, 5), m.Quality.TeamImbalance, 1e-9, "the best split")
	assert.Equal(t, 800.0, m.Quality.SkillSpread)

	// Lobbies that cannot share two teams of five never group: 3+3+3.
	three := []domain.Ticket{tk("x", 3, 0, 0, nil), tk("y", 3, 0, 0, nil), tk("z", 3, 0, 0, nil), tk("s", 1, 0, 0, nil)}
	assert.Empty(t, formMatches(q, three, t0))
	// A lobby bigger than a team is not placed.
	assert.Empty(t, formMatches(q, []domain.Ticket{tk("big", 6, 0, 0, nil), tk("four", 4, 0, 0, nil)}, t0))
}

// A match whose best split is over the allowed imbalance waits until the
// allowance, which widens with the oldest ticket's wait, covers it.
func TestTeamImbalanceWidens(t *testing.T) {
	q := teamsQueue()                                                                  // 50, +5/s
	tickets := []domain.Ticket{tk("pro", 5, 0, 2000, nil), tk("new", 5, 0, 1000, nil)} // imbalance 1000
	assert.Empty(t, formMatches(q, tickets, t0.Add(time.Minute)), "50 + 5 x 60 = 350 < 1000")
	q.Teams.MaxImbalanceCap = 0 // unbounded
	assert.Empty(t, formMatches(q, tickets, t0.Add(189*time.Second)))
	got := formMatches(q, tickets, t0.Add(190*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, 1000.0, got[0].Quality.TeamImbalance)
	assert.Equal(t, []string{"teams"}, got[0].Quality.Relaxed)

	// With other tickets, a balanced match forms at once instead.
	q = teamsQueue()
	more := []domain.Ticket{tk("pro", 5, 0, 2000, nil), tk("new", 5, 0, 1000, nil), tk("mid", 5, 1, 1500, nil), tk("mid2", 5, 2, 1510, nil)}
	assert.Equal(t, [][]string{{"mid", "mid2"}}, ids(formMatches(q, more, t0.Add(time.Second))))
}

// The exact search finds the brute-force optimum (every shape here is
// small enough for it; TestSplitHeuristic measures the heuristic).
func TestSplitAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 13))
	for _, shape := range []struct{ count, size int }{{2, 5}, {2, 4}, {3, 3}, {5, 2}, {2, 3}} {
		s := newSplitter(shape.count, shape.size)
		for range 60 {
			sizes, skills := randomSplitInput(rng, shape.count, shape.size)
			teams, got, ok := s.bestSplit(sizes, skills)
			want := bruteForceImbalance(sizes, skills, shape.count, shape.size)
			require.Equal(t, !math.IsInf(want, 1), ok, "%v", sizes)
			if !ok {
				continue
			}
			assert.InDelta(t, want, got, 1e-9, "sizes %v skills %v", sizes, skills)
			assert.InDelta(t, got, imbalanceOf(sizes, skills, teams, shape.count, shape.size), 1e-9, "the split it returns")
		}
	}
}

func TestSplitHeuristic(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 14))
	for _, tc := range []struct {
		count, size int
		lobbies     bool
	}{{2, 6, false}, {2, 8, false}, {3, 4, false}, {4, 3, false}, {2, 8, true}, {4, 4, true}} {
		s := newSplitter(tc.count, tc.size)
		s.exact = false // the heuristic, even where the queue would search exactly
		worst, total, n := 0.0, 0.0, 0
		for range 60 {
			sizes := make([]int, tc.count*tc.size) // solos: past 10 tickets
			skills := make([]float64, len(sizes))
			for i := range sizes {
				sizes[i], skills[i] = 1, math.Round(1500+rng.NormFloat64()*300)
			}
			if tc.lobbies {
				sizes, skills = randomSplitInput(rng, tc.count, tc.size)
			}
			teams, got, ok := s.bestSplit(sizes, skills)
			require.True(t, ok)
			require.InDelta(t, got, imbalanceOf(sizes, skills, teams, tc.count, tc.size), 1e-9)
			best := exactImbalance(sizes, skills, tc.count, tc.size)
			worst, total, n = math.Max(worst, got-best), total+got-best, n+1
		}
		t.Logf("%dx%d (lobbies %v): heuristic over the optimum by %.2f on average, %.2f at worst (skill points)",
			tc.count, tc.size, tc.lobbies, total/float64(n), worst)
		assert.Less(t, total/float64(n), 5.0, "%dx%d: on average within 5 skill points of the best split", tc.count, tc.size)
	}
}

func splitInput(tickets []domain.Ticket) ([]int, []float64) {
	var sizes []int
	var skills []float64
	for _, t := range tickets {
		sizes, skills = append(sizes, t.Size()), append(skills, t.Skill)
	}
	return sizes, skills
}

func randomSplitInput(rng *rand.Rand, count, size int) ([]int, []float64) {
	var sizes []int
	var skills []float64
	for left := count * size; left > 0; {
		s := 1
		if rng.IntN(3) == 0 {
			s = 1 + rng.IntN(min(size, left))
		}
		s = min(s, left)
		sizes, skills = append(sizes, s), append(skills, math.Round(1500+rng.NormFloat64()*300))
		left -= s
	}
	return sizes, skills
}

// bruteForceImbalance tries every assignment of tickets to teams that
// does not overfill a team (no symmetry is used, unlike the splitter) and
// returns the least imbalance of those that fill each team exactly (+Inf
// when none does).
func bruteForceImbalance(sizes []int, skills []float64, count, size int) float64 {
	best := math.Inf(1)
	teams, fill := make([]int, len(sizes)), make([]int, count)
	var try func(i int)
	try = func(i int) {
		if i == len(sizes) {
			best = math.Min(best, imbalanceOf(sizes, skills, teams, count, size))
			return
		}
		for j := range count {
			if fill[j]+sizes[i] <= size {
				teams[i], fill[j] = j, fill[j]+sizes[i]
				try(i + 1)
				fill[j] -= sizes[i]
			}
		}
	}
	try(0)
	return best
}

// exactImbalance is the splitter's exact search, whatever the number of
// tickets (checked against brute force above).
func exactImbalance(sizes []int, skills []float64, count, size int) float64 {
	s := newSplitter(count, size)
	s.sizes, s.skills = sizes, skills
	s.order = nil
	for i := range sizes {
		s.order = append(s.order, i)
	}
	s.cur, s.bestIm = make([]int, len(sizes)), math.Inf(1)
	s.search()
	return s.bestIm
}

// imbalanceOf is the highest minus the lowest team mean of a split, +Inf
// when a team is not exactly full.
func imbalanceOf(sizes []int, skills []float64, teams []int, count, size int) float64 {
	fill, sum := make([]int, count), make([]float64, count)
	for i, j := range teams {
		fill[j] += sizes[i]
		sum[j] += float64(sizes[i]) * skills[i]
	}
	if slices.ContainsFunc(fill, func(f int) bool { return f != size }) {
		return math.Inf(1)
	}
	return (slices.Max(sum) - slices.Min(sum)) / float64(size)
}

// The skills that complete a group (completionSpans) are exactly those
// for which the best split of the completed group is within the limit.
func TestCompletionSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 15))
	for _, shape := range []struct{ count, size int }{{2, 5}, {2, 3}, {3, 3}, {5, 2}} {
		s := newSplitter(shape.count, shape.size)
		for range 100 {
			sizes, skills := randomSplitInput(rng, shape.count, shape.size)
			k := sizes[len(sizes)-1]
			sizes, skills = sizes[:len(sizes)-1], skills[:len(skills)-1] // the group lacks its last ticket
			limit := float64(rng.IntN(200))
			spans, exact := s.completionSpans(sizes, skills, k, limit)
			require.True(t, exact)
			for range 20 {
				x := math.Round(1500 + rng.NormFloat64()*400)
				near := slices.ContainsFunc(spans, func(sp span) bool { return math.Abs(sp.lo-x) < 1e-6 || math.Abs(sp.hi-x) < 1e-6 })
				if near {
					continue
				}
				_, im, ok := newSplitter(shape.count, shape.size).bestSplit(append(slices.Clone(sizes), k), append(slices.Clone(skills), x))
				assert.Equal(t, ok && im <= limit, inSpans(spans, x), "sizes %v skills %v + %d at %v, limit %v: spans %v", sizes, skills, k, x, limit, spans)
			}
		}
	}
}

// A group one player short that no skill within its window can complete
// closes, so later tickets neither join it nor scan it; they form their
// own match.
func TestDeadGroupCloses(t *testing.T) {
	q := teamsQueue() // imbalance 50
	q.Skill = SkillRule{InitialWindow: 1000, MaxWindow: 1000}
	tickets := []domain.Ticket{tk("strong", 5, 0, 2000, nil)} // a team on its own
	for i := range 4 {
		tickets = append(tickets, tk(fmt.Sprint("weak", i), 1, time.Duration(i+1), 1200, nil))
	}
	f := newFormer(q, t0, func(domain.Match) {})
	for _, tt := range tickets {
		f.add(tt)
	}
	assert.Empty(t, f.open, "the last player would need a skill near 4,000, outside the window [1000, 2200]")
	var got []domain.Match
	f.emit = func(m domain.Match) { got = append(got, m) }
	for i := range 10 {
		f.add(tk(fmt.Sprint("late", i), 1, time.Second, 1500, nil))
	}
	require.Len(t, got, 1)
	assert.Len(t, got[0].TicketIDs, 10)
}
