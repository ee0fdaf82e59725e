package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/store"
)

// config is every setting of lobbyd. Each comes from a flag, else from its
// LOBBYD_ environment variable, else from the default. Secrets come only
// from the environment or a file, never a flag (flags show in ps).
type config struct {
	ConfigFile string
	Addr       string
	DebugAddr  string
	RedisURL   string
	KeyPrefix  string
	NodeID     string
	DevAuth    bool
	JWTSecret  string

	PlayFabTitleID     string
	PlayFabSecretKey   string
	PlayFabBaseURL     string
	PlayFabMaxInFlight int
	AllocationDeadline time.Duration
	RequeueHold        time.Duration
	ReconnectGrace     time.Duration
	CodeGuesses        int

	AllowedOrigins   []string
	PublicURL        *url.URL
	MaxFrameBytes    int64
	Limits           lobby.Limits
	SkillMin         float64
	SkillMax         float64
	MaxTokenLifetime time.Duration
	ShutdownTimeout  time.Duration
	LogLevel         slog.Level
	LogFormat        string
}

// setting describes one configuration setting for flags, env and docs.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"config", "LOBBYD_CONFIG", "", "queue configuration file (YAML, see lobbyd.example.yaml); empty serves the built-in default queue"},
	{"addr", "LOBBYD_ADDR", ":8080", "HTTP listen address"},
	{"debug-addr", "LOBBYD_DEBUG_ADDR", "", "serve Go's pprof profiles on this separate address (for example 127.0.0.1:6060); empty: off. Never expose it publicly"},
	{"redis-url", "LOBBYD_REDIS_URL", "", "Redis URL: redis://, rediss://, redis+sentinel://, redis+cluster://; empty starts an embedded in-process Redis that keeps nothing across restarts"},
	{"key-prefix", "LOBBYD_KEY_PREFIX", "", "put before every Redis key and channel name (in front of the hash tag), so several deployments can share one Redis; up to 64 letters, digits, _ . : -, e.g. eu1:; empty keeps the names of earlier versions"},
	{"node-id", "LOBBYD_NODE_ID", "", "this node's id, unique among nodes (default: hostname plus a random suffix)"},
	{"dev-auth", "LOBBYD_DEV_AUTH", "false", "development mode: serve POST /v1/dev/token, which gives anyone a token; never in production"},
	{"jwt-secret-file", "LOBBYD_JWT_SECRET_FILE", "", "file holding the HS256 secret of player tokens (or set LOBBYD_JWT_SECRET); at least 32 bytes"},
	{"playfab-title-id", "LOBBYD_PLAYFAB_TITLE_ID", "", "PlayFab title id; with no title id and secret key an in-process fake PlayFab is used"},
	{"playfab-secret-key-file", "LOBBYD_PLAYFAB_SECRET_KEY_FILE", "", "file holding the PlayFab title secret key (or set LOBBYD_PLAYFAB_SECRET_KEY)"},
	{"playfab-base-url", "LOBBYD_PLAYFAB_BASE_URL", "", "PlayFab API base URL (default https://{titleId}.playfabapi.com)"},
	{"playfab-max-in-flight", "LOBBYD_PLAYFAB_MAX_IN_FLIGHT", "64", "most RequestPartyService calls in flight at once on this node"},
	{"allocation-deadline", "LOBBYD_ALLOCATION_DEADLINE", "30s", "time to get a party for a match, retries included, before the match fails and its players are requeued; storing PlayFab's answer gets as long again"},
	{"requeue-hold", "LOBBYD_REQUEUE_HOLD", "5s", "after a failed allocation, how long its requeued players wait before they can be matched again (they keep their place)"},
	{"reconnect-grace", "LOBBYD_RECONNECT_GRACE", "30s", "how long a disconnected player keeps their lobby place and solo ticket"},
	{"code-guesses-per-minute", "LOBBYD_CODE_GUESSES_PER_MINUTE", "10", "lobby join codes a player may try per minute that match no lobby, across reconnects and nodes; beyond them lobby.join by code gets rate_limited"},
	{"allowed-origins", "LOBBYD_ALLOWED_ORIGINS", "", "comma-separated browser origins allowed to open sockets besides lobbyd's own; * allows any"},
	{"public-url", "LOBBYD_PUBLIC_URL", "", "the URL players reach lobbyd at (scheme://host[:port]); browser origins are checked against its scheme and host instead of the request's Host header"},
	{"max-frame-bytes", "LOBBYD_MAX_FRAME_BYTES", "4096", "largest client frame; larger ones close the socket with 1009"},
	{"request-rate", "LOBBYD_REQUEST_RATE", "20/s,40", "each player's frames (valid or not), as N/s|m|h[,burst]; as many rejected again closes the socket with 1008; 0: off"},
	{"chat-rate", "LOBBYD_CHAT_RATE", "1/s,5", "each player's lobby.chat messages, as N/s|m|h[,burst]; 0: off"},
	{"queue-join-rate", "LOBBYD_QUEUE_JOIN_RATE", "30/m", "each player's queue.join requests, as N/s|m|h[,burst]; 0: off"},
	{"handshake-rate", "LOBBYD_HANDSHAKE_RATE", "20/m", "each player's WebSocket handshakes on any node, as N/s|m|h[,burst]; beyond it 429; 0: off"},
	{"abuse-penalty", "LOBBYD_ABUSE_PENALTY", "30s", "how long a player closed with 1008 is refused new handshakes"},
	{"addr-handshake-rate", "LOBBYD_ADDR_HANDSHAKE_RATE", "50/s,1000", "handshakes from one client address (IPv6: its /64) on this node, as N/s|m|h[,burst]; 0: off"},
	{"max-conns-per-addr", "LOBBYD_MAX_CONNS_PER_ADDR", "1000", "sockets one client address may hold on this node; 0: no cap"},
	{"max-conns", "LOBBYD_MAX_CONNS", "auto", "sockets this node holds at most, beyond which handshakes get 503; auto: the open-files limit less 512; 0: no cap"},
	{"client-ip-header", "LOBBYD_CLIENT_IP_HEADER", "", "header in which a trusted proxy passes the client's address (X-Forwarded-For, X-Real-IP); empty: the peer address counts"},
	{"trusted-proxies", "LOBBYD_TRUSTED_PROXIES", "", "comma-separated CIDRs of the proxies whose client-ip-header is believed; empty: every peer (only safe when lobbyd is reachable through the proxy alone)"},
	{"skill-min", "LOBBYD_SKILL_MIN", "-1000000", "lowest skill a client may send"},
	{"skill-max", "LOBBYD_SKILL_MAX", "1000000", "highest skill a client may send"},
	{"max-token-lifetime", "LOBBYD_MAX_TOKEN_LIFETIME", "0", "refuse player tokens that live longer than this, from iat (or now) to exp, like 24h; 0: any"},
	{"shutdown-timeout", "LOBBYD_SHUTDOWN_TIMEOUT", "15s", "time allowed for a graceful shutdown"},
	{"log-level", "LOBBYD_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "LOBBYD_LOG_FORMAT", "text", "text or json"},
}

// loadConfig reads flags over environment over defaults, then validates.
// Every error names the setting it is about.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("lobbyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		values[s.flag] = fs.String(s.flag, def, s.usage+" ["+s.env+"]")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: lobbyd [flags]\n\nEvery flag can also be set by the environment variable in brackets.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(name string) string { return strings.TrimSpace(*values[name]) }
	var errs []error
	bad := func(name, format string, a ...any) {
		for _, s := range settings {
			if s.flag == name {
				errs = append(errs, fmt.Errorf("%s (-%s): "+format, append([]any{s.env, name}, a...)...))
				return
			}
		}
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, a...)...))
	}

	c := config{
		ConfigFile: get("config"), Addr: get("addr"), DebugAddr: get("debug-addr"),
		RedisURL: get("redis-url"), KeyPrefix: get("key-prefix"), NodeID: get("node-id"),
		PlayFabTitleID: get("playfab-title-id"), PlayFabBaseURL: get("playfab-base-url"),
		LogFormat: get("log-format"),
	}
	var err error
	if c.DevAuth, err = strconv.ParseBool(get("dev-auth")); err != nil {
		bad("dev-auth", "%q is not a boolean (use true or false)", get("dev-auth"))
	}
	parseDuration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			bad(name, "%q is not a positive duration like 30s", get(name))
		}
		return d
	}
	parseInt := func(name string, lo, hi int64) int64 {
		n, err := strconv.ParseInt(get(name), 10, 64)
		if err != nil || n < lo || n > hi {
			bad(name, "%q must be a whole number from %d to %d", get(name), lo, hi)
		}
		return n
	}
	c.AllocationDeadline = parseDuration("allocation-deadline")
	c.ShutdownTimeout = parseDuration("shutdown-timeout")
	c.RequeueHold = parseDuration("requeue-hold")
	c.ReconnectGrace = parseDuration("reconnect-grace")
	c.PlayFabMaxInFlight = int(parseInt("playfab-max-in-flight", 1, 10000))
	c.CodeGuesses = int(parseInt("code-guesses-per-minute", 1, 10000))
	c.MaxFrameBytes = parseInt("max-frame-bytes", 512, 1<<20)
	if err := c.LogLevel.UnmarshalText([]byte(get("log-level"))); err != nil {
		bad("log-level", "%q is not one of debug, info, warn, error", get("log-level"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q is not text or json", c.LogFormat)
	}
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
	c.Limits = lobby.DefaultLimits()
	parseRate := func(name string) lobby.Rate {
		r, err := parseRate(get(name))
		if err != nil {
			bad(name, "%v", err)
		}
		return r
	}
	c.Limits.Requests = parseRate("request-rate")
	c.Limits.Rejections = c.Limits.Requests
	c.Limits.Chat = parseRate("chat-rate")
	c.Limits.QueueJoins = parseRate("queue-join-rate")
	c.Limits.Handshakes = parseRate("handshake-rate")
	c.Limits.AddrHandshakes = parseRate("addr-handshake-rate")
	c.Limits.AbusePenalty = parseDuration("abuse-penalty")
	c.Limits.MaxConnsPerAddr = int(parseInt("max-conns-per-addr", 0, 1<<30))
	if get("max-conns") != "auto" {
		c.Limits.MaxConns = int(parseInt("max-conns", 0, 1<<30))
	}
	c.Limits.ClientIPHeader = http.CanonicalHeaderKey(get("client-ip-header"))
	for _, p := range strings.Split(get("trusted-proxies"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			if a, aerr := netip.ParseAddr(p); aerr == nil {
				prefix, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			bad("trusted-proxies", "%q is not a CIDR like 10.0.0.0/8 or an address", p)
			continue
		}
		c.Limits.TrustedProxies = append(c.Limits.TrustedProxies, prefix.Masked())
	}
	parseFloat := func(name string) float64 {
		f, err := strconv.ParseFloat(get(name), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad(name, "%q is not a number", get(name))
		}
		return f
	}
	c.SkillMin, c.SkillMax = parseFloat("skill-min"), parseFloat("skill-max")
	if c.SkillMin >= c.SkillMax {
		bad("skill-max", "must be above LOBBYD_SKILL_MIN (%g)", c.SkillMin)
	}
	if v := get("max-token-lifetime"); v != "0" {
		c.MaxTokenLifetime = parseDuration("max-token-lifetime")
	}
	if v := get("public-url"); v != "" {
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			bad("public-url", "%q is not an http(s)://host[:port] URL", v)
		default:
			c.PublicURL = u
		}
	}
	for _, o := range strings.Split(get("allowed-origins"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = fmt.Sprintf("%s-%s", strings.ReplaceAll(host, " ", "-"), randomID(4))
	} else if strings.ContainsAny(c.NodeID, " {}") {
		bad("node-id", "must not contain spaces or braces")
	}

	c.JWTSecret, err = secret(getenv, "LOBBYD_JWT_SECRET", get("jwt-secret-file"))
	if err != nil {
		bad("jwt-secret-file", "%v", err)
	}
	switch {
	case c.JWTSecret == "" && !c.DevAuth:
		bad("jwt-secret-file", "a JWT secret is required unless LOBBYD_DEV_AUTH is on: set LOBBYD_JWT_SECRET or LOBBYD_JWT_SECRET_FILE")
	case c.JWTSecret != "" && len(c.JWTSecret) < 32:
		bad("jwt-secret-file", "the JWT secret must be at least 32 bytes (it is %d)", len(c.JWTSecret))
	}

	c.PlayFabSecretKey, err = secret(getenv, "LOBBYD_PLAYFAB_SECRET_KEY", get("playfab-secret-key-file"))
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
	return c, errors.Join(errs...)
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
