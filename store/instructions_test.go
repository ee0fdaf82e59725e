package store_test

import (
	"context"

	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
)

// BenchmarkRedisInstructions counts the instructions Redis itself spends
// on a queue leader's work for 10,000 waiting solo tickets: reading them
// (Tickets, 2,000 at a time) and committing them in matches of 4
// (CommitMatches, 256 matches a call). It runs redis-server under
// valgrind's callgrind, which counts instructions exactly, so the figures
// repeat whatever else the machine does (wall time on a shared machine does
// not). Run it by name; it needs valgrind and redis-server:
//
//	go test -run '^$' -bench RedisInstructions -benchtime 1x ./store/
func BenchmarkRedisInstructions(b *testing.B) {
	const tickets, chunk, perCall = 10000, 2000, 256
	for _, bin := range []string{"valgrind", "callgrind_control", "redis-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skipf("%s not installed", bin)
		}
	}
	cg := startCallgrindRedis(b)
	s, err := store.Open(context.Background(), store.Config{URL: "redis://" + cg.addr})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var read, commit float64
	for b.Loop() {
		var all []domain.Ticket
		for i := 0; i < tickets; i++ {
			tk := domain.Ticket{ID: uuid.NewString(), Queue: "q", CreatedAt: time.Now(),
				Players: []domain.Player{{ID: uuid.NewString(), Name: "player"}}}
			if err := s.CreateTicket(ctx, tk); err != nil {
				b.Fatal(err)
			}
			all = append(all, tk)
		}
		read += cg.count(b, func() {
			for i := 0; i < tickets; i += chunk {
				ids := make([]string, 0, chunk)
				for _, t := range all[i:min(i+chunk, tickets)] {
					ids = append(ids, t.ID)
				}
				if got, err := s.Tickets(ctx, "q", ids); err != nil || len(got) != len(ids) {
					b.Fatalf("read %d of %d tickets: %v", len(got), len(ids), err)
				}
			}
		})
		commit += cg.count(b, func() {
			for i := 0; i < tickets; i += 4 * perCall {
				var matches []domain.Match
				for j := i; j < min(i+4*perCall, tickets); j += 4 {
					m := matchOf(all[j : j+4]...)
					// As the matchmaker forms a match of a queue without rules.
					m.Quality = &domain.Quality{Relaxed: []string{}, WaitMs: 1234}
					matches = append(matches, m)
				}
				res, err := s.CommitMatches(ctx, "q", matches)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Outcome != domain.CommitOK {
						b.Fatalf("commit: %+v", r)
					}
				}
			}
		})
	}
	b.ReportMetric(read/float64(b.N*tickets), "read-instr/ticket")
	b.ReportMetric(commit/float64(b.N*tickets), "commit-instr/ticket")
}

type callgrindRedis struct {
	addr, dir string
	cmd       *exec.Cmd
}

func startCallgrindRedis(b *testing.B) *callgrindRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cg := &callgrindRedis{addr: addr, dir: b.TempDir()}
	cg.cmd = exec.Command("valgrind", "--tool=callgrind", "--instr-atstart=no",
		"--callgrind-out-file="+filepath.Join(cg.dir, "cg.out"),
		"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", cg.dir)
	if err := cg.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cg.cmd.Process.Kill(); cg.cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return cg
		}
		if time.Now().After(deadline) {
			b.Fatal("redis-server under callgrind did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// count returns the instructions Redis ran during f.
func (cg *callgrindRedis) count(b *testing.B, f func()) float64 {
	b.Helper()
	pid := strconv.Itoa(cg.cmd.Process.Pid)
	ctl := func(args ...string) {
		if out, err := exec.Command("callgrind_control", append(args, pid)...).CombinedOutput(); err != nil {
			b.Fatalf("callgrind_control %v: %v: %s", args, err, out)
		}
	}
	ctl("-z")
	ctl("-i", "on")
	f()
	ctl("-i", "off")
	dumps, _ := filepath.Glob(filepath.Join(cg.dir, "cg.out*"))
	ctl("-d")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		now, _ := filepath.Glob(filepath.Join(cg.dir, "cg.out*"))
		for _, f := range now {
			if slices.Contains(dumps, f) {
				continue
			}
			raw, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(raw), "\n") {
				if v, ok := strings.CutPrefix(line, "totals: "); ok {
					n, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
					if err != nil {
						b.Fatalf("callgrind totals %q: %v", v, err)
					}
					return n
				}
			}
		}
	}
	b.Fatal("no callgrind dump")
	return 0
}
