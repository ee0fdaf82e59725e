package matchmaker

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
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
	const waiting = 50000
	for _, tier := range []string{"redis-server"} {
		b.Run(tier, func(b *testing.B) {
			srv := storetest.StartRedis(b)
			st, err := store.Open(context.Background(), store.Config{URL: srv.URL})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			q := DefaultQueues()[0]
			ctx := context.Background()
			var formed, commands, memory int64
			var redisCPU, ownCPU time.Duration
			for b.Loop() {
				b.StopTimer()
				empty := redisUsedMemory(b, srv)
				creator := &Service{Store: st, Queues: []Queue{q}, NodeID: "creator", Notifier: nopNotifier{}}
				for i := 0; i < waiting; i++ {
					if _, err := creator.Join(ctx, domain.Ticket{Queue: q.Name,
						Players: []domain.Player{{ID: uuid.NewString(), Name: "player"}}}); err != nil {
						b.Fatal(err)
					}
				}
				memory += redisUsedMemory(b, srv) - empty
				before := redisCommands(b, srv)
				redis0, own0 := redisCPUTime(b, srv), processCPUTime(b)
				leader := &Service{Store: st, Queues: []Queue{q}, NodeID: "bench", Notifier: nopNotifier{}}
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
				if depth, _ := st.QueueDepth(ctx, q.Name); depth != 0 {
					b.Fatalf("%d tickets left unmatched", depth)
				}
				formed += waiting / 4
				b.StartTimer() // b.Loop wants the timer running
			}
			b.ReportMetric(float64(formed*4)/b.Elapsed().Seconds(), "tickets/s")
			b.ReportMetric(float64(commands)/float64(formed), "redis-cmds/match")
			b.ReportMetric(float64(memory)/float64(formed*4), "redis-bytes/waiting-ticket")
			b.ReportMetric(float64(redisCPU.Milliseconds())/float64(b.N), "redis-cpu-ms/op")
			b.ReportMetric(float64(ownCPU.Milliseconds())/float64(b.N), "lobbyd-cpu-ms/op")
		})
	}
}

// redisCPUTime returns the CPU time redis-server has used (INFO cpu).
func redisCPUTime(b *testing.B, srv *storetest.RedisServer) time.Duration {
	_, port, _ := strings.Cut(srv.Addr, ":")
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

func (nopNotifier) MatchFound(context.Context, domain.Match) error     { return nil }
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
