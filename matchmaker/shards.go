package matchmaker

import (
	"math"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// A queue that outgrows one Redis core is split into shards (Queue.Shards).
// Each shard is a queue of its own to the store and the formation loop:
// its own hash slot, lease, leader, pool and allocation stream, under the
// name domain.ShardName gives (shard 0 keeps the queue's name, so an
// unsharded queue's tickets stay where they are when it is split). Clients
// never see a shard: tickets and matches show the queue's name.
//
// Tickets only meet the tickets of their own shard, so the rule that picks
// a ticket's shard decides what a split costs in match quality. It keeps
// together what would be matched together anyway: the ticket's most
// preferred acceptable region, and with a skill rule, its skill band
// (ShardSkillBand wide, default the rule's maxWindow: two tickets of one
// band are always within the widest window). docs/matchmaking.md gives the
// rule and what it costs, measured by TestShardingCost.

// maxShards bounds Queue.Shards.
const maxShards = 64

// ShardCount is the queue's number of shards (1 when unsplit).
func (q Queue) ShardCount() int { return max(q.Shards, 1) }

// ShardNames lists the names of the queue's shards, shard 0 first.
func (q Queue) ShardNames() []string {
	names := make([]string, q.ShardCount())
	for i := range names {
		names[i] = domain.ShardName(q.Name, i)
	}
	return names
}

// skillBand is the width of the queue's skill bands (0: skill is not a
// sharding key).
func (q Queue) skillBand() float64 {
	if !q.Skill.Enabled() {
		return 0
	}
	if q.ShardSkillBand > 0 {
		return q.ShardSkillBand
	}
	return q.Skill.MaxWindow
}

// Shard returns the shard of t, a ticket of q (its regions already the
// queue's: see servedRegions): its most preferred acceptable region, and
// its skill band, numbered region-major and taken modulo the shard count.
func (q Queue) Shard(t domain.Ticket) int {
	n := q.ShardCount()
	if n == 1 {
		return 0
	}
	region := 0
	if regions := acceptable(q, t); len(regions) > 0 {
		for i, r := range q.Regions {
			if r == regions[0].name {
				region = i
				break
			}
		}
	}
	key := int64(region)
	if w := q.skillBand(); w > 0 {
		band := int64(math.Floor(t.Skill / w))
		key += int64(len(q.Regions)) * band
	}
	return int(((key % int64(n)) + int64(n)) % int64(n))
}
