package matchmaker

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// A ticket's shard follows its most preferred acceptable region and its
// skill band, so tickets that would be matched together meet.
func TestShardRule(t *testing.T) {
	q := simQueue() // four regions; skill maxWindow 600
	assert.Equal(t, 0, q.Shard(domain.Ticket{Skill: 1500, Regions: []string{"WestUs"}}), "unsplit: shard 0")
	q.Shards = 8
	at := func(skill float64, regions ...string) int {
		return q.Shard(domain.Ticket{Skill: skill, Regions: regions})
	}
	// Band 2 (1200 to 1799) of WestUs (region 1): 1 + 4×2 = 9, mod 8.
	assert.Equal(t, 1, at(1500, "WestUs"))
	assert.Equal(t, at(1200, "WestUs", "EastUs"), at(1799, "WestUs"), "one band, one first region: one shard")
	assert.NotEqual(t, at(1500, "WestUs"), at(1500, "EastUs"), "another first region")
	assert.NotEqual(t, at(1500, "WestUs"), at(1900, "WestUs"), "another band")
	assert.Equal(t, at(1500), at(1500, "EastUs"), "no regions: the queue's first")
	s := at(-700, "NorthEurope")
	assert.True(t, s >= 0 && s < 8, "a negative band still gives a shard: %d", s)
	q.ShardSkillBand = 100
	assert.NotEqual(t, at(1500, "WestUs"), at(1650, "WestUs"), "narrower bands")
	q.Skill = SkillRule{}
	assert.Equal(t, at(100, "WestUs"), at(9000, "WestUs"), "without a skill rule, the region alone")
	assert.Equal(t, []string{"sim", "sim#1", "sim#2", "sim#3", "sim#4", "sim#5", "sim#6", "sim#7"}, q.ShardNames())
}

// What a split costs in match quality, measured on the simulation's
// 10,000 tickets (the same seed for every variant): the share of tickets
// matched, the mean skill spread of a match and the p50 and p90 wait,
// unsplit against split into 4 and 8 shards. The figures are in
// docs/matchmaking.md; the test fails when a split loses more than a tenth
// of the matches, or when a shard forms nothing (the tickets did not
// spread over the shards).
func TestShardingCost(t *testing.T) {
	if testing.Short() {
		t.Skip("3 × 10,000 tickets")
	}
	t.Parallel()
	type result struct {
		matched        float64
		spread         float64
		p50, p90       time.Duration
		shardsWithWork int
	}
	run := func(shards int) result {
		rng := rand.New(rand.NewPCG(2026, 12))
		q := simQueue()
		q.Shards = shards
		vc := &clock{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
		notifier := &recordingNotifier{}
		s := &Service{Store: storetest.Real(t), Queues: []Queue{q}, NodeID: "sim", Notifier: notifier, Now: vc.Now}
		lead(t, s)
		byID := simulate(t, s, q, vc, rng, 10000, 700, func(i int) domain.Ticket { return randomTicket(rng, q, i) })
		var res result
		var waits []time.Duration
		used := map[string]bool{}
		matched := 0
		for _, m := range notifier.found() {
			used[m.Queue] = true
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, id := range m.TicketIDs {
				tk := byID[id]
				require.Equal(t, m.Queue, tk.Queue, "a match's tickets are of its shard")
				lo, hi = math.Min(lo, tk.Skill), math.Max(hi, tk.Skill)
				waits = append(waits, m.CreatedAt.Sub(tk.CreatedAt))
				matched++
			}
			res.spread += hi - lo
		}
		res.matched = float64(matched) / float64(len(byID))
		res.spread /= float64(len(notifier.found()))
		slices.Sort(waits)
		res.p50, res.p90 = waits[len(waits)/2], waits[len(waits)*9/10]
		res.shardsWithWork = len(used)
		return res
	}
	base := run(1)
	t.Logf("unsplit: %.1f%% matched, mean spread %.0f, wait p50 %v p90 %v", 100*base.matched, base.spread, base.p50, base.p90)
	for _, shards := range []int{4, 8} {
		r := run(shards)
		t.Logf("%d shards: %.1f%% matched, mean spread %.0f, wait p50 %v p90 %v (%d shards formed matches)",
			shards, 100*r.matched, r.spread, r.p50, r.p90, r.shardsWithWork)
		assert.Equal(t, shards, r.shardsWithWork, "every shard forms matches")
		assert.Greater(t, r.matched, base.matched*0.9, "a split keeps at least nine tenths of the matches")
	}
}
