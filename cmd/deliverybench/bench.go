package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store"
)

// benchQueue is the queue the synthetic matches name. No node serves it;
// it only appears in the payload and in the players' ticket claims.
const benchQueue = "dbench"

// bench is one run.
type bench struct {
	cfg     config
	log     io.Writer
	loadAvg string // /proc/loadavg before the run

	rdb      *redis.Client
	st       *store.Store
	nodes    []*node
	players  []*player
	rec      *recorder
	tap      *tap // with -tap
	notifier *lobby.Notifier

	callEnd []atomic.Int64 // per match: when MatchReady returned (negative: with an error)
	errMu   sync.Mutex
	errs    map[string]int64 // MatchReady errors, by message
}

func (b *bench) logf(format string, a ...any) { fmt.Fprintf(b.log, format+"\n", a...) }

func (b *bench) run(ctx context.Context) (rep *report, err error) {
	cfg := b.cfg
	b.loadAvg = loadAvg()
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("-redis-url: %w (a single Redis, redis:// or rediss://)", err)
	}
	b.rdb = redis.NewClient(opts)
	defer b.rdb.Close()
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return nil, fmt.Errorf("FLUSHDB %s: %w", cfg.RedisURL, err)
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ferr := b.rdb.FlushDB(fctx).Err(); ferr != nil && err == nil {
			err = fmt.Errorf("FLUSHDB at the end: %w", ferr)
		}
	}()

	b.st, err = store.Open(ctx, store.Config{URL: cfg.RedisURL})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer b.st.Close()
	b.notifier = &lobby.Notifier{Store: b.st}

	bin := cfg.Lobbyd
	if bin == "" {
		dir, err := os.MkdirTemp("", "deliverybench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		b.logf("building lobbyd")
		if bin, err = buildLobbyd(ctx, dir); err != nil {
			return nil, err
		}
	}

	secret := make([]byte, 32)
	rand.Read(secret)
	env := []string{
		"LOBBYD_REDIS_URL=" + cfg.RedisURL,
		"LOBBYD_JWT_SECRET=" + hex.EncodeToString(secret),
		"LOBBYD_ADDR=127.0.0.1:0",
		"LOBBYD_ADDR_HANDSHAKE_RATE=0",
		"LOBBYD_MAX_CONNS_PER_ADDR=0",
		"LOBBYD_LOG_LEVEL=warn",
	}
	defer func() {
		for _, n := range b.nodes {
			n.stop()
			if log := notableLog(n.stderr.String()); log != "" {
				b.logf("node %d (%s) logged:\n%s", n.index, n.id, log)
			}
		}
	}()
	for i := range cfg.Nodes {
		n, err := startNode(ctx, bin, i, env, cfg.CPUProfile != "")
		if err != nil {
			return nil, err
		}
		b.nodes = append(b.nodes, n)
		b.logf("node %d (%s) listening on %s", i, n.id, n.url)
	}

	b.rec = newRecorder(cfg.Players, totalMatches(cfg), randomHex(4))
	b.callEnd = make([]atomic.Int64, totalMatches(cfg))
	b.errs = map[string]int64{}
	started := time.Now()
	b.players, err = connectPlayers(ctx, cfg, b.nodes, []byte(hex.EncodeToString(secret)), b.rec)
	if err != nil {
		return nil, err
	}
	defer func() {
		b.rec.closing.Store(1)
		closePlayers(b.players)
	}()
	b.logf("%d players connected and welcomed in %v", len(b.players), time.Since(started).Round(time.Millisecond))
	if cfg.Tap {
		if b.tap, err = startTap(ctx, b.rdb, b.st, b.nodes, b.rec); err != nil {
			return nil, err
		}
		defer b.tap.stop()
	}

	return b.measure(ctx)
}

// snapshot is the CPU counters at one moment.
type snapshot struct {
	at       int64     // since t0
	nodes    []float64 // each node's process_cpu_seconds_total
	redis    float64   // used_cpu_user + used_cpu_sys
	cmdstats map[string]cmdStat
	bench    float64 // this process's user + system seconds
	// busy and all are the machine's CPU seconds, busy and in all, summed
	// over its cores (/proc/stat; 0 elsewhere).
	busy, all float64
	// stall is /proc/pressure/cpu's "some" total: how long at least one
	// runnable task waited for a CPU (-1: unknown).
	stall time.Duration
}

func (b *bench) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{at: b.rec.now(), nodes: make([]float64, len(b.nodes))}
	errs := make([]error, len(b.nodes)+1)
	var wg sync.WaitGroup
	for i, n := range b.nodes {
		wg.Go(func() { s.nodes[i], errs[i] = n.cpuSeconds(ctx) })
	}
	wg.Go(func() {
		info, err := b.rdb.Info(ctx, "cpu", "commandstats").Result()
		if err == nil {
			s.redis, s.cmdstats = parseRedisInfo(info)
		}
		errs[len(b.nodes)] = err
	})
	s.bench = processCPUSeconds()
	s.busy, s.all = machineCPUSeconds()
	s.stall = cpuStall()
	wg.Wait()
	return s, errors.Join(errs...)
}

// measure sends the matches and collects the report.
func (b *bench) measure(ctx context.Context) (*report, error) {
	cfg, rec := b.cfg, b.rec
	total := len(rec.sent)
	mps := cfg.Rate / playersPerMatch
	firstMeasured := min(total-1, int(cfg.Warmup.Seconds()*mps+0.999999))
	sched := func(k int) time.Duration { return time.Duration(float64(k) / mps * float64(time.Second)) }

	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, cfg.Concurrency)
		inFlight atomic.Int64
		maxIn    atomic.Int64
		winStart = make(chan snapshot, 1)
		profErr  = make(chan error, len(b.nodes)+1)
		profWG   sync.WaitGroup
	)
	startWindow := func() {
		go func() {
			s, err := b.snapshot(ctx)
			if err != nil {
				b.logf("CPU counters at the window's start: %v", err)
			}
			winStart <- s
		}()
		if cfg.CPUProfile != "" {
			b.startProfiles(ctx, &profWG, profErr)
		}
	}
	b.logf("sending %d matches (%d results) at %.0f results/s: %v warm-up, %v measured", total, total*playersPerMatch, cfg.Rate, cfg.Warmup, cfg.Duration)
	start := time.Duration(rec.now())
	ticker := time.NewTicker(cfg.Tick)
	defer ticker.Stop()
	progress := time.Now()
	issued := 0
	var sendErr error
send:
	for issued < total {
		select {
		case <-ctx.Done():
			sendErr = ctx.Err()
			break send
		case <-ticker.C:
		}
		elapsed := time.Duration(rec.now()) - start
		due := min(total, int(elapsed.Seconds()*mps)+1)
		for ; issued < due; issued++ {
			k := issued
			if k == firstMeasured {
				startWindow()
			}
			sem <- struct{}{}
			if n := inFlight.Add(1); n > maxIn.Load() {
				maxIn.Store(n) // only this goroutine raises it
			}
			wg.Go(func() {
				defer func() { inFlight.Add(-1); <-sem }()
				b.send(ctx, k)
			})
		}
		if time.Since(progress) >= time.Second {
			progress = time.Now()
			b.logf("  %5.1fs: %d matches started, %d frames received, %d calls in flight", elapsed.Seconds(), issued, rec.received.Load(), inFlight.Load())
		}
	}
	wg.Wait()
	if sendErr != nil {
		return nil, sendErr
	}

	// Wait for the frames still on their way, up to -grace.
	var want int64
	for k := range total {
		if b.callEnd[k].Load() > 0 {
			want += playersPerMatch
		}
	}
	deadline := time.Now().Add(cfg.Grace)
	for rec.received.Load() < want && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	end, err := b.snapshot(ctx)
	if err != nil {
		b.logf("CPU counters at the window's end: %v", err)
	}
	begin := <-winStart
	profWG.Wait()
	close(profErr)
	for err := range profErr {
		if err != nil {
			b.logf("profile: %v", err)
		}
	}
	// Frames that arrive during the grace period after everything was
	// received are duplicates: give them a moment to show.
	time.Sleep(100 * time.Millisecond)

	rep := b.report(firstMeasured, sched, start, begin, end)
	rep.MaxInFlight = maxIn.Load()
	for i, n := range b.nodes {
		if !n.alive() {
			rep.Problems = append(rep.Problems, fmt.Sprintf("node %d exited during the run: %v", i, n.err))
		}
	}
	return rep, nil
}

// send makes match k ready: one MatchReady call, as an allocation worker
// makes once PlayFab answered. The match is built first; the clock starts
// with the call.
func (b *bench) send(ctx context.Context, k int) {
	m := b.match(k)
	b.rec.sent[k].Store(b.rec.now())
	err := b.notifier.MatchReady(ctx, m)
	end := b.rec.now()
	if err != nil {
		b.callEnd[k].Store(-end)
		b.errMu.Lock()
		b.errs[err.Error()]++
		b.errMu.Unlock()
		return
	}
	b.callEnd[k].Store(end)
}

// match builds the ready match k as an allocation worker holds it after
// StoreParty: state ready, attempt 1, its players with their tickets, a
// party id, a network descriptor of the fake PlayFab's size and an
// invitation id.
//
// Every match of a player names the same ticket of theirs
// (dbench-ticket-N). store_pending_match.lua stores a copy, and so has it
// pushed, only if the match is the player's current round: their ticket
// claim is that ticket, or, with the claim released (by the first match),
// the round recorded on their pending-match hash is. With one ticket per
// player the first delivery records the round and every later one finds
// it equal, so the script does the same reads and writes as for a real
// player matched from a live claim (it only skips the claim's DEL). A
// new ticket id per match would be refused from the second on (the round
// is the earlier ticket), and no ticket at all would skip the check.
func (b *bench) match(k int) domain.Match {
	m := domain.Match{ID: b.rec.matchID(k), Queue: benchQueue, Regions: []string{"eastus"},
		State: domain.MatchReady, Attempt: 1, CreatedAt: time.Now().Add(-2 * time.Second)}
	for j := range playersPerMatch {
		i := b.rec.matchPlayer(k, j)
		m.TicketIDs = append(m.TicketIDs, ticketID(i))
		m.Players = append(m.Players, domain.Player{ID: playerID(i), Name: playerID(i), TicketID: ticketID(i)})
	}
	party, network := uuid.New(), uuid.New()
	m.PartyID = party.String()
	m.NetworkDescriptor = fakeplayfab.EncodeDescriptor(party, network, "eastus")
	m.InvitationID = uuid.NewString()
	m.ReadyAt = time.Now()
	return m
}

// startProfiles profiles every node and this process for -duration, from
// now.
func (b *bench) startProfiles(ctx context.Context, wg *sync.WaitGroup, errs chan<- error) {
	dir := b.cfg.CPUProfile
	if err := os.MkdirAll(dir, 0o755); err != nil {
		errs <- err
		return
	}
	for _, n := range b.nodes {
		wg.Go(func() {
			errs <- n.cpuProfile(ctx, b.cfg.Duration, filepath.Join(dir, fmt.Sprintf("node-%d.pprof", n.index)))
		})
	}
	f, err := os.Create(filepath.Join(dir, "bench.pprof"))
	if err != nil {
		errs <- err
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		errs <- err
		return
	}
	wg.Go(func() {
		select {
		case <-time.After(b.cfg.Duration):
		case <-ctx.Done():
		}
		pprof.StopCPUProfile()
		errs <- f.Close()
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// numCPU is reported with the figures.
var numCPU = runtime.NumCPU()

// notableLog is a node's log without the warnings every node of the bench
// logs at start (no PlayFab title, no public URL).
func notableLog(log string) string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, "no PlayFab title configured") || strings.Contains(line, "LOBBYD_PUBLIC_URL is not set") {
			continue
		}
		out = append(out, line)
	}
	return strings.TrimSpace(strings.Join(out, ""))
}
