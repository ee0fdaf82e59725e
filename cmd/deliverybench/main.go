// Command deliverybench measures how long a match.ready takes from the
// allocation worker of one node to the sockets of its players on other
// nodes (issue 17): lobby.Notifier.MatchReady → store.DeliverMatch (the
// players' copies and presence lookups in one pipeline, then one PUBLISH
// per node) → each node's relay and hub → the socket.
//
// It starts -nodes lobbyd processes on a real Redis (-redis-url, a scratch
// database: it is FLUSHed at the start and at the end), connects -players
// sockets spread over them, and then plays the allocator of another node
// in this process: it opens a store.Store on the same Redis and calls
// Notifier.MatchReady for synthetic ready matches of 4 connected players
// each, at -rate results (frames to one player) per second, for -warmup
// plus -duration. Each frame is timed from the start of its MatchReady
// call to the moment this process's reader of the player's socket has it
// (one process, one monotonic clock). It reports the latency percentiles
// of the frames sent after the warm-up, the frames lost or received twice,
// and the CPU the nodes, Redis and the bench spent over the measured
// window.
//
//	go run ./cmd/deliverybench -rate 5000
//	go run ./cmd/deliverybench -rate 5000 -json -cpuprofile /tmp/prof
package main

import (
	"context"
	"encoding/json"
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
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "deliverybench:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	RedisURL        string        `json:"redisUrl"`
	Lobbyd          string        `json:"lobbyd,omitempty"`
	Nodes           int           `json:"nodes"`
	Players         int           `json:"players"`
	Rate            float64       `json:"rate"`
	Duration        time.Duration `json:"durationNs"`
	Warmup          time.Duration `json:"warmupNs"`
	Grace           time.Duration `json:"graceNs"`
	Tick            time.Duration `json:"tickNs"`
	Concurrency     int           `json:"concurrency"`
	DialConcurrency int           `json:"dialConcurrency"`
	CPUProfile      string        `json:"cpuProfile,omitempty"`
	Tap             bool          `json:"tap,omitempty"`
	JSON            bool          `json:"-"`
	Quiet           bool          `json:"-"`
}

// playersPerMatch is the size of every synthetic match: one MatchReady
// sends this many results.
const playersPerMatch = 4

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("deliverybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/13", "Redis (single node) shared by the nodes and the bench; its database is FLUSHed at the start and the end: give it a scratch one")
	fs.StringVar(&c.Lobbyd, "lobbyd", "", "lobbyd binary to run; empty: go build ./cmd/lobbyd into a temporary directory (run from the module)")
	fs.IntVar(&c.Nodes, "nodes", 2, "receiving lobbyd nodes to start")
	fs.IntVar(&c.Players, "players", 4000, "sockets to connect, spread round-robin over the nodes")
	fs.Float64Var(&c.Rate, "rate", 5000, "results per second: match.ready frames to one player each; a match of 4 is 4 results")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured sending time, after the warm-up")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "sending time before the measured window: its frames are checked (lost, duplicates) but not timed")
	fs.DurationVar(&c.Grace, "grace", 5*time.Second, "how long after the last send a frame may still arrive before it counts as lost")
	fs.DurationVar(&c.Tick, "tick", 5*time.Millisecond, "pacing tick: each tick starts every match due by then, by the clock since the start (no drift)")
	fs.IntVar(&c.Concurrency, "concurrency", 256, "MatchReady calls in flight at most, as the allocation workers' default concurrency")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", 64, "sockets being opened at once during set-up")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "directory to write CPU profiles of the measured window to: node-N.pprof (from each node's LOBBYD_DEBUG_ADDR) and bench.pprof")
	fs.BoolVar(&c.Tap, "tap", false, "also listen on the nodes' channels, to split each frame's time at the publish (adds a little work to Redis and the bench)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON instead of text")
	fs.BoolVar(&c.Quiet, "q", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: deliverybench [flags]\n\nMeasures match.ready delivery from an allocator to sockets on other lobbyd nodes.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if c.Nodes < 1 {
		errs = append(errs, errors.New("-nodes must be at least 1"))
	}
	if c.Players < playersPerMatch || c.Players < c.Nodes {
		errs = append(errs, fmt.Errorf("-players must be at least %d and at least -nodes", playersPerMatch))
	}
	if c.Rate <= 0 {
		errs = append(errs, errors.New("-rate must be positive"))
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.Grace <= 0 || c.Tick <= 0 {
		errs = append(errs, errors.New("-duration, -grace and -tick must be positive, -warmup not negative"))
	}
	if c.Concurrency < 1 || c.DialConcurrency < 1 {
		errs = append(errs, errors.New("-concurrency and -dial-concurrency must be at least 1"))
	}
	if c.Rate > 0 && c.Duration > 0 && c.Warmup >= 0 {
		if n := totalMatches(c); n < 1 || n > 50_000_000 {
			errs = append(errs, fmt.Errorf("-rate × (-warmup + -duration) gives %d matches: want 1 to 50,000,000", n))
		}
	}
	return c, errors.Join(errs...)
}

// totalMatches is how many matches a run sends.
func totalMatches(c config) int {
	return int(c.Rate / playersPerMatch * (c.Warmup + c.Duration).Seconds())
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	progress := io.Writer(stderr)
	if cfg.Quiet {
		progress = io.Discard
	}
	rep, err := (&bench{cfg: cfg, log: progress}).run(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.writeText(stdout)
	return nil
}
