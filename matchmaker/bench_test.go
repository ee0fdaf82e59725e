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

	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// BenchmarkFormMatches measures grouping alone: 1000 solo tickets into
// matches of 4, per pass.
func BenchmarkFormMatches(b *testing.B) {
	q := DefaultQueues()[0]
	tickets := make([]store.Ticket, 1000)
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
					if _, err := creator.Join(ctx, store.Ticket{Queue: q.Name,
						Players: []store.Player{{ID: uuid.NewString(), Name: "player"}}}); err != nil {
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

func (nopNotifier) MatchFound(context.Context, store.Match) error     { return nil }
func (nopNotifier) TicketExpired(context.Context, store.Ticket) error { return nil }
