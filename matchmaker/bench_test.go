package matchmaker

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// BenchmarkFormMatches measures grouping alone: 1000 solo tickets into
// matches of 4, per pass.
func BenchmarkFormMatches(b *testing.B) {
	q := DefaultQueues()[0]
	tickets := make([]domain.Ticket, 1000)
	for i := range tickets {
		tickets[i] = ticketOf(fmt.Sprint(i), 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := formMatches(q, tickets, time.Now()); len(got) != 250 {
			b.Fatalf("formed %d matches", len(got))
		}
	}
	b.ReportMetric(float64(b.N*len(tickets))/b.Elapsed().Seconds(), "tickets/s")
}

// BenchmarkFormAndCommit50k measures what issue 5 asks: a node becomes the
// leader of a queue holding 50,000 waiting solo tickets, on a real local
// redis-server, and forms and commits all their matches (reading them all,
// grouping, 12,500 matches in chunked commit scripts). Tickets are created
// outside the timer. It also reports Redis commands per match, from INFO
// commandstats (commands run inside scripts included), Redis memory per
// waiting ticket (used_memory before and after creating them, player
// claims included), and the CPU time Redis and the benchmark's own process
// spent per pass. The embedded Redis is not measured at this size: it is
// for development.
func BenchmarkFormAndCommit50k(b *testing.B) {
	b.Run("redis-server", func(b *testing.B) {
		q := DefaultQueues()[0]
		benchFormAndCommit(b, q, 50000, func(int) domain.Ticket {
			return domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: uuid.NewString(), Name: "player"}}}
		})
	})
}

// BenchmarkFormAndCommit50kRules is BenchmarkFormAndCommit50k for issue
// 13, in one run: "solo4" is the plain queue of BenchmarkFormAndCommit50k,
// "5v5" a queue of two teams of five (balanced by skill, at most 50
// apart) with two attributes, an equal mode of two values and an
// intersect vote of two maps out of three, 30% of its tickets lobbies of 2
// to 5, 50,000 waiting tickets each. Tickets/s counts the tickets matched:
// a few of the 5v5 queue's cannot form a match, and wait into the next
// round (matched-share says how many were matched).
func BenchmarkFormAndCommit50kRules(b *testing.B) {
	b.Run("solo4", func(b *testing.B) {
		q := DefaultQueues()[0]
		benchFormAndCommit(b, q, 50000, func(int) domain.Ticket {
			return domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: uuid.NewString(), Name: "player"}}}
		})
	})
	b.Run("5v5", func(b *testing.B) {
		q := benchRulesQueue()
		rng := rand.New(rand.NewPCG(13, 5))
		benchFormAndCommit(b, q, 50000, func(int) domain.Ticket { return benchRulesTicket(rng, q) })
	})
}

// benchRulesQueue is the 5v5 queue of the issue 13 benchmarks.
func benchRulesQueue() Queue {
	q := DefaultQueues()[0]
	q.Name, q.MaxUsers = "ranked5v5", 10
	q.Teams = TeamRule{Count: 2, Size: 5, MaxImbalance: 50, WidenPerSecond: 5, MaxImbalanceCap: 300}
	q.Skill = SkillRule{InitialWindow: 200, WidenPerSecond: 10, MaxWindow: 600}
	q.Attributes = []Attribute{{Name: "mode", Type: domain.AttrString}, {Name: "maps", Type: domain.AttrStrings}}
	q.ApplyDefaults()
	return q
}

// benchRulesTicket is a ticket of benchRulesQueue: a solo or (30%) a lobby
// of 2 to 5, skill around 1500, a mode of two and two maps of three.
func benchRulesTicket(rng *rand.Rand, q Queue) domain.Ticket {
	size := 1
	if rng.IntN(10) < 3 {
		size = 2 + rng.IntN(4)
	}
	t := domain.Ticket{Queue: q.Name, Skill: math.Round(1500 + rng.NormFloat64()*300)}
	for range size {
		t.Players = append(t.Players, domain.Player{ID: uuid.NewString(), Name: "player"})
	}
	if size > 1 {
		t.LobbyID = uuid.NewString()
	}
	maps := []string{"dust", "harbor", "mill"}
	drop := rng.IntN(3)
	t.Attributes = map[string]domain.AttrValue{
		"mode": {Type: domain.AttrString, Str: []string{"ctf", "tdm"}[rng.IntN(2)]},
		"maps": {Type: domain.AttrStrings, Strs: slices.Delete(maps, drop, drop+1)},
	}
	return t
}

// benchFormAndCommit is BenchmarkFormAndCommit50k on queue q with waiting
// tickets made by ticket.
func benchFormAndCommit(b *testing.B, q Queue, waiting int, ticket func(i int) domain.Ticket) {
	srv := storetest.StartRedis(b)
	st, err := store.Open(context.Background(), store.Config{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	var formed, matchedTickets, commands, memory int64
	var redisCPU, ownCPU time.Duration
	for b.Loop() {
		b.StopTimer()
		empty := redisUsedMemory(b, srv)
		creator := &Service{Store: st, Queues: []Queue{q}, NodeID: "creator", Notifier: nopNotifier{}}
		for i := 0; i < waiting; i++ {
			if _, err := creator.Join(ctx, ticket(i)); err != nil {
				b.Fatal(err)
			}
		}
		memory += redisUsedMemory(b, srv) - empty
		before := redisCommands(b, srv)
		redis0, own0 := redisCPUTime(b, srv), processCPUTime(b)
		counter := &countingNotifier{}
		leader := &Service{Store: st, Queues: []Queue{q}, NodeID: "bench", Notifier: counter}
		lead(b, leader)
		leader.init()
		b.StartTimer()
		for {
			more, err := leader.formOnce(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			if !more {
				break
			}
		}
		b.StopTimer()
		redisCPU += redisCPUTime(b, srv) - redis0
		ownCPU += processCPUTime(b) - own0
		commands += redisCommands(b, srv) - before
		if !q.Teams.Enabled() && len(q.Attributes) == 0 {
			if depth, _ := st.QueueDepth(ctx, q.Name); depth != 0 {
				b.Fatalf("%d tickets left unmatched", depth)
			}
		}
		formed += counter.matches.Load()
		matchedTickets += counter.tickets.Load()
		b.StartTimer() // b.Loop wants the timer running
	}
	b.ReportMetric(float64(matchedTickets)/b.Elapsed().Seconds(), "tickets/s")
	b.ReportMetric(float64(commands)/float64(formed), "redis-cmds/match")
	b.ReportMetric(float64(memory)/float64(int64(waiting)*int64(b.N)), "redis-bytes/waiting-ticket")
	b.ReportMetric(float64(redisCPU.Milliseconds())/float64(b.N), "redis-cpu-ms/op")
	b.ReportMetric(float64(ownCPU.Milliseconds())/float64(b.N), "lobbyd-cpu-ms/op")
	b.ReportMetric(float64(matchedTickets)/float64(int64(waiting)*int64(b.N)), "matched-share")
}

// countingNotifier counts the matches announced and their tickets.
type countingNotifier struct{ matches, tickets atomic.Int64 }

func (c *countingNotifier) MatchesFound(_ context.Context, ms []domain.Match) error {
	for _, m := range ms {
		c.matches.Add(1)
		c.tickets.Add(int64(len(m.TicketIDs)))
	}
	return nil
}

func (*countingNotifier) TicketExpired(context.Context, domain.Ticket) error { return nil }

// BenchmarkFormMatchesRules is BenchmarkFormMatches for issue 13: 1000
// tickets of the 5v5 benchmark queue (teams, two attributes, lobbies)
// grouped in memory, per pass.
func BenchmarkFormMatchesRules(b *testing.B) {
	q := benchRulesQueue()
	rng := rand.New(rand.NewPCG(13, 6))
	now := time.Now()
	tickets := make([]domain.Ticket, 1000)
	for i := range tickets {
		tickets[i] = benchRulesTicket(rng, q)
		tickets[i].ID, tickets[i].CreatedAt = fmt.Sprint(i), now.Add(time.Duration(i-len(tickets))*time.Millisecond)
	}
	b.ReportAllocs()
	matched := 0
	for b.Loop() {
		matched = 0
		for _, m := range formMatches(q, tickets, now) {
			matched += len(m.TicketIDs)
		}
	}
	b.ReportMetric(float64(b.N*len(tickets))/b.Elapsed().Seconds(), "tickets/s")
	b.ReportMetric(float64(matched)/float64(len(tickets)), "matched-share")
}

// redisCPUTime returns the CPU time redis-server has used (INFO cpu).
func redisCPUTime(b *testing.B, srv *storetest.RedisServer) time.Duration {
	return redisCPUAt(b, srv.Addr)
}

// redisCPUAt returns the CPU time the redis-server at addr has used.
func redisCPUAt(b *testing.B, addr string) time.Duration {
	_, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("redis-cli", "-p", port, "INFO", "cpu").Output()
	if err != nil {
		b.Fatalf("redis-cli: %v", err)
	}
	var seconds float64
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		for _, field := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, field); ok {
				f, _ := strconv.ParseFloat(v, 64)
				seconds += f
			}
		}
	}
	return time.Duration(seconds * float64(time.Second))
}

// processCPUTime returns the CPU time this process has used.
func processCPUTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisUsedMemory returns Redis's used_memory (INFO memory).
func redisUsedMemory(b *testing.B, srv *storetest.RedisServer) int64 {
	_, port, _ := strings.Cut(srv.Addr, ":")
	out, err := exec.Command("redis-cli", "-p", port, "INFO", "memory").Output()
	if err != nil {
		b.Fatalf("redis-cli: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// redisCommands sums the calls in INFO commandstats.
func redisCommands(b *testing.B, srv *storetest.RedisServer) int64 {
	_, port, _ := strings.Cut(srv.Addr, ":")
	out, err := exec.Command("redis-cli", "-p", port, "INFO", "commandstats").Output()
	if err != nil {
		b.Fatalf("redis-cli: %v", err)
	}
	var total int64
	for _, line := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(line, "calls="); ok {
			n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			total += n
		}
	}
	return total
}

type nopNotifier struct{}

func (nopNotifier) MatchesFound(context.Context, []domain.Match) error { return nil }
func (nopNotifier) TicketExpired(context.Context, domain.Ticket) error { return nil }

// BenchmarkJoinLeaveMemory measures what issue 11 found: the Redis memory
// that one player's queue.join + queue.leave cycles leave behind, each
// join listing one queue region and 31 junk regions of 118 characters (the
// most a 4 KiB frame carries). It runs Service.Join and Service.Leave, as
// the gateway does, on a real local redis-server, and reports used_memory
// (INFO memory) after the cycles minus before, per cycle, once the queue's
// incoming list is taken (a leader takes it every 50 ms), and the longest
// time to live left on a ticket key (0: none left). One op is one cycle:
// run it with -benchtime 2000x.
func BenchmarkJoinLeaveMemory(b *testing.B) {
	srv := storetest.StartRedis(b)
	st, err := store.Open(context.Background(), store.Config{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	q := DefaultQueues()[0]
	svc := &Service{Store: st, Queues: []Queue{q}, NodeID: "bench", Notifier: nopNotifier{}}
	regions := []string{q.Regions[0]}
	for i := len(regions); i < 32; i++ {
		regions = append(regions, fmt.Sprintf("%02d%s", i, strings.Repeat("x", 116)))
	}
	ctx := context.Background()
	player := domain.Player{ID: uuid.NewString(), Name: "player"}
	before := redisUsedMemory(b, srv)
	for b.Loop() {
		if _, err := svc.Join(ctx, domain.Ticket{Queue: q.Name, Players: []domain.Player{player}, Regions: regions}); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Leave(ctx, player.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if _, err := st.SnapshotSearching(ctx, q.Name, true); err != nil {
		b.Fatal(err)
	}
	left := redisUsedMemory(b, srv) - before
	b.ReportMetric(float64(left)/float64(b.N), "redis-bytes/cycle")
	b.ReportMetric(maxTicketTTL(b, srv, q.Name).Seconds(), "max-ticket-ttl-s")
	b.StartTimer()
}

// maxTicketTTL returns the longest time to live among the queue's ticket
// keys (0 when there are none), in one EVAL.
func maxTicketTTL(b *testing.B, srv *storetest.RedisServer, queue string) time.Duration {
	const script = `local m = 0
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do m = math.max(m, redis.call('PTTL', k)) end
return m`
	_, port, _ := strings.Cut(srv.Addr, ":")
	out, err := exec.Command("redis-cli", "-p", port, "EVAL", script, "0", "{q:"+queue+"}:t:*").Output()
	if err != nil {
		b.Fatalf("redis-cli: %v", err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		b.Fatalf("redis-cli PTTL: %q", out)
	}
	return time.Duration(ms) * time.Millisecond
}

// BenchmarkBestSplit is one team split of a completing match of solos,
// skills around 1500 ± 300: the exact search (2×5, 5×2, 3×4) and the
// heuristic past it (4×4), backing docs/matchmaking.md.
func BenchmarkBestSplit(b *testing.B) {
	for _, shape := range []struct{ count, size int }{{2, 5}, {5, 2}, {3, 4}, {4, 4}} {
		b.Run(fmt.Sprintf("%dx%d", shape.count, shape.size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(9, 15))
			s := newSplitter(shape.count, shape.size)
			sizes := make([]int, shape.count*shape.size)
			skills := make([]float64, len(sizes))
			for i := range sizes {
				sizes[i], skills[i] = 1, math.Round(1500+rng.NormFloat64()*300)
			}
			for b.Loop() {
				if _, _, ok := s.bestSplit(sizes, skills); !ok {
					b.Fatal("no split")
				}
			}
		})
	}
}
