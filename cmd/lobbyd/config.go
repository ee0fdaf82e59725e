package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lobbyd/lobbyd/internal/envflag"
	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/store"
)

// envPrefix prefixes every setting's environment variable: flag
// -allocation-deadline is LOBBYD_ALLOCATION_DEADLINE.
const envPrefix = "LOBBYD_"

// config is every setting of lobbyd. Each comes from a flag, else from its
// LOBBYD_ environment variable, else from the default. Secrets come only
// from the environment or a file, never a flag (flags show in ps).
type config struct {
	ConfigFile string
	// QueuesAtStart says what a node starting with a queue file runs when
	// a configuration is already stored: "file" stores and runs its file
	// (a restart applies an edited file), "stored" runs the stored one and
	// leaves its file for a reload.
	QueuesAtStart string
	Addr          string
	DebugAddr     string
	// AdminAddr serves the operator console and API (off when empty), to
	// callers with AdminToken; DrainPeriod is how long a drain spreads its
	// closes over.
	AdminAddr   string
	AdminToken  string
	DrainPeriod time.Duration
	RedisURL    string
	KeyPrefix   string
	NodeID      string
	DevAuth     bool
	JWTSecret   string

	PlayFabTitleID     string
	PlayFabSecretKey   string
	PlayFabBaseURL     string
	PlayFabMaxInFlight int
	AllocationDeadline time.Duration
	RequeueHold        time.Duration
	ReconnectGrace     time.Duration
	// TicketAudit is how often each node checks its players' searching
	// tickets for records Redis lost (lobby.Gateway).
	TicketAudit time.Duration
	CodeGuesses int
	// AllocationConcurrency caps the allocation jobs this node works on
	// at once (partyalloc.Worker.Concurrency).
	AllocationConcurrency int
	// QueueLeaseTTL is how long a queue's formation lease lasts without
	// renewal (matchmaker.Service.LeaseTTL).
	QueueLeaseTTL time.Duration
	// PingInterval and SendQueue are every socket's ping period and
	// outgoing frame queue (lobby.Gateway).
	PingInterval time.Duration
	SendQueue    int

	AllowedOrigins   []string
	PublicURL        *url.URL
	MaxFrameBytes    int64
	Limits           lobby.Limits
	SkillMin         float64
	SkillMax         float64
	MaxTokenLifetime time.Duration
	ShutdownTimeout  time.Duration
	// RedisStartTimeout bounds the wait for Redis at start-up.
	RedisStartTimeout time.Duration
	LogLevel          slog.Level
	LogFormat         string

	// The secrets' files; the secrets themselves are read in validate.
	jwtSecretFile, playFabSecretKeyFile, adminTokenFile string
}

// flags binds every setting to its field of c, with its default and its
// help. To add a setting: a field above, a line here, a row in README.md.
func (c *config) flags(fs *flag.FlagSet) {
	c.Limits = lobby.DefaultLimits()
	fs.StringVar(&c.ConfigFile, "config", "", "queue configuration file (YAML, see lobbyd.example.yaml); empty serves the built-in default queue")
	c.QueuesAtStart = "file"
	fs.Var(envflag.OneOf(&c.QueuesAtStart, "file", "stored"), "queues-at-start", "what a node starting with a queue file runs when one is stored in Redis already: file (store and run its own file, for every node) or stored (run the stored one; the file waits for a reload)")
	fs.StringVar(&c.Addr, "addr", ":8080", "HTTP listen address")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "serve Go's pprof profiles on this separate address (for example 127.0.0.1:6060); empty: off. Never expose it publicly")
	fs.StringVar(&c.AdminAddr, "admin-addr", "", "serve the operator console and admin API (docs/admin.md) on this separate address, for example 127.0.0.1:9090; needs LOBBYD_ADMIN_TOKEN; empty: off. Never the public port")
	fs.StringVar(&c.adminTokenFile, "admin-token-file", "", "file holding the admin API's bearer token (or set LOBBYD_ADMIN_TOKEN); at least 32 bytes")
	c.DrainPeriod = time.Minute
	fs.Var(envflag.DurationIn(&c.DrainPeriod, time.Second, time.Hour), "drain-period", "how long a node's drain (an admin action) spreads the closing of its sockets over, so that their reconnects reach the other nodes gradually")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL: redis://, rediss://, redis+sentinel://, redis+cluster://; empty starts an embedded in-process Redis that keeps nothing across restarts")
	fs.StringVar(&c.KeyPrefix, "key-prefix", "", "put before every Redis key and channel name (in front of the hash tag), so several deployments can share one Redis; up to 64 letters, digits, _ . : -, e.g. eu1:; empty keeps the names of earlier versions")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's id, unique among nodes (default: hostname plus a random suffix)")
	fs.Var(envflag.Bool(&c.DevAuth), "dev-auth", "development mode: serve POST /v1/dev/token, which gives anyone a token; never in production")
	fs.StringVar(&c.jwtSecretFile, "jwt-secret-file", "", "file holding the HS256 secret of player tokens (or set LOBBYD_JWT_SECRET); at least 32 bytes")
	fs.StringVar(&c.PlayFabTitleID, "playfab-title-id", "", "PlayFab title id; with no title id and secret key an in-process fake PlayFab is used")
	fs.StringVar(&c.playFabSecretKeyFile, "playfab-secret-key-file", "", "file holding the PlayFab title secret key (or set LOBBYD_PLAYFAB_SECRET_KEY)")
	fs.StringVar(&c.PlayFabBaseURL, "playfab-base-url", "", "PlayFab API base URL (default https://{titleId}.playfabapi.com)")
	c.PlayFabMaxInFlight = 64
	fs.Var(envflag.Int(&c.PlayFabMaxInFlight, 1, 10000), "playfab-max-in-flight", "most RequestPartyService calls in flight at once on this node")
	c.AllocationDeadline = 30 * time.Second
	fs.Var(envflag.Duration(&c.AllocationDeadline, false), "allocation-deadline", "time to get a party for a match, retries included, before the match fails and its players are requeued; storing PlayFab's answer gets as long again")
	c.RequeueHold = 5 * time.Second
	fs.Var(envflag.Duration(&c.RequeueHold, false), "requeue-hold", "after a failed allocation, how long its requeued players wait before they can be matched again (they keep their place)")
	c.ReconnectGrace = 30 * time.Second
	fs.Var(envflag.Duration(&c.ReconnectGrace, false), "reconnect-grace", "how long a disconnected player keeps their lobby place and solo ticket")
	c.TicketAudit = lobby.MaxTicketAudit
	fs.Var(envflag.DurationIn(&c.TicketAudit, time.Second, lobby.MaxTicketAudit), "ticket-audit", "how often a node checks its players' searching tickets for records Redis lost (a failover or restart after the queue.join reply); their players are then told queue.state cancelled, reason lost")
	c.CodeGuesses = 10
	fs.Var(envflag.Int(&c.CodeGuesses, 1, 10000), "code-guesses-per-minute", "lobby join codes a player may try per minute that match no lobby, across reconnects and nodes; beyond them lobby.join by code gets rate_limited")
	c.AllocationConcurrency = 256
	fs.Var(envflag.Int(&c.AllocationConcurrency, 1, 100000), "allocation-concurrency", "most allocation jobs (matches waiting for a party, retries included) this node works on at once; calls to PlayFab are further capped by playfab-max-in-flight")
	c.QueueLeaseTTL = 5 * time.Second
	fs.Var(envflag.DurationIn(&c.QueueLeaseTTL, time.Second, 5*time.Minute), "queue-lease-ttl", "how long a queue's matchmaking lease lasts unrenewed (renewed every third of it): a dead node's queues stall this long before another node takes them")
	c.PingInterval = 25 * time.Second
	fs.Var(envflag.DurationIn(&c.PingInterval, time.Second, 59*time.Second), "ping-interval", "how often each socket is pinged; below the 60s a socket may stay silent before it is dropped")
	c.SendQueue = 64
	fs.Var(envflag.Int(&c.SendQueue, 16, 65536), "send-queue", "frames queued to each socket; a client that lets them pile up is disconnected with 4004")
	fs.Var(envflag.List(&c.AllowedOrigins), "allowed-origins", "comma-separated browser origins allowed to open sockets besides lobbyd's own; * allows any")
	fs.Var(publicURLValue(&c.PublicURL), "public-url", "the URL players reach lobbyd at (scheme://host[:port]); browser origins are checked against its scheme and host instead of the request's Host header")
	c.MaxFrameBytes = 4096
	fs.Var(envflag.Int(&c.MaxFrameBytes, 512, 1<<20), "max-frame-bytes", "largest client frame; larger ones close the socket with 1009")
	fs.Var(rateValue(&c.Limits.Requests, "20/s,40"), "request-rate", "each player's frames (valid or not), as N/s|m|h[,burst]; as many rejected again closes the socket with 1008; 0: off")
	fs.Var(rateValue(&c.Limits.Chat, "1/s,5"), "chat-rate", "each player's lobby.chat messages, as N/s|m|h[,burst]; 0: off")
	fs.Var(rateValue(&c.Limits.QueueJoins, "30/m"), "queue-join-rate", "each player's queue.join requests, as N/s|m|h[,burst]; 0: off")
	fs.Var(rateValue(&c.Limits.Handshakes, "20/m"), "handshake-rate", "each player's WebSocket handshakes, per node and carried to another node when a connection ends, as N/s|m|h[,burst]; beyond it 429; 0: off")
	c.Limits.AbusePenalty = 30 * time.Second
	fs.Var(envflag.Duration(&c.Limits.AbusePenalty, false), "abuse-penalty", "how long a player closed with 1008 is refused new handshakes")
	fs.Var(rateValue(&c.Limits.AddrHandshakes, "50/s,1000"), "addr-handshake-rate", "handshakes from one client address (IPv6: its /64) on this node, as N/s|m|h[,burst]; 0: off")
	c.Limits.MaxConnsPerAddr = 1000
	fs.Var(envflag.Int(&c.Limits.MaxConnsPerAddr, 0, 1<<30), "max-conns-per-addr", "sockets one client address may hold on this node; 0: no cap")
	fs.Var(maxConnsValue(&c.Limits.MaxConns), "max-conns", "sockets this node holds at most, beyond which handshakes get 503; auto: the open-files limit less 512; 0: no cap")
	fs.StringVar(&c.Limits.ClientIPHeader, "client-ip-header", "", "header in which a trusted proxy passes the client's address (X-Forwarded-For, X-Real-IP); empty: the peer address counts")
	fs.Var(trustedProxiesValue(&c.Limits.TrustedProxies), "trusted-proxies", "comma-separated CIDRs or addresses of the proxies whose client-ip-header is believed; empty: every peer (only safe when lobbyd is reachable through the proxy alone)")
	c.SkillMin, c.SkillMax = -1000000, 1000000
	fs.Var(envflag.Float(&c.SkillMin), "skill-min", "lowest skill a client may send or a token carry")
	fs.Var(envflag.Float(&c.SkillMax), "skill-max", "highest skill a client may send or a token carry")
	fs.Var(envflag.Duration(&c.MaxTokenLifetime, true), "max-token-lifetime", "refuse player tokens that live longer than this, from iat (or now) to exp, like 24h; 0: any")
	c.RedisStartTimeout = time.Minute
	fs.Var(envflag.DurationIn(&c.RedisStartTimeout, 0, time.Hour), "redis-start-timeout", "how long to keep trying to reach Redis at start-up (with backoff, each failure logged) before giving up; 0: one try")
	c.ShutdownTimeout = 15 * time.Second
	fs.Var(envflag.Duration(&c.ShutdownTimeout, false), "shutdown-timeout", "time allowed for a graceful shutdown")
	fs.Var(logLevelValue(&c.LogLevel), "log-level", "debug, info, warn or error")
	c.LogFormat = "text"
	fs.Var(envflag.OneOf(&c.LogFormat, "text", "json"), "log-format", "text or json")
}

// loadConfig reads flags over environment over defaults, then validates.
// Every error names the setting it is about.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("lobbyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: lobbyd [flags]\n\nEvery flag can also be set by the environment variable in brackets.")
		fs.PrintDefaults()
	}
	if path := getenv(settingsFileEnv); path != "" {
		file, err := envflag.ReadFile(path, envPrefix, envflag.Known(fs, envPrefix, secretEnvs...))
		if err != nil {
			return config{}, fmt.Errorf("%s: %w", settingsFileEnv, err)
		}
		getenv = envflag.Layered(getenv, file)
	}
	err := envflag.Parse(fs, envPrefix, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return config{}, err
	}
	errs := []error{err}
	c.Limits.Rejections = c.Limits.Requests
	c.Limits.ClientIPHeader = http.CanonicalHeaderKey(c.Limits.ClientIPHeader)
	errs = append(errs, c.validate(getenv)...)
	return c, errors.Join(errs...)
}

// settingsFileEnv names a settings file (envflag.ReadFile): LOBBYD_ names
// and values, one per line, as in an environment file. Flags override
// it, and so does the environment.
const settingsFileEnv = "LOBBYD_SETTINGS_FILE"

// secretEnvs are the settings read from the environment (or the settings
// file) alone, never from a flag: flags show in ps.
var secretEnvs = []string{"LOBBYD_JWT_SECRET", "LOBBYD_ADMIN_TOKEN", "LOBBYD_PLAYFAB_SECRET_KEY"}

// settingError is an error about the setting of flag name.
func settingError(name, format string, a ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{envflag.Name(envPrefix, name)}, a...)...)
}

// validate checks the settings that depend on each other, reads the
// secrets, and fills the defaults that depend on other settings.
func (c *config) validate(getenv func(string) string) []error {
	var errs []error
	bad := func(name, format string, a ...any) { errs = append(errs, settingError(name, format, a...)) }
	if c.Addr == "" {
		bad("addr", "must not be empty")
	}
	if c.RedisURL != "" {
		if _, err := store.ParseURL(c.RedisURL); err != nil {
			bad("redis-url", "%v", err)
		}
	}
	if err := store.ValidateKeyPrefix(c.KeyPrefix); err != nil {
		bad("key-prefix", "%v", err)
	}
	if c.SkillMin >= c.SkillMax {
		bad("skill-max", "must be above LOBBYD_SKILL_MIN (%g)", c.SkillMin)
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = fmt.Sprintf("%s-%s", strings.ReplaceAll(host, " ", "-"), randomID(4))
	} else if strings.ContainsAny(c.NodeID, " {}") {
		bad("node-id", "must not contain spaces or braces")
	}

	var err error
	c.JWTSecret, err = secret(getenv, "LOBBYD_JWT_SECRET", c.jwtSecretFile)
	if err != nil {
		bad("jwt-secret-file", "%v", err)
	}
	switch {
	case c.JWTSecret == "" && !c.DevAuth:
		bad("jwt-secret-file", "a JWT secret is required unless LOBBYD_DEV_AUTH is on: set LOBBYD_JWT_SECRET or LOBBYD_JWT_SECRET_FILE")
	case c.JWTSecret != "" && len(c.JWTSecret) < 32:
		bad("jwt-secret-file", "the JWT secret must be at least 32 bytes (it is %d)", len(c.JWTSecret))
	}

	c.AdminToken, err = secret(getenv, "LOBBYD_ADMIN_TOKEN", c.adminTokenFile)
	if err != nil {
		bad("admin-token-file", "%v", err)
	}
	switch {
	case c.AdminAddr != "" && c.AdminToken == "":
		bad("admin-token-file", "LOBBYD_ADMIN_ADDR is set but no admin token: set LOBBYD_ADMIN_TOKEN or LOBBYD_ADMIN_TOKEN_FILE")
	case c.AdminToken != "" && len(c.AdminToken) < 32:
		bad("admin-token-file", "the admin token must be at least 32 bytes (it is %d)", len(c.AdminToken))
	case c.AdminAddr != "" && samePort(c.AdminAddr, c.Addr):
		bad("admin-addr", "must not be the public port (LOBBYD_ADDR %s): the admin API is for operators only", c.Addr)
	}

	c.PlayFabSecretKey, err = secret(getenv, "LOBBYD_PLAYFAB_SECRET_KEY", c.playFabSecretKeyFile)
	if err != nil {
		bad("playfab-secret-key-file", "%v", err)
	}
	switch {
	case c.PlayFabTitleID != "" && c.PlayFabSecretKey == "":
		bad("playfab-secret-key-file", "LOBBYD_PLAYFAB_TITLE_ID is set but no secret key: set LOBBYD_PLAYFAB_SECRET_KEY or LOBBYD_PLAYFAB_SECRET_KEY_FILE")
	case c.PlayFabTitleID == "" && c.PlayFabSecretKey != "":
		bad("playfab-title-id", "a PlayFab secret key is set but no title id")
	case c.PlayFabTitleID == "" && c.PlayFabBaseURL != "":
		bad("playfab-base-url", "needs LOBBYD_PLAYFAB_TITLE_ID and a secret key (without them the in-process fake is used)")
	}
	if c.PlayFabBaseURL != "" && !strings.HasPrefix(c.PlayFabBaseURL, "https://") && !strings.HasPrefix(c.PlayFabBaseURL, "http://") {
		bad("playfab-base-url", "must start with https:// or http://")
	}
	if c.PlayFabTitleID != "" && c.PlayFabBaseURL == "" {
		c.PlayFabBaseURL = "https://" + c.PlayFabTitleID + ".playfabapi.com"
	}
	c.PlayFabBaseURL = strings.TrimRight(c.PlayFabBaseURL, "/")
	return errs
}

// samePort reports whether listen addresses a and b would share a socket: the
// same port (not 0), and the same host or either one all interfaces.
func samePort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false // port 0: each listener gets a free port of its own
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// rateValue is a rate setting (see parseRate) whose default is def.
func rateValue(p *lobby.Rate, def string) flag.Value {
	text := def
	r, err := parseRate(def)
	if err != nil {
		panic(fmt.Sprintf("default rate %q: %v", def, err)) // a programming error, caught by any test
	}
	*p = r
	return envflag.Func{
		Get: func() string { return text },
		Put: func(s string) error {
			r, err := parseRate(s)
			if err != nil {
				return err
			}
			*p, text = r, s
			return nil
		},
	}
}

// maxConnsValue is "auto" (lobby.DefaultLimits' count, from the open-files
// limit) or a number of sockets, 0 for no cap.
func maxConnsValue(p *int) flag.Value {
	n := envflag.Int(p, 0, 1<<30)
	auto := true
	return envflag.Func{
		Get: func() string {
			if auto {
				return "auto"
			}
			return n.String()
		},
		Put: func(s string) error {
			if s == "auto" {
				*p, auto = lobby.DefaultLimits().MaxConns, true
				return nil
			}
			if err := n.Set(s); err != nil {
				return err
			}
			auto = false
			return nil
		},
	}
}

// trustedProxiesValue is a comma-separated list of CIDRs or addresses.
func trustedProxiesValue(p *[]netip.Prefix) flag.Value {
	var text string
	return envflag.Func{
		Get: func() string { return text },
		Put: func(s string) error {
			var prefixes []netip.Prefix
			var errs []error
			for _, item := range strings.Split(s, ",") {
				if item = strings.TrimSpace(item); item == "" {
					continue
				}
				prefix, err := netip.ParsePrefix(item)
				if err != nil {
					if a, aerr := netip.ParseAddr(item); aerr == nil {
						prefix, err = a.Prefix(a.BitLen())
					}
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 or an address", item))
					continue
				}
				prefixes = append(prefixes, prefix.Masked())
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			*p, text = prefixes, s
			return nil
		},
	}
}

// publicURLValue is an http(s)://host[:port] URL, or empty for none.
func publicURLValue(p **url.URL) flag.Value {
	return envflag.Func{
		Get: func() string {
			if *p == nil {
				return ""
			}
			return (*p).String()
		},
		Put: func(s string) error {
			if s == "" {
				*p = nil
				return nil
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("%q is not an http(s)://host[:port] URL", s)
			}
			*p = u
			return nil
		},
	}
}

// logLevelValue is debug, info, warn or error.
func logLevelValue(p *slog.Level) flag.Value {
	return envflag.Func{
		Get: func() string { return strings.ToLower(p.String()) },
		Put: func(s string) error {
			if err := p.UnmarshalText([]byte(s)); err != nil {
				return fmt.Errorf("%q is not one of debug, info, warn, error", s)
			}
			return nil
		},
	}
}

// parseRate reads a rate as N/s, N/m or N/h, optionally followed by
// ",burst" (default: N); "0" turns the limit off.
func parseRate(v string) (lobby.Rate, error) {
	if v == "0" {
		return lobby.Rate{}, nil
	}
	bad := fmt.Errorf("%q is not a rate like 20/s, 30/m or 20/s,40 (or 0 for off)", v)
	spec, burst, hasBurst := strings.Cut(v, ",")
	num, unit, ok := strings.Cut(spec, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || n <= 0 || math.IsInf(n, 0) {
		return lobby.Rate{}, bad
	}
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[strings.TrimSpace(unit)]
	if per == 0 {
		return lobby.Rate{}, bad
	}
	r := lobby.Rate{PerSecond: n / per, Burst: n}
	if hasBurst {
		b, err := strconv.ParseFloat(strings.TrimSpace(burst), 64)
		if err != nil || b < 1 || math.IsInf(b, 0) {
			return lobby.Rate{}, bad
		}
		r.Burst = b
	}
	return r, nil
}

// secret reads a secret from the environment variable or the file, not
// both. Errors never contain the secret.
func secret(getenv func(string) string, env, file string) (string, error) {
	v := getenv(env)
	if v != "" && file != "" {
		return "", fmt.Errorf("set %s or its _FILE setting, not both", env)
	}
	if file == "" {
		return strings.TrimSpace(v), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	return s, nil
}
