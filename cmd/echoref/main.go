// Command echoref is the reference server for lobbyd's performance figures:
// a bare gorilla/websocket server, without Redis or matchmaking, that
// answers each request frame with three frames. Driven by cmd/lobbyload
// with the same players and connection count as lobbyd, it measures what
// this machine's sockets can carry, so lobbyd's throughput can be stated as
// a share of it (docs/benchmarks.md). It is a yardstick, not a product.
//
// Usage:
//
//	echoref [-addr 127.0.0.1:8090] [-max-users 4]
//	lobbyload -url http://127.0.0.1:8090 -players 2000 -preconnect
//
// It serves what the generator needs, shaped like lobbyd's:
//
//   - GET /v1/queues lists one queue, "default", of -max-users.
//   - POST /v1/dev/token returns {"token":"…","playerId":"…"}, the token an
//     HS256 JWT like lobbyd's. The socket accepts any token: it reads the
//     player id from a JWT's sub without checking the signature, or takes
//     a token that is not a JWT as the player id.
//   - GET /v1/ws sends welcome, then answers every frame it reads with
//     exactly three frames: the reply and two events (see answer).
//
// The generator's checks all hold unchanged against it, so it has no
// relaxed mode: echoref groups queue.join requests into matches of
// -max-users by one counter (the n-th join, over all sockets, is in match
// n / max-users), and every match.ready of a match carries the same
// matchId, partyId, invitationId and networkDescriptor, derived from the
// match's number. This costs one atomic add per queue.join and no shared
// state, which keeps echoref a bare socket server. What it cannot do
// without shared state is lobbies (a lobby's members must see each other),
// leaving a queue (every ticket is matched at once, so queue.leave gets
// conflict as lobbyd gives it once a match is ready) and reconnecting
// (nothing is kept for welcome.state): run the generator against it with
// solo players only, which is the throughput scenario.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "echoref:", err)
		os.Exit(1)
	}
}

// config is the command line, validated.
type config struct {
	addr     string
	maxUsers int
}

// shutdownTimeout bounds how long HTTP requests in flight may take to
// finish at shutdown; sockets are closed (with 1001) at once.
const shutdownTimeout = 5 * time.Second

// run serves until ctx is done, then closes every socket with 1001 and
// returns once all of them are gone. It prints the address it listens on
// to stdout.
func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	s := newServer(cfg.maxUsers, secret)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on -addr %s: %w", cfg.addr, err)
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "echoref listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		s.closeSockets()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Shutdown neither closes nor waits for upgraded sockets: closeSockets
	// does, after new upgrades are refused.
	shutdownErr := srv.Shutdown(shutdownCtx)
	s.closeSockets()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shut down: %w", shutdownErr)
	}
	return nil
}

// parseFlags parses and checks the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("echoref", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "`address` to listen on; port 0 picks a free port")
	fs.IntVar(&cfg.maxUsers, "max-users", 4, "players per match, as the queue's maxUsers in lobbyd")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
	}
	if cfg.maxUsers < 1 {
		return config{}, fmt.Errorf("-max-users: at least 1, got %d", cfg.maxUsers)
	}
	return cfg, nil
}
