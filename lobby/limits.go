package lobby

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lobbyd/lobbyd/internal/wait"
)

// Rate is a token bucket: PerSecond tokens come back each second, up to
// Burst. A zero Rate (PerSecond 0) means no limit.
type Rate struct {
	PerSecond float64
	Burst     float64
}

// PerMinute returns a Rate of n a minute with a burst of n.
func PerMinute(n float64) Rate { return Rate{PerSecond: n / 60, Burst: n} }

func (r Rate) unlimited() bool { return r.PerSecond <= 0 || r.Burst <= 0 }

// bucket is one token bucket's level at a time. Its zero value is full.
type bucket struct {
	spent float64   // tokens missing from a full bucket at `at`
	at    time.Time // zero: full
}

// level returns the tokens missing at now.
func (b *bucket) missing(r Rate, now time.Time) float64 {
	if b.at.IsZero() {
		return 0
	}
	return max(0, b.spent-now.Sub(b.at).Seconds()*r.PerSecond)
}

// take spends n tokens if the bucket holds them.
func (b *bucket) take(r Rate, now time.Time, n float64) bool {
	if r.unlimited() {
		return true
	}
	m := b.missing(r, now)
	if m+n > r.Burst {
		return false
	}
	b.spent, b.at = m+n, now
	return true
}

// wait is how long until n tokens are there again.
func (b *bucket) wait(r Rate, now time.Time, n float64) time.Duration {
	if r.unlimited() {
		return 0
	}
	over := b.missing(r, now) + n - r.Burst
	if over <= 0 {
		return 0
	}
	return time.Duration(over / r.PerSecond * float64(time.Second))
}

// untilFull is how long until the bucket is full again.
func (b *bucket) untilFull(r Rate, now time.Time) time.Duration {
	if r.unlimited() {
		return 0
	}
	return time.Duration(b.missing(r, now) / r.PerSecond * float64(time.Second))
}

// merge keeps the emptier of the two buckets: a budget carried over from
// another node never refills a local one.
func (b *bucket) merge(o bucket, r Rate, now time.Time) {
	if m := o.missing(r, now); m > b.missing(r, now) {
		b.spent, b.at = m, now
	}
}

// Limits are the per-player and per-address budgets of a gateway. A
// player's budgets are the player's, not their connection's: a reconnect,
// on this node or another, resumes them (see playerBudget). A zero Rate
// turns that limit off.
type Limits struct {
	// Requests bounds every frame a player sends, valid or not. Default
	// 20/s with a burst of 40.
	Requests Rate
	// Rejections bounds the frames refused for want of Requests budget;
	// spending it all closes the socket with 1008. Default as Requests.
	Rejections Rate
	// Chat bounds lobby.chat messages. Default 1/s with a burst of 5.
	Chat Rate
	// QueueJoins bounds queue.join requests. Default 30 a minute.
	QueueJoins Rate
	// Handshakes bounds a player's WebSocket handshakes on this node,
	// carried to another node when a connection ends. Default 20 a minute.
	Handshakes Rate
	// AbusePenalty is how long a player closed with 1008 is refused new
	// handshakes (429). Default 30s.
	AbusePenalty time.Duration
	// AddrHandshakes bounds handshakes from one client address (an IPv6
	// address counts by its /64) on this node. Default 50/s with a burst of
	// 1,000.
	AddrHandshakes Rate
	// MaxConnsPerAddr caps the sockets one client address holds on this
	// node; 0 turns it off. Default 1,000.
	MaxConnsPerAddr int
	// MaxConns caps the sockets this node holds; beyond it handshakes get
	// 503. Default: the process's open-files limit less 512 for Redis,
	// PlayFab and the listener.
	MaxConns int
	// ClientIPHeader names the header a trusted proxy puts the client's
	// address in (for example X-Forwarded-For or X-Real-IP). Empty: the
	// peer's address is the client's. With X-Forwarded-For the rightmost
	// address that is not a trusted proxy counts.
	ClientIPHeader string
	// TrustedProxies are the proxies whose ClientIPHeader is believed; the
	// header of any other peer is ignored. Empty: every peer is trusted,
	// which is only safe when lobbyd is reachable through the proxy alone.
	TrustedProxies []netip.Prefix
}

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:        autoMaxConns(openFilesLimit()),
		Requests:        Rate{PerSecond: 20, Burst: 40},
		Rejections:      Rate{PerSecond: 20, Burst: 40},
		Chat:            Rate{PerSecond: 1, Burst: 5},
		QueueJoins:      PerMinute(30),
		Handshakes:      PerMinute(20),
		AbusePenalty:    30 * time.Second,
		AddrHandshakes:  Rate{PerSecond: 50, Burst: 1000},
		MaxConnsPerAddr: 1000,
	}
}

// autoMaxConns leaves 512 of the open-files limit (half of a small one) for
// Redis, PlayFab and the listener: a node that runs out of descriptors
// fails everyone, a node that refuses handshakes fails only newcomers.
func autoMaxConns(openFiles int) int {
	if openFiles <= 0 {
		return 0
	}
	return openFiles - min(512, openFiles/2)
}

// playerBudget is one player's budgets on this node. It outlives their
// connections for as long as any bucket is still refilling, so reconnecting
// to this node resumes it; when a connection ends it is also saved to Redis
// (see carryOver) for a reconnect to another node.
type playerBudget struct {
	mu         sync.Mutex
	requests   bucket
	rejections bucket
	chat       bucket
	queueJoins bucket
	handshakes bucket
	penalty    time.Time // no handshake before this
	conns      int       // live connections using the budget
}

// carried is a budget as saved in Redis: tokens missing at At (Unix ms).
type carried struct {
	At         int64   `json:"at"`
	Requests   float64 `json:"r,omitempty"`
	Rejections float64 `json:"x,omitempty"`
	Chat       float64 `json:"c,omitempty"`
	QueueJoins float64 `json:"q,omitempty"`
	Handshakes float64 `json:"h,omitempty"`
	Penalty    int64   `json:"p,omitempty"` // Unix ms
}

// each visits the budget's buckets with their rates and carried fields.
func (b *playerBudget) each(l *Limits, c *carried, f func(*bucket, Rate, *float64)) {
	f(&b.requests, l.Requests, &c.Requests)
	f(&b.rejections, l.Rejections, &c.Rejections)
	f(&b.chat, l.Chat, &c.Chat)
	f(&b.queueJoins, l.QueueJoins, &c.QueueJoins)
	f(&b.handshakes, l.Handshakes, &c.Handshakes)
}

// carryOver encodes what the budget still owes, and for how long it
// matters (0: everything is full again, nothing to carry).
func (b *playerBudget) carryOver(l *Limits, now time.Time) ([]byte, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := carried{At: now.UnixMilli()}
	var ttl time.Duration
	b.each(l, &c, func(bk *bucket, r Rate, v *float64) {
		*v = bk.missing(r, now)
		ttl = max(ttl, bk.untilFull(r, now))
	})
	if now.Before(b.penalty) {
		c.Penalty = b.penalty.UnixMilli()
		ttl = max(ttl, b.penalty.Sub(now))
	}
	if ttl <= 0 {
		return nil, 0
	}
	data, _ := json.Marshal(c)
	return data, ttl + time.Second
}

// resume merges a budget carried over from Redis: every bucket keeps the
// emptier level, so switching nodes never refills anything.
func (b *playerBudget) resume(l *Limits, data []byte, now time.Time) {
	var c carried
	if len(data) == 0 || json.Unmarshal(data, &c) != nil {
		return
	}
	at := time.UnixMilli(c.At)
	if at.After(now) {
		at = now // another node's clock is ahead: count from now
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.each(l, &c, func(bk *bucket, r Rate, v *float64) {
		if *v > 0 && !math.IsNaN(*v) {
			bk.merge(bucket{spent: min(*v, r.Burst), at: at}, r, now)
		}
	})
	if p := time.UnixMilli(c.Penalty); c.Penalty > 0 && p.After(b.penalty) {
		b.penalty = p
	}
}

// take spends n from one of the budget's buckets.
// charge spends one frame of the request budget at now: charged within
// it, overBudget past it while the rejections budget lasts, flooding once
// that is spent too.
func (b *playerBudget) charge(l *Limits, now time.Time) charge {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.requests.take(l.Requests, now, 1):
		return charged
	case b.rejections.take(l.Rejections, now, 1):
		return overBudget
	default:
		return flooding
	}
}

func (b *playerBudget) take(bk *bucket, r Rate, n float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bk.take(r, time.Now(), n)
}

// idle reports whether the budget can be forgotten: no connection uses it
// and every bucket is full.
func (b *playerBudget) idle(l *Limits, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns > 0 || now.Before(b.penalty) {
		return false
	}
	full := true
	b.each(l, &carried{}, func(bk *bucket, r Rate, _ *float64) {
		full = full && bk.missing(r, now) == 0
	})
	return full
}

// addrBudget is one client address's handshakes and sockets on this node.
type addrBudget struct {
	handshakes bucket
	conns      int
}

// limiter holds a node's budgets: players' and addresses'.
type limiter struct {
	cfg Limits

	mu      sync.Mutex
	players map[string]*playerBudget
	addrs   map[netip.Prefix]*addrBudget
}

func newLimiter(cfg Limits) *limiter {
	return &limiter{cfg: cfg, players: make(map[string]*playerBudget), addrs: make(map[netip.Prefix]*addrBudget)}
}

// player returns the player's budget on this node, and whether it was new
// (then a budget carried over from another node should be resumed).
func (l *limiter) player(id string) (*playerBudget, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.players[id]
	if b != nil {
		return b, false
	}
	b = &playerBudget{}
	l.players[id] = b
	return b, true
}

// admitAddr charges one handshake to the client address and takes a
// connection slot; release gives the slot back. It returns 0 and a reason
// when the address is over a limit.
func (l *limiter) admitAddr(addr netip.Prefix) (release func(), retryAfter time.Duration, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	if a == nil {
		a = &addrBudget{}
		l.addrs[addr] = a
	}
	now := time.Now()
	if l.cfg.MaxConnsPerAddr > 0 && a.conns >= l.cfg.MaxConnsPerAddr {
		return nil, 10 * time.Second, "too many connections from this address"
	}
	if !a.handshakes.take(l.cfg.AddrHandshakes, now, 1) {
		return nil, a.handshakes.wait(l.cfg.AddrHandshakes, now, 1), "too many handshakes from this address"
	}
	a.conns++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			a.conns--
			l.mu.Unlock()
		})
	}, 0, ""
}

// sweep forgets the budgets that are full again and unused.
func (l *limiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, b := range l.players {
		if b.idle(&l.cfg, now) {
			delete(l.players, id)
		}
	}
	for p, a := range l.addrs {
		if a.conns == 0 && a.handshakes.missing(l.cfg.AddrHandshakes, now) == 0 {
			delete(l.addrs, p)
		}
	}
}

// runSweeps sweeps every interval until ctx is done.
func (l *limiter) runSweeps(ctx context.Context, interval time.Duration) {
	wait.Every(ctx, interval, l.sweep)
}

// clientAddr returns the address a request came from, as the prefix its
// limits count by: the address itself for IPv4, its /64 for IPv6 (one
// subscriber's allocation). A trusted proxy's ClientIPHeader says who the
// client is; nobody else's does.
func (l *limiter) clientAddr(r *http.Request) netip.Prefix {
	peer := parseAddr(r.RemoteAddr)
	if h := l.cfg.ClientIPHeader; h != "" && l.trusted(peer) {
		if a, ok := l.fromHeader(r.Header.Values(h)); ok {
			peer = a
		}
	}
	bits := 32
	if peer.Is6() && !peer.Is4In6() {
		bits = 64
	} else {
		peer = peer.Unmap()
	}
	p, _ := peer.Prefix(bits)
	return p
}

// fromHeader takes the rightmost address of the header's values that is
// not a trusted proxy (X-Forwarded-For is appended to by every hop).
func (l *limiter) fromHeader(values []string) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		if i == 0 || !l.trusted(a) || len(l.cfg.TrustedProxies) == 0 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (l *limiter) trusted(a netip.Addr) bool {
	if len(l.cfg.TrustedProxies) == 0 {
		return true
	}
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// parseAddr reads "host:port" (or a bare host) as an address; an
// unparsable one (a test's pipe) counts as the unspecified address.
func parseAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.WithZone("")
}
