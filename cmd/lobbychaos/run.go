package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// matchSize is the default queue's size (lobbyd's built-in queue).
const matchSize = 4

// chaosRun is one run: the cluster, the players and the fault schedule.
type chaosRun struct {
	cfg       config
	stderr    io.Writer
	start     time.Time
	cluster   *cluster
	lobbydBin string
}

func newRun(cfg config, stderr io.Writer) *chaosRun {
	return &chaosRun{cfg: cfg, stderr: stderr}
}

func (r *chaosRun) logf(format string, args ...any) {
	if r.cfg.Verbose {
		fmt.Fprintf(r.stderr, "lobbychaos %6.1fs "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
	}
}

// result is what a run measured and the checker's verdict.
type result struct {
	cfg      config
	dir      string
	timeline struct{ start, playEnd, drained, left, scanned time.Time }
	events   []faultEvent
	players  []*playerRecord
	verdict  verdict
	fake     fakeplayfab.Stats
	keys     []keyInfo
	pending  int64
	injected []string
}

// play runs the whole scenario. Its error means the run could not be made
// (a process did not start, the user interrupted it); broken invariants are
// in the result's verdict.
func (r *chaosRun) play(ctx context.Context) (res *result, err error) {
	r.start = time.Now()
	dir := r.cfg.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lobbychaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		// Logs and the append-only file stay for a run that failed.
		if err == nil && res.verdict.Violations == nil && !r.cfg.Keep && r.cfg.WorkDir == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(r.stderr, "lobbychaos: logs and Redis's append-only file are in %s\n", dir)
		}
	}()

	r.lobbydBin, err = r.binaries(ctx, dir)
	if err != nil {
		return nil, err
	}
	fakeBin := r.cfg.FakeBin
	c, err := newCluster(r.cfg, dir)
	if err != nil {
		return nil, err
	}
	r.cluster = c
	defer c.stopAll()
	if err := c.startRedis(ctx); err != nil {
		return nil, err
	}
	if err := c.startFake(ctx, fakeBin); err != nil {
		return nil, err
	}
	for i := range r.cfg.Nodes {
		if err := c.startNode(ctx, r.lobbydBin, i); err != nil {
			return nil, err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.redisAddr, MaxRetries: -1})
	defer rdb.Close()
	r.logf("cluster up: redis %s, fake %s, nodes %v (work dir %s)", c.redisAddr, c.fakeURL, c.nodeAddrs, dir)

	res = &result{cfg: r.cfg, dir: dir}
	res.timeline.start = time.Now()
	players, events := r.playAndBreak(ctx, res)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	res.events = events
	for _, e := range events {
		if e.Err != "" {
			return nil, fmt.Errorf("%s %s: %s", e.Kind, e.target(), e.Err)
		}
	}
	for _, p := range players {
		res.players = append(res.players, &p.rec)
	}
	res.timeline.left = time.Now()

	if err := r.injectSecondParties(ctx, res); err != nil {
		return nil, err
	}
	// Everyone left: wait for their grace periods to run out and be
	// handled, then look at what Redis kept.
	leakWait := r.cfg.Grace + 45*time.Second
	r.logf("players left; waiting up to %v for the grace periods", leakWait)
	_ = waitFor(ctx, leakWait, func() bool { n, err := keysThatMustGo(ctx, rdb); return err == nil && n == 0 })
	if res.keys, err = scanKeys(ctx, rdb); err != nil {
		return nil, fmt.Errorf("scan Redis: %w", err)
	}
	res.timeline.scanned = time.Now()
	res.pending = pendingJobs(ctx, rdb, res.keys)
	if res.fake, err = c.fakeStats(ctx); err != nil {
		return nil, err
	}
	ev := evidence{MatchSize: matchSize, Grace: r.cfg.Grace, Players: res.players, Fake: res.fake,
		FakeParties: map[string]fakeParty{}, Keys: res.keys}
	for _, e := range res.events {
		if e.Kind == faultNodeKill {
			ev.Kills = append(ev.Kills, e.At)
		}
	}
	for id := range deliveredMatches(res.players) {
		fp, err := c.fakePartyOf(ctx, id)
		if err == nil {
			ev.FakeParties[id] = fp
		}
	}
	res.verdict = check(ev)
	return res, nil
}

// binaries returns the lobbyd binary, built into dir unless given.
func (r *chaosRun) binaries(ctx context.Context, dir string) (string, error) {
	if r.cfg.LobbydBin != "" && r.cfg.FakeBin != "" {
		return r.cfg.LobbydBin, nil
	}
	r.logf("building lobbyd and fakeplayfab")
	lobbyd, fake, err := buildBinaries(ctx, dir)
	if err != nil {
		return "", err
	}
	if r.cfg.LobbydBin != "" {
		lobbyd = r.cfg.LobbydBin
	}
	if r.cfg.FakeBin == "" {
		r.cfg.FakeBin = fake
	}
	return lobbyd, nil
}

// playAndBreak runs the players and the fault schedule for the play phase,
// then lets the players finish the tickets they hold (the drain), and
// returns once every player left.
func (r *chaosRun) playAndBreak(ctx context.Context, res *result) ([]*player, []faultEvent) {
	stop := make(chan struct{})
	env := &playEnv{jwtSecret: r.cluster.jwtSecret, grace: r.cfg.Grace, stop: stop}
	for i := range r.cfg.Nodes {
		env.nodeURLs = append(env.nodeURLs, r.cluster.nodeURL(i))
	}
	players := make([]*player, r.cfg.Players)
	for i := range players {
		players[i] = newPlayer(env, i, r.cfg.Seed)
	}

	playersCtx, stopPlayers := context.WithCancel(ctx)
	defer stopPlayers()
	var wg sync.WaitGroup
	var active atomic.Int64
	for _, p := range players {
		wg.Add(1)
		active.Add(1)
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			p.play(playersCtx)
		}()
	}

	faultsCtx, stopFaults := context.WithTimeout(ctx, r.cfg.Duration)
	defer stopFaults()
	eventsc := make(chan []faultEvent, 1)
	go func() {
		if r.cfg.NoFaults {
			<-faultsCtx.Done()
			eventsc <- nil
			return
		}
		eventsc <- r.injectFaults(faultsCtx)
	}()
	events := <-eventsc // the play phase is over and every process is back
	res.timeline.playEnd = time.Now()
	close(stop)
	r.logf("play phase over after %d faults; draining", len(events))

	_ = waitFor(ctx, r.cfg.DrainTimeout, func() bool { return drained(players, &active, env) })
	res.timeline.drained = time.Now()
	stopPlayers()
	wg.Wait()
	return players, events
}

// drained reports whether the players are done: all left, or the only ones
// still in the queue are fewer than a match, none of them in a match still
// allocating, and no match.ready came for a while.
func drained(players []*player, active *atomic.Int64, env *playEnv) bool {
	const quiet = 3 * time.Second
	if active.Load() == 0 {
		return true
	}
	searching := 0
	for _, p := range players {
		switch p.busy.Load() {
		case 1:
			searching++
		case 2:
			return false
		}
	}
	return searching < matchSize && time.Since(time.Unix(0, env.lastReady.Load())) > quiet
}

// injectSecondParties makes a stray second RequestPartyService call for
// -inject-second-party delivered matches.
func (r *chaosRun) injectSecondParties(ctx context.Context, res *result) error {
	if r.cfg.InjectSecondParty == 0 {
		return nil
	}
	var ids []string
	for id := range deliveredMatches(res.players) {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) < r.cfg.InjectSecondParty {
		return errors.New("-inject-second-party: fewer matches were delivered than asked")
	}
	for _, id := range ids[:r.cfg.InjectSecondParty] {
		if err := r.cluster.injectSecondParty(ctx, id, matchSize); err != nil {
			return fmt.Errorf("inject a second party for %s: %w", id, err)
		}
		res.injected = append(res.injected, id)
	}
	return nil
}

// deliveredMatches is the set of match ids any player got.
func deliveredMatches(players []*playerRecord) map[string]bool {
	out := map[string]bool{}
	for _, p := range players {
		for _, d := range p.Deliveries {
			out[d.MatchID] = true
		}
	}
	return out
}
