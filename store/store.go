// Package store is lobbyd's only door to Redis: the connection (single,
// Sentinel, Cluster or embedded), the key layout, the Lua scripts, and the
// operations the other packages build on. Redis is the one source of truth;
// nothing here caches state that another node could change.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Store is a Redis-backed store shared by every lobbyd component.
type Store struct {
	rdb      redis.UniversalClient
	keys     keyspace
	log      *slog.Logger
	embedded *miniredis.Miniredis
	// stopClock and clockDone stop the embedded Redis's expiry clock.
	stopClock chan struct{}
	clockDone chan struct{}
	// batch and batchTx carry many callers' small writes in shared
	// pipelines (see commit.go); batchTx applies each caller's commands
	// as one transaction.
	batch, batchTx *committer
	// locals holds the node subscriptions made through this store, by
	// node id: what this process publishes to them skips Redis.
	locals sync.Map
}

// Config says which Redis to use.
type Config struct {
	// URL selects the Redis deployment; empty starts an embedded in-process
	// Redis that keeps nothing across restarts. Forms:
	//   redis://[user:pass@]host:port[/db]         single node (rediss:// for TLS)
	//   redis+sentinel://[user:pass@]host:port[,host:port]/master-name
	//   redis+cluster://[user:pass@]host:port[,host:port]
	URL string
	// KeyPrefix goes in front of every Redis key and pub/sub channel name
	// (before the hash tag), so several lobbyd deployments can share one
	// Redis. Empty, the default, keeps the names every earlier version used.
	// See ValidateKeyPrefix for what it may contain; include a separator
	// ("eu1:").
	KeyPrefix string
	// Logger receives a warning when a best-effort write fails: undoing
	// half of an operation that failed (a claim taken for a ticket that was
	// never stored), or freeing what a finished one no longer needs. It
	// also takes go-redis's own log lines (reconnects, dial failures) at
	// debug level (go-redis has one logger per process: the first store
	// opened with a logger sets it). nil logs nothing.
	Logger *slog.Logger
	// Registerer receives the Redis round trips' metrics
	// (lobbyd_redis_command_seconds, lobbyd_redis_errors_total); nil
	// registers nowhere and times nothing.
	Registerer prometheus.Registerer
}

// Open connects to Redis as cfg says and checks the connection.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ValidateKeyPrefix(cfg.KeyPrefix); err != nil {
		return nil, err
	}
	s := &Store{keys: keyspace{prefix: cfg.KeyPrefix}, log: cfg.Logger}
	var hook unavailableHook
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	} else {
		setRedisLogger(s.log)
	}
	if cfg.URL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		s.embedded = m
		s.stopClock, s.clockDone = make(chan struct{}), make(chan struct{})
		go s.runEmbeddedClock()
		s.rdb = redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: 64, Dialer: dialPeekIdle})
	} else {
		opts, err := ParseURL(cfg.URL)
		if err != nil {
			return nil, err
		}
		if opts.TLSConfig == nil { // go-redis peeks only at plain TCP connections
			opts.Dialer = dialPeekIdle
		}
		if opts.IsClusterMode {
			cc := newClusterClient(opts)
			hook.onUnavailable = cc.ReloadState
			s.rdb = cc
		} else {
			s.rdb = redis.NewUniversalClient(opts)
		}
	}
	s.rdb.AddHook(hook)
	metrics := newMetricsHook()
	if cfg.Registerer != nil {
		s.rdb.AddHook(metrics)
	}
	s.batch, s.batchTx = newCommitter(s.rdb, false), newCommitter(s.rdb, true)
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to redis: %w", err)
	}
	if cfg.Registerer != nil {
		// Registered once connected: a failed Open leaves nothing behind,
		// so the caller may try again with the same registry.
		cfg.Registerer.MustRegister(metrics.seconds, metrics.errors)
	}
	return s, nil
}

// peekIdleConn lets go-redis peek at a pooled connection's socket (one
// recvfrom, to find a connection the server closed) only when it has been
// idle for peekIdleAfter. go-redis peeks before every command, which cost 6%
// of lobbyd's CPU under load (docs/benchmarks.md); a connection used a
// moment ago is alive, or fails on use and the command is retried, while
// after a Redis restart the idle connections are still found dead and
// dropped before use.
type peekIdleConn struct {
	net.Conn
	lastUsed atomic.Int64 // unix nanoseconds of the last read or write
}

const peekIdleAfter = time.Second

func (c *peekIdleConn) Read(b []byte) (int, error) {
	c.lastUsed.Store(time.Now().UnixNano())
	return c.Conn.Read(b)
}

func (c *peekIdleConn) Write(b []byte) (int, error) {
	c.lastUsed.Store(time.Now().UnixNano())
	return c.Conn.Write(b)
}

// SyscallConn is what go-redis's health check asks for.
func (c *peekIdleConn) SyscallConn() (syscall.RawConn, error) {
	if time.Since(time.Unix(0, c.lastUsed.Load())) < peekIdleAfter {
		return recentlyUsed{}, nil
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return recentlyUsed{}, nil
	}
	return sc.SyscallConn()
}

// recentlyUsed is a syscall.RawConn that reports a healthy socket without
// touching it.
type recentlyUsed struct{}

func (recentlyUsed) Control(func(fd uintptr)) error           { return nil }
func (recentlyUsed) Read(func(fd uintptr) (done bool)) error  { return nil }
func (recentlyUsed) Write(func(fd uintptr) (done bool)) error { return nil }

func dialPeekIdle(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 5 * time.Minute}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	pc := &peekIdleConn{Conn: c}
	pc.lastUsed.Store(time.Now().UnixNano())
	return pc, nil
}

// ParseURL turns a LOBBYD_REDIS_URL into go-redis options. Errors never echo
// the URL, which may hold a password.
func ParseURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("redis url: not a valid URL")
	}
	switch u.Scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis url: %s", redactURLError(err, u))
		}
		return &redis.UniversalOptions{
			Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password,
			TLSConfig: o.TLSConfig, PoolSize: 64,
		}, nil
	case "redis+sentinel", "redis+cluster":
		if u.Host == "" {
			return nil, fmt.Errorf("redis url: %s needs at least one host:port", u.Scheme)
		}
		opts := &redis.UniversalOptions{Addrs: strings.Split(u.Host, ","), PoolSize: 64}
		if u.User != nil {
			opts.Username = u.User.Username()
			opts.Password, _ = u.User.Password()
		}
		if u.Scheme == "redis+sentinel" {
			opts.MasterName = strings.Trim(u.Path, "/")
			if opts.MasterName == "" {
				return nil, errors.New("redis url: redis+sentinel needs the master name as its path")
			}
		} else {
			opts.IsClusterMode = true
		}
		return opts, nil
	default:
		return nil, fmt.Errorf("redis url: unsupported scheme %q (use redis, rediss, redis+sentinel or redis+cluster)", u.Scheme)
	}
}

func redactURLError(err error, u *url.URL) string {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Embedded reports whether the store runs on the in-process Redis.
func (s *Store) Embedded() bool { return s.embedded != nil }

// Close closes the connection and stops the embedded Redis, if any.
func (s *Store) Close() error {
	s.batch.close()
	s.batchTx.close()
	err := s.rdb.Close()
	if s.embedded != nil {
		close(s.stopClock)
		<-s.clockDone
		s.embedded.Close()
	}
	return err
}

// embeddedClockTick is how often the embedded Redis's TTLs follow the wall
// clock. miniredis does not expire keys by itself; its ClockTTL mode would,
// but it scans every key on every command, which makes a busy embedded
// server crawl. FastForward visits every key too, so it runs once a
// second: leases and presence live for seconds or more, and a one-second
// granularity is plenty for them.
const embeddedClockTick = time.Second

func (s *Store) runEmbeddedClock() {
	defer close(s.clockDone)
	t := time.NewTicker(embeddedClockTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stopClock:
			return
		case now := <-t.C:
			s.embedded.FastForward(now.Sub(last))
			last = now
		}
	}
}

func msOf(t time.Time) int64 { return t.UnixMilli() }

func timeOfMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
