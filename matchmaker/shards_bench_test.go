package matchmaker

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// BenchmarkFormSharded measures what issue 17 asks of shards: formation
// throughput of one queue on a 3-primary Redis Cluster, split into 12
// shards (spread over the primaries), against the same queue unsplit (one
// slot, one primary), in the same run and on the same cluster. Each pass
// is a new leader of every shard forming 48,000 waiting tickets (skill
// around 1500, one of four regions first), the shards' leaders running at
// once, as they would on several nodes. tickets/s counts the tickets
// matched per second of the pass's wall time.
func BenchmarkFormSharded(b *testing.B) {
	cluster := storetest.StartCluster(b, 3, 0)
	for _, shards := range []int{1, 12} {
		b.Run(map[int]string{1: "one-slot", 12: "12-shards"}[shards], func(b *testing.B) {
			q := DefaultQueues()[0]
			q.Name = "sharded" + uuid.NewString()[:8] // each variant its own keys
			q.Skill = SkillRule{InitialWindow: 100, WidenPerSecond: 10, MaxWindow: 300}
			q.Shards = shards
			benchFormShards(b, cluster.URL, cluster.Addrs, q, 48000)
		})
	}
}

// benchFormShards is BenchmarkFormSharded's pass on the Redis at url.
// It reports, per pass, the CPU time of the busiest primary (one slot's
// bound: one core), of all of them, and of this process (the leaders).
func benchFormShards(b *testing.B, url string, nodes []string, q Queue, waiting int) {
	st, err := store.Open(context.Background(), store.Config{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(17, 3))
	var matched atomic.Int64
	var passes, busiest, redisAll, own time.Duration
	for b.Loop() {
		b.StopTimer()
		creator := &Service{Store: st, Queues: []Queue{q}, NodeID: "creator", Notifier: nopNotifier{}}
		for range waiting {
			t := domain.Ticket{Queue: q.Name, Skill: math.Round(1500 + rng.NormFloat64()*300),
				Regions: []string{q.Regions[rng.IntN(len(q.Regions))]},
				Players: []domain.Player{{ID: uuid.NewString(), Name: "player"}}}
			if _, err := creator.Join(ctx, t); err != nil {
				b.Fatal(err)
			}
		}
		counter := &countingNotifier{}
		leader := &Service{Store: st, Queues: []Queue{q}, NodeID: "bench", Notifier: counter}
		lead(b, leader)
		leader.init()
		var wg sync.WaitGroup
		errs := make(chan error, q.ShardCount())
		cpu0 := make([]time.Duration, len(nodes))
		for i, addr := range nodes {
			cpu0[i] = redisCPUAt(b, addr)
		}
		own0 := processCPUTime(b)
		b.StartTimer()
		start := time.Now()
		for _, name := range q.ShardNames() {
			shard, _ := leader.shard(name)
			wg.Add(1)
			go func() { // one leader per shard, as on several nodes
				defer wg.Done()
				for {
					more, err := leader.formOnce(ctx, shard)
					if err != nil {
						errs <- err
						return
					}
					if !more {
						return
					}
				}
			}()
		}
		wg.Wait()
		passes += time.Since(start)
		b.StopTimer()
		own += processCPUTime(b) - own0
		var top time.Duration
		for i, addr := range nodes {
			d := redisCPUAt(b, addr) - cpu0[i]
			redisAll += d
			top = max(top, d)
		}
		busiest += top
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		matched.Add(counter.tickets.Load())
		b.StartTimer()
	}
	b.ReportMetric(float64(matched.Load())/passes.Seconds(), "tickets/s")
	b.ReportMetric(float64(busiest.Milliseconds())/float64(b.N), "busiest-primary-cpu-ms/op")
	b.ReportMetric(float64(redisAll.Milliseconds())/float64(b.N), "redis-cpu-ms/op")
	b.ReportMetric(float64(own.Milliseconds())/float64(b.N), "lobbyd-cpu-ms/op")
	b.ReportMetric(float64(matched.Load())/float64(int64(waiting)*int64(b.N)), "matched-share")
}
