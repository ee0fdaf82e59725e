// Command lobbychaos is lobbyd's own fault test. It starts a real
// redis-server with an append-only file, the fake PlayFab (cmd/fakeplayfab)
// with faults on, and several lobbyd nodes (the real binaries), all on
// loopback ports it picks; simulated players play round after round while
// it kills nodes (SIGKILL, then a restart on the same port) and restarts
// Redis (SIGKILL, a few seconds down, a restart on the same port and
// append-only file). Then it checks the invariants lobbyd promises:
//
//   - no player is in two matches, and every match has exactly the queue's
//     size;
//   - one party per match: at most one successful RequestPartyService per
//     match, apart from retries after a reply the fake dropped (counted
//     apart);
//   - no lost player, no stale redelivery, and no leaked Redis key once
//     everyone left and the reconnect grace passed.
//
// It prints what it measured (docs/operations.md, "Failure modes") and
// exits non-zero when an invariant broke. It touches only the processes
// and ports it started, stops them by pid, and ends by itself. See
// README.md, "Fault test".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lobbychaos:", err)
		os.Exit(1)
	}
}

// config is every setting of one chaos run.
type config struct {
	// LobbydBin and FakeBin are the binaries to run; empty builds them
	// (go build, from the module root) into the work directory.
	LobbydBin, FakeBin string
	RedisBin           string
	WorkDir            string // logs and the append-only file; empty: a temporary directory
	Keep               bool   // keep WorkDir after a run that passed

	Nodes    int
	Players  int
	Duration time.Duration // play phase; draining and checks come after

	// The fault schedule: one fault every FaultEvery, node kills and Redis
	// restarts alternating (node kills take the nodes in turn).
	FaultEvery time.Duration
	NodeDown   time.Duration // between a node's kill and its restart
	RedisDown  time.Duration // between Redis's kill and its restart
	NoFaults   bool          // PlayFab faults only: no kills, no restarts

	ErrorRate, ThrottleRate, DropRate float64
	RetryAfter                        time.Duration
	FakeMode                          string

	Grace              time.Duration // LOBBYD_RECONNECT_GRACE of the nodes
	AllocationDeadline time.Duration // LOBBYD_ALLOCATION_DEADLINE of the nodes
	DrainTimeout       time.Duration

	// InjectSecondParty calls RequestPartyService once more, as a stray
	// allocator would, for this many delivered matches after the play:
	// the checker must then fail the run. It proves the check can fail.
	InjectSecondParty int

	Seed    uint64
	Verbose bool
}

func loadConfig(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("lobbychaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.LobbydBin, "lobbyd", "", "lobbyd binary (default: go build ./cmd/lobbyd into the work directory)")
	fs.StringVar(&cfg.FakeBin, "fakeplayfab", "", "fakeplayfab binary (default: go build ./cmd/fakeplayfab into the work directory)")
	fs.StringVar(&cfg.RedisBin, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&cfg.WorkDir, "dir", "", "work directory for logs and Redis's append-only file (default: a new temporary directory, removed after a run that passed)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work directory even when the run passed")
	fs.IntVar(&cfg.Nodes, "nodes", 3, "lobbyd nodes")
	fs.IntVar(&cfg.Players, "players", 60, "simulated players (solo, queue default, match size 4)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "play phase; draining, leaving and the checks follow")
	fs.DurationVar(&cfg.FaultEvery, "fault-every", 20*time.Second, "time between faults (node kills and Redis restarts alternate)")
	fs.DurationVar(&cfg.NodeDown, "node-down", time.Second, "time a killed node stays down before its restart")
	fs.DurationVar(&cfg.RedisDown, "redis-down", 3*time.Second, "time Redis stays down before its restart")
	fs.BoolVar(&cfg.NoFaults, "no-kills", false, "kill no node and restart no Redis (PlayFab faults stay)")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0.05, "share of RequestPartyService calls the fake answers 5xx")
	fs.Float64Var(&cfg.ThrottleRate, "throttle-rate", 0.05, "share of calls the fake answers 429")
	fs.Float64Var(&cfg.DropRate, "drop-rate", 0.02, "share of calls whose party the fake creates and whose reply it drops")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", 500*time.Millisecond, "retry-after of the fake's 429s")
	fs.StringVar(&cfg.FakeMode, "fake-mode", "dedupe", "fake PlayFab mode: dedupe, or new (a new party on every call)")
	fs.DurationVar(&cfg.Grace, "grace", 5*time.Second, "LOBBYD_RECONNECT_GRACE of the nodes (short, so the leak check comes soon)")
	fs.DurationVar(&cfg.AllocationDeadline, "allocation-deadline", 5*time.Second, "LOBBYD_ALLOCATION_DEADLINE of the nodes (a dead node's jobs are claimed after it plus 15s)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 60*time.Second, "after the play phase, longest wait for the tickets still out")
	fs.IntVar(&cfg.InjectSecondParty, "inject-second-party", 0, "after the play, call RequestPartyService again for this many delivered matches (the run must then fail: proves the check)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the players' pauses and back-off jitter")
	fs.BoolVar(&cfg.Verbose, "v", false, "log each fault and phase to stderr as it happens")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
	}
	var errs []error
	if cfg.Nodes < 1 {
		errs = append(errs, errors.New("-nodes: at least 1"))
	}
	if cfg.Players < 4 {
		errs = append(errs, errors.New("-players: at least 4 (one match)"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-duration", cfg.Duration}, {"-fault-every", cfg.FaultEvery}, {"-node-down", cfg.NodeDown}, {"-redis-down", cfg.RedisDown},
		{"-grace", cfg.Grace}, {"-allocation-deadline", cfg.AllocationDeadline}, {"-drain-timeout", cfg.DrainTimeout}, {"-retry-after", cfg.RetryAfter}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", d.name))
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"-error-rate", cfg.ErrorRate}, {"-throttle-rate", cfg.ThrottleRate}, {"-drop-rate", cfg.DropRate}} {
		if r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("%s: between 0 and 1", r.name))
		}
	}
	if cfg.FakeMode != "dedupe" && cfg.FakeMode != "new" {
		errs = append(errs, fmt.Errorf("-fake-mode: dedupe or new, got %q", cfg.FakeMode))
	}
	if cfg.InjectSecondParty < 0 {
		errs = append(errs, errors.New("-inject-second-party: 0 or more"))
	}
	return cfg, errors.Join(errs...)
}

// run plays one chaos run and writes its report to stdout. Its error says
// the run could not be made or an invariant broke.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	res, err := newRun(cfg, stderr).play(ctx)
	if err != nil {
		return err
	}
	if err := res.writeText(stdout); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return res.err()
}
