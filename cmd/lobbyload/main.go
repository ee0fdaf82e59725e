// Command lobbyload is a load generator for lobbyd: it plays many simulated
// players over real WebSockets against a running lobbyd, checks that the
// server keeps the client protocol (docs/protocol.md), and reports
// throughput and latencies. It exits non-zero on any protocol violation,
// duplicate delivery or lost player. See README.md, "Load generator".
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lobbyd/lobbyd/internal/envflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if spec, ok := workerSpec(os.Args[1:]); ok {
		// A worker process of -procs (see procs.go): its settings come on
		// stdin, its results go to stdout.
		if err := runWorker(ctx, spec, os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "lobbyload worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lobbyload:", err)
		os.Exit(1)
	}
}

// config is every setting of one load run.
type config struct {
	// URL is -url as given (trailing slashes trimmed): one lobbyd base URL,
	// http:// or https://, or a comma-separated list of them; URLs is its
	// elements. Player i connects to URLs[i mod len(URLs)] first, and a
	// player whose socket is lost reconnects to the next one.
	URL  string
	URLs []string
	// ReconnectTo is where a player whose socket is lost reconnects
	// first: reconnectNext or reconnectRandom.
	ReconnectTo    string
	Players        int
	Rate           float64 // players started per second; 0 starts all at once
	Duration       time.Duration
	Queue          string
	LobbyShare     float64
	LobbySize      int
	LeaveShare     float64
	ReconnectShare float64
	ConnectOnly    bool
	// Preconnect connects every player first and starts queueing only once
	// all are connected or failed, so the queueing phase measures
	// matchmaking without the cost of accepting connections.
	Preconnect bool
	SourceIPs  []netip.Addr
	// JWTSecret signs tokens locally when set; otherwise tokens come from
	// POST /v1/dev/token. It is never printed.
	JWTSecret     string
	MaxConnecting int
	JSON          bool
	JSONFile      string
	HTMLFile      string
	Progress      string // auto, on, off
	Seed          uint64
	FlushWait     time.Duration
	Settle        time.Duration
	// RedisURL, when set, is the Redis lobbyd uses, read (INFO cpu) for
	// its CPU per matched player.
	RedisURL string
	// Pingers and Abusers select the abuse scenario (see abuse.go) instead
	// of matchmaking.
	Pingers, Abusers int
	// SampleInterval is how often the time series of the report are
	// sampled (the generator's counters and lobbyd's /metrics).
	SampleInterval time.Duration
	// Label names the run in the report (say, the branch under test);
	// ServerVersion is lobbyd's version or commit, when the caller knows
	// it (loadtest.sh passes the commit of the lobbyd it built).
	Label, ServerVersion string
	// BaselineFile is a JSON report (-json) of an earlier run that the
	// report compares this one with.
	BaselineFile string
	// ReportFrom is a JSON report whose reports are written instead of
	// running.
	ReportFrom string
	// Procs is how many worker processes play the players (see procs.go);
	// 1 plays them all in this process.
	Procs int
	// Settings is every flag's value after parsing, for the report.
	Settings []setting
}

// Values of -reconnect-to.
const (
	reconnectNext   = "next"
	reconnectRandom = "random"
)

// setting is one flag of the run as the report shows it.
type setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// From says where the value came from: "flag", "env" (its
	// LOBBYLOAD_ variable) or "default".
	From  string `json:"from"`
	Usage string `json:"usage"`
}

func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("lobbyload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "lobbyd base URL, or a comma-separated list of them: player i connects to URL i mod n first, and a player whose socket is lost (close 1001 from a drain or shutdown, a reset) reconnects to the next URL in the list after a backoff")
	fs.StringVar(&cfg.ReconnectTo, "reconnect-to", reconnectNext, "where a player whose socket is lost reconnects first: next (the next URL of -url) or random (any other URL of -url, at random, as behind a load balancer); after a failed attempt, the URL after that")
	fs.IntVar(&cfg.Players, "players", 100, "total simulated players")
	fs.Float64Var(&cfg.Rate, "rate", 0, "players starting per second, or with -preconnect starting to queue (0: all at once, at most -max-connecting dialling at a time)")
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "longest run; the run ends earlier once every player is matched or failed")
	fs.StringVar(&cfg.Queue, "queue", "default", "queue to play in")
	fs.Float64Var(&cfg.LobbyShare, "lobby-share", 0, "share of players (0-1) who queue in lobbies of -lobby-size")
	fs.IntVar(&cfg.LobbySize, "lobby-size", 2, "members per lobby")
	fs.Float64Var(&cfg.LeaveShare, "leave-share", 0, "share of players (0-1) who send queue.leave after queueing, then queue again")
	fs.Float64Var(&cfg.ReconnectShare, "reconnect-share", 0, "share of players (0-1) who drop their socket while queued and reconnect at once")
	fs.BoolVar(&cfg.ConnectOnly, "connect-only", false, "only connect the players and hold the sockets until -duration passes")
	fs.BoolVar(&cfg.Preconnect, "preconnect", false, "connect every player first (at most -max-connecting at a time), then, once all are connected or failed, start queueing (at -rate, or all at once); throughput and queue.join latencies cover the queueing phase only")
	sourceIPs := fs.String("source-ips", "", "local addresses to dial from, round robin: a range 127.0.0.1-127.0.0.8 or a comma-separated list")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret to sign player tokens with (better set by the environment: flags show in ps); without it tokens come from POST /v1/dev/token")
	fs.IntVar(&cfg.MaxConnecting, "max-connecting", 256, "most connection attempts in flight at once")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&cfg.JSONFile, "json-file", "", "also write the report as JSON (as -json prints it) to this file, say for a later -baseline")
	fs.StringVar(&cfg.HTMLFile, "html", "", "also write the report as a self-contained HTML page to this file")
	fs.StringVar(&cfg.Progress, "progress", "auto", "progress line on stderr every second: auto (when stderr is a terminal), on, off")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the assignment of roles to players")
	fs.DurationVar(&cfg.FlushWait, "flush-wait", 5*time.Second, "after the run, how long each matched player may take to confirm no duplicate match.ready is pending")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "after a leave landed behind match.found and the player queued again, end early once nobody was matched for this long (0: wait for -duration)")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "the Redis lobbyd uses (redis://host:port), read with INFO cpu for Redis's CPU per matched player; empty: lobbyd's CPU only")
	fs.IntVar(&cfg.Pingers, "pingers", 0, "abuse scenario: well-behaved players who only ping, every 100ms, and report the round trip (with -abusers; no matchmaking)")
	fs.IntVar(&cfg.Abusers, "abusers", 0, "abuse scenario: players flooding invalid frames and reconnecting at once whenever closed, for -duration")
	fs.DurationVar(&cfg.SampleInterval, "sample-interval", 250*time.Millisecond, "how often the report's time series (matched/s, queue depth, connections, lobbyd's CPU and memory from its /metrics) are sampled")
	fs.StringVar(&cfg.Label, "label", "", "a name for this run, shown in the reports (say, the branch or change under test)")
	fs.StringVar(&cfg.ServerVersion, "server-version", "", "lobbyd's version or commit, shown in the reports (loadtest.sh passes the commit of the lobbyd it built)")
	fs.StringVar(&cfg.BaselineFile, "baseline", "", "a JSON report (-json) of an earlier run: the reports show this run next to it, with the differences")
	fs.IntVar(&cfg.Procs, "procs", 1, "worker processes of lobbyload to play the players (each holds its share of the sockets, for runs beyond one process's open-files limit); the parent merges their results into one report")
	fs.StringVar(&cfg.ReportFrom, "report-from", "", "do not run: write the reports (text, -json, -json-file, -html; with -baseline) of the earlier run whose JSON report is in this file")
	if err := envflag.Parse(fs, "LOBBYLOAD_", args, getenv); err != nil {
		return cfg, err
	}
	cfg.Settings = settingsOf(fs, "LOBBYLOAD_", getenv)

	var errs []error
	var err error
	if cfg.URLs, err = parseURLs(cfg.URL); err != nil {
		errs = append(errs, fmt.Errorf("-url: %w", err))
	}
	if len(cfg.URLs) > 0 {
		cfg.URL = strings.Join(cfg.URLs, ",")
	}
	if cfg.ReconnectTo != reconnectNext && cfg.ReconnectTo != reconnectRandom {
		errs = append(errs, fmt.Errorf("-reconnect-to: next or random, got %q", cfg.ReconnectTo))
	}
	if cfg.Players < 1 {
		errs = append(errs, errors.New("-players: at least 1"))
	}
	if cfg.Rate < 0 {
		errs = append(errs, errors.New("-rate: 0 or more"))
	}
	if cfg.Duration <= 0 {
		errs = append(errs, errors.New("-duration: must be positive"))
	}
	if cfg.LobbySize < 1 {
		errs = append(errs, errors.New("-lobby-size: at least 1"))
	}
	if cfg.MaxConnecting < 1 {
		errs = append(errs, errors.New("-max-connecting: at least 1"))
	}
	for name, v := range map[string]float64{"-lobby-share": cfg.LobbyShare, "-leave-share": cfg.LeaveShare, "-reconnect-share": cfg.ReconnectShare} {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%s: between 0 and 1, got %v", name, v))
		}
	}
	if cfg.Procs < 1 || cfg.Procs > maxProcs {
		errs = append(errs, fmt.Errorf("-procs: 1 to %d", maxProcs))
	} else if cfg.Procs > 1 {
		if cfg.Procs > cfg.Players {
			errs = append(errs, errors.New("-procs: at most -players"))
		}
		if cfg.Pingers > 0 || cfg.Abusers > 0 {
			errs = append(errs, errors.New("-procs: the abuse scenario (-pingers, -abusers) runs in one process"))
		}
	}
	if cfg.Preconnect && cfg.ConnectOnly {
		errs = append(errs, errors.New("-preconnect and -connect-only exclude each other: -connect-only never queues"))
	}
	if cfg.SampleInterval < 10*time.Millisecond {
		errs = append(errs, errors.New("-sample-interval: at least 10ms"))
	}
	if cfg.Progress != "auto" && cfg.Progress != "on" && cfg.Progress != "off" {
		errs = append(errs, fmt.Errorf("-progress: auto, on or off, got %q", cfg.Progress))
	}
	if *sourceIPs != "" {
		if cfg.SourceIPs, err = parseSourceIPs(*sourceIPs); err != nil {
			errs = append(errs, fmt.Errorf("-source-ips: %w", err))
		}
	}
	return cfg, errors.Join(errs...)
}

// settingsOf lists every flag of fs with its value and where the value
// came from, in name order. Secrets show only whether they are set.
func settingsOf(fs *flag.FlagSet, prefix string, getenv func(string) string) []setting {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var out []setting
	fs.VisitAll(func(f *flag.Flag) {
		s := setting{Name: f.Name, Value: f.Value.String(), From: "default", Usage: f.Usage}
		switch {
		case given[f.Name]:
			s.From = "flag"
		case getenv(envflag.EnvName(prefix, f.Name)) != "":
			s.From = "env"
		}
		switch {
		case f.Name == "jwt-secret" && s.Value != "":
			s.Value = "(set, not shown)"
		case f.Name == "redis-url":
			if u, err := url.Parse(s.Value); err == nil && u.User != nil {
				s.Value = u.Redacted() // no password
			}
		case f.Name == "url":
			parts := strings.Split(s.Value, ",")
			for i, p := range parts {
				if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
					parts[i] = u.Redacted() // no password
				}
			}
			s.Value = strings.Join(parts, ",")
		}
		out = append(out, s)
	})
	return out
}

// parseURLs reads -url: base URLs separated by commas, each http:// or
// https://, returned without trailing slashes.
func parseURLs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimRight(strings.TrimSpace(part), "/")
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("want http://host:port or https://host:port (or a comma-separated list of them), got %q", part)
		}
		out = append(out, part)
	}
	return out, nil
}

// parseSourceIPs reads "a-b" ranges and single addresses separated by commas.
func parseSourceIPs(s string) ([]netip.Addr, error) {
	const most = 1 << 16
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		first, last, isRange := strings.Cut(part, "-")
		from, err := netip.ParseAddr(strings.TrimSpace(first))
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = netip.ParseAddr(strings.TrimSpace(last)); err != nil {
				return nil, err
			}
			if to.Less(from) || to.BitLen() != from.BitLen() {
				return nil, fmt.Errorf("range %q ends before it starts", part)
			}
		}
		for a := from; a.Compare(to) <= 0 && a.IsValid(); a = a.Next() {
			if out = append(out, a); len(out) > most {
				return nil, fmt.Errorf("more than %d addresses", most)
			}
		}
	}
	return out, nil
}

// run plays one load scenario against lobbyd and writes the report. It
// returns an error when the configuration is invalid, lobbyd cannot be
// reached, or the run found violations, failed or lost players.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if cfg.Pingers > 0 || cfg.Abusers > 0 {
		rep, err := newLoad(cfg, stderr).runAbuse(ctx)
		if err != nil {
			return err
		}
		if cfg.JSON {
			err = json.NewEncoder(stdout).Encode(rep)
		} else {
			err = rep.writeText(stdout)
		}
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		return rep.verdict()
	}
	var base *report
	if cfg.BaselineFile != "" {
		// Read before the run, so a wrong path fails at once.
		if base, err = readBaseline(cfg.BaselineFile); err != nil {
			return fmt.Errorf("invalid configuration:\n-baseline: %w", err)
		}
	}
	var rep *report
	if cfg.ReportFrom != "" {
		rep, err = readBaseline(cfg.ReportFrom)
		if err != nil {
			return fmt.Errorf("-report-from: %w", err)
		}
		rep.Label = cmp.Or(cfg.Label, rep.Label)
		rep.ServerVersion = cmp.Or(cfg.ServerVersion, rep.ServerVersion)
	} else if cfg.Procs > 1 {
		if rep, err = newLoad(cfg, stderr).runProcs(ctx); err != nil {
			return err
		}
	} else if rep, err = newLoad(cfg, stderr).run(ctx); err != nil {
		return err
	}
	if base != nil {
		rep.compare(base, cfg.BaselineFile)
	}
	if cfg.JSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if cfg.JSONFile != "" {
		if err := rep.writeJSONFile(cfg.JSONFile); err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
	}
	if cfg.HTMLFile != "" {
		if err := rep.writeHTMLFile(cfg.HTMLFile); err != nil {
			return fmt.Errorf("write HTML report: %w", err)
		}
		path := cfg.HTMLFile
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		fmt.Fprintf(stderr, "lobbyload: HTML report in %s\n", path)
	}
	return rep.verdict()
}
