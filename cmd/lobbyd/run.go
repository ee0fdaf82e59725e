package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/queuefile"
	"github.com/lobbyd/lobbyd/internal/wait"
	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store"
)

// run starts lobbyd and serves until ctx is done, then shuts down
// gracefully. It prints "lobbyd listening on http://<addr>" to stdout once
// the server accepts connections, followed, with the admin listener on, by
// "lobbyd admin listening on http://<addr>".
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	// SIGHUP reloads the queue file; caught from here on, so one sent
	// while the node starts does not end it (it is handled once started).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	queues := queuefile.Default()
	if cfg.ConfigFile != "" {
		if queues, err = queuefile.Load(cfg.ConfigFile); err != nil {
			return fmt.Errorf("invalid queue configuration (LOBBYD_CONFIG): %w", err)
		}
	}
	log := newLogger(cfg, stderr)
	log.Info("starting lobbyd", "node", cfg.NodeID, "addr", cfg.Addr, "embeddedRedis", cfg.RedisURL == "", "keyPrefix", cfg.KeyPrefix,
		"fakePlayFab", cfg.PlayFabTitleID == "", "devAuth", cfg.DevAuth)
	if w := queues.Warning(); w != "" {
		log.Warn(w, "file", cfg.ConfigFile)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := openStore(ctx, cfg, store.Config{URL: cfg.RedisURL, KeyPrefix: cfg.KeyPrefix, Logger: log, Registerer: reg}, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if st.Embedded() {
		log.Warn("using the embedded in-process Redis: nothing survives a restart and nodes cannot share it; set LOBBYD_REDIS_URL in production")
	}

	playfab, stopFake, err := playFabClient(cfg, log)
	if err != nil {
		return err
	}
	defer stopFake()

	jwtSecret := []byte(cfg.JWTSecret)
	if len(jwtSecret) == 0 {
		jwtSecret = []byte(randomID(32))
		log.Warn("dev auth: tokens are signed with a random secret and do not survive a restart")
	}
	auth := &lobby.Authenticator{Secret: jwtSecret, MaxLifetime: cfg.MaxTokenLifetime, SkillMin: cfg.SkillMin, SkillMax: cfg.SkillMax}

	callStats := &partyalloc.CallStats{Next: partyalloc.NewPrometheusObserver(reg)}
	playfab.Observer = callStats
	reg.MustRegister(playfab.Collectors()...)
	backlog := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lobbyd_allocation_backlog", Help: "Matches in the queue's allocation stream not yet allocated and acknowledged (read from Redis by every node every 5s: the same value on each)."},
		[]string{"queue"})
	reg.MustRegister(backlog)

	notifier := &lobby.Notifier{Store: st}
	mm := newMatchmaker(cfg, st, queues.Matchmaking(), notifier, log, reg)
	gw := newGateway(cfg, st, mm, auth, log, reg)
	if cfg.PublicURL == nil && !cfg.DevAuth {
		log.Warn("LOBBYD_PUBLIC_URL is not set: browser origins are checked against the request's Host header, which clients set; set it when browsers connect")
	}
	if cfg.Limits.ClientIPHeader != "" && len(cfg.Limits.TrustedProxies) == 0 {
		log.Warn("LOBBYD_CLIENT_IP_HEADER is set but LOBBYD_TRUSTED_PROXIES is not: the header is believed from every peer, so a client that reaches lobbyd directly chooses the address its per-address limits count; set LOBBYD_TRUSTED_PROXIES to the proxies' addresses",
			"header", cfg.Limits.ClientIPHeader)
	}
	alloc := &partyalloc.PlayFabAllocator{Client: playfab, Networks: queues.Networks()}
	worker := newWorker(cfg, st, alloc, mm.ShardNames(), notifier, log, reg)
	qc := newQueueConfig(cfg.ConfigFile, cfg.NodeID, queues, st, mm, alloc, worker, log)
	qc.keepStored = cfg.QueuesAtStart == "stored"
	if err := qc.start(ctx); err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           routes(cfg, st, gw, mm, qc.File, auth, reg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}

	// The side listeners (pprof, admin) are opened before anything is
	// served, so a failure leaves nothing running.
	self := nodeInfo(cfg, gw, mm, playfab, callStats)
	var sides []sideServer
	adminAddr := ""
	for _, side := range []struct {
		addr, setting, what string
		handler             func() http.Handler
		admin               bool
	}{
		{cfg.DebugAddr, "LOBBYD_DEBUG_ADDR", "pprof", debugRoutes, false},
		{cfg.AdminAddr, "LOBBYD_ADMIN_ADDR", "the admin console and API", func() http.Handler {
			return newAdmin(cfg, st, gw, mm, qc, self, log, reg).routes()
		}, true},
	} {
		if side.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", side.addr)
		if err != nil {
			ln.Close()
			for _, opened := range sides {
				opened.ln.Close()
			}
			return fmt.Errorf("listen on %s (%s): %w", side.addr, side.setting, err)
		}
		log.Info("serving "+side.what, "addr", l.Addr().String())
		if side.admin {
			adminAddr = l.Addr().String()
		}
		sides = append(sides, sideServer{ln: l, srv: &http.Server{Handler: side.handler(), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}})
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, side := range sides {
		side.serve(gctx, g)
	}
	g.Go(func() error { return heartbeat(gctx, st, self, qc.everConfigured, backlog, log) })
	g.Go(func() error { return qc.watch(gctx) })
	g.Go(func() error { return reloadOnSIGHUP(gctx, hup, qc, log) })
	g.Go(func() error { return gw.Run(gctx) })
	g.Go(func() error { return mm.Run(gctx) })
	g.Go(func() error { return worker.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownTimeout)
		defer cancel()
		// Shutdown neither closes nor waits for upgraded sockets: the
		// gateway drains those itself (close 1001) as its Run returns.
		return srv.Shutdown(sctx)
	})
	select {
	case <-gw.Ready():
		fmt.Fprintf(stdout, "lobbyd listening on http://%s\n", ln.Addr())
		if adminAddr != "" {
			fmt.Fprintf(stdout, "lobbyd admin listening on http://%s\n", adminAddr)
		}
	case <-gctx.Done():
	}
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}

// openStore connects to Redis, trying again with backoff (250 ms doubling
// to 5 s) while Redis is unreachable, for up to cfg.RedisStartTimeout: in a
// deployment lobbyd often starts before Redis is up. Each failure is
// logged; an error that is not about reaching Redis (a refused password, a
// bad URL) ends it at once.
func openStore(ctx context.Context, cfg config, scfg store.Config, log *slog.Logger) (*store.Store, error) {
	deadline := time.Now().Add(cfg.RedisStartTimeout)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		// Each try ends by the deadline too (a first try gets at least 5 s):
		// a Redis that accepts and never answers must not hold start-up
		// past the timeout.
		tctx, cancel := context.WithDeadline(ctx, maxTime(deadline, time.Now().Add(5*time.Second)))
		st, err := store.Open(tctx, scfg)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("connected to redis", "attempts", attempt)
			}
			return st, nil
		}
		if !errors.Is(err, domain.ErrUnavailable) || time.Now().Add(delay).After(deadline) || ctx.Err() != nil {
			if attempt > 1 {
				return nil, fmt.Errorf("gave up after %d attempts over %v (LOBBYD_REDIS_START_TIMEOUT): %w", attempt, cfg.RedisStartTimeout, err)
			}
			return nil, err
		}
		log.Warn("redis is not reachable yet; trying again", "attempt", attempt, "in", delay, "err", err)
		if wait.Sleep(ctx, delay) != nil {
			return nil, ctx.Err()
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sideServer is a listener of its own beside the public one (pprof,
// admin), or none.
type sideServer struct {
	ln  net.Listener
	srv *http.Server
}

// serve serves s in g until ctx is done.
func (s sideServer) serve(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error {
		if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", s.ln.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		// As the public server: requests under way (an operator's
		// action) finish before run returns and the store closes.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			return s.srv.Close()
		}
		return nil
	})
}

// reloadOnSIGHUP reloads the queue file on every SIGHUP until ctx is done.
func reloadOnSIGHUP(ctx context.Context, hup <-chan os.Signal, qc *queueConfig, log *slog.Logger) error {
	for {
		select {
		case <-hup:
			version, changed, err := qc.Reload(ctx)
			if errors.Is(err, errBadQueueFile) || errors.Is(err, errNoQueueFile) {
				log.Error("SIGHUP: queue file refused; the configuration in force stays", "err", err)
				continue
			}
			if err != nil {
				log.Error("SIGHUP: queue reload failed; the configuration in force stays", "err", err)
				continue
			}
			log.Info("SIGHUP: queue file reloaded", "version", version, "changed", changed)
		case <-ctx.Done():
			return nil
		}
	}
}

// newMatchmaker, newGateway and newWorker build lobbyd's components with
// their settings from cfg; run wires them, tests check a setting reaches
// its component.
func newMatchmaker(cfg config, st *store.Store, queues []matchmaker.Queue, notifier matchmaker.Notifier, log *slog.Logger, reg prometheus.Registerer) *matchmaker.Service {
	return &matchmaker.Service{
		Store: st, Queues: queues, NodeID: cfg.NodeID, Notifier: notifier, Logger: log, Registerer: reg,
		LeaseTTL: cfg.QueueLeaseTTL,
	}
}

func newGateway(cfg config, st *store.Store, mm *matchmaker.Service, auth *lobby.Authenticator, log *slog.Logger, reg prometheus.Registerer) *lobby.Gateway {
	return &lobby.Gateway{
		Store: st, Queues: mm, Auth: auth, NodeID: cfg.NodeID, Logger: log, Registerer: reg,
		AllowedOrigins: cfg.AllowedOrigins, PublicURL: cfg.PublicURL, MaxFrameBytes: cfg.MaxFrameBytes,
		Grace: cfg.ReconnectGrace, Limits: &cfg.Limits, SkillMin: cfg.SkillMin, SkillMax: cfg.SkillMax,
		CodeGuessesPerMinute: cfg.CodeGuesses, PingInterval: cfg.PingInterval, SendQueue: cfg.SendQueue,
		DrainPeriod: cfg.DrainPeriod, TicketAudit: cfg.TicketAudit,
	}
}

func newWorker(cfg config, st *store.Store, alloc partyalloc.Allocator, queues []string, notifier partyalloc.Notifier, log *slog.Logger, reg prometheus.Registerer) *partyalloc.Worker {
	return &partyalloc.Worker{
		Store: st, Allocator: alloc, Notifier: notifier, Queues: queues, NodeID: cfg.NodeID, Logger: log, Registerer: reg,
		Deadline: cfg.AllocationDeadline, RequeueHold: cfg.RequeueHold, Concurrency: cfg.AllocationConcurrency,
	}
}

// playFabClient returns the client for the configured PlayFab title or, with
// none configured, for an in-process fake PlayFab that the returned func stops.
func playFabClient(cfg config, log *slog.Logger) (*partyalloc.PlayFabClient, func(), error) {
	client := &partyalloc.PlayFabClient{
		BaseURL: cfg.PlayFabBaseURL, TitleID: cfg.PlayFabTitleID, SecretKey: cfg.PlayFabSecretKey,
		MaxInFlight: cfg.PlayFabMaxInFlight, Logger: log,
	}
	if cfg.PlayFabTitleID != "" {
		return client, func() {}, nil
	}
	secret := randomID(16)
	fake := fakeplayfab.New(fakeplayfab.Config{TitleID: "FAKE", SecretKey: secret, Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("start in-process fake PlayFab: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	client.BaseURL, client.TitleID, client.SecretKey = "http://"+ln.Addr().String(), "FAKE", secret
	log.Warn("no PlayFab title configured: using an in-process fake PlayFab", "url", client.BaseURL)
	return client, func() { srv.Close(); <-done }, nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// randomID returns n random bytes as hex.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
