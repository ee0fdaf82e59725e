package lobby

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/prometheus/client_golang/prometheus"
)

// Queuer is what the gateway needs from the matchmaker.
type Queuer interface {
	// Resolve checks what a queue.join brings (the client's skill and
	// attributes, each player's token claims) against the queue's rules
	// and returns the ticket's skill and attributes.
	Resolve(queue string, in matchmaker.JoinInput) (float64, map[string]domain.AttrValue, error)
	// Join creates a searching ticket from t's Queue, Players, Skill,
	// Regions, Latencies and Attributes.
	Join(ctx context.Context, t domain.Ticket) (domain.Ticket, error)
	// Leave cancels the player's searching ticket.
	Leave(ctx context.Context, playerID string) (domain.Ticket, error)
	// Why says why a searching ticket waits (queue.why).
	Why(ctx context.Context, t domain.Ticket) (matchmaker.Why, error)
	// MaxLobbyMembers returns the most members a lobby of the queue may
	// have (the match size, or a team's), and whether the queue exists.
	MaxLobbyMembers(queue string) (int, bool)
	// SkillFromToken reports whether the queue takes ratings from the
	// players' tokens only (a client's skill is then forbidden).
	SkillFromToken(queue string) bool
	// QueueNames lists the queues.
	QueueNames() []string
}

// GatewayStore is what the gateway needs from Redis: what its parts need
// (presence, delivery, the lobby service) and what a connection needs
// (attach, presence, carried-over budgets, the node channel).
type GatewayStore interface {
	presenceStore
	deliveryStore
	lobbyStore
	ticketAuditStore
	Subscribe(ctx context.Context, nodeID string) (domain.Subscription, error)
	Publish(ctx context.Context, nodeID string, msg domain.NodeMessage) error
	Attach(ctx context.Context, playerID string, graceDeadline time.Time) (domain.Attachment, error)
	SetPresence(ctx context.Context, playerID string, p domain.Presence, ttl time.Duration) (prev domain.Presence, found bool, err error)
	LobbyOf(ctx context.Context, playerID, lobbyID string) (domain.Lobby, error)
	DropStaleLobbyClaim(ctx context.Context, playerID string) error
	Ticket(ctx context.Context, queue, ticketID string) (domain.Ticket, error)
	PlayerLimits(ctx context.Context, playerID string) ([]byte, error)
	PresenceOf(ctx context.Context, playerID string) (domain.Presence, bool, error)
	SavePlayerLimits(ctx context.Context, playerID string, data []byte, ttl time.Duration) error
}

// Gateway serves players' WebSocket connections on one node. Store, Queues,
// Auth and NodeID are required; other zero-value fields get the defaults
// documented on them. Run must be running for connections to be accepted.
type Gateway struct {
	Store  GatewayStore
	Queues Queuer
	Auth   *Authenticator
	NodeID string
	Logger *slog.Logger // default slog.Default()
	// Registerer receives the gateway's metrics; nil registers nowhere.
	Registerer prometheus.Registerer

	// AllowedOrigins lists the browser origins (scheme://host[:port]) allowed
	// to connect, besides the server's own; "*" allows any. A request with no
	// Origin header (a game client, not a browser) is always allowed.
	AllowedOrigins []string
	// PublicURL is the URL players reach this service at (for example
	// https://play.example.com). When set, a browser Origin is the
	// service's own only if its scheme and host are the URL's; when empty,
	// only if its host is the request's Host header, which is fine for a
	// node reached directly but is the client's to set.
	PublicURL *url.URL
	// MaxFrameBytes is the largest frame a client may send; a larger one
	// closes the socket with 1009. Default 4096.
	MaxFrameBytes int64
	// SendQueue is the number of frames that may wait per connection
	// behind the batch being written (pings included); a client that lets
	// it fill is disconnected with 4004. Default 64.
	SendQueue int
	// PingInterval is how often the server pings; PongWait how long it waits
	// for any frame or pong before dropping the connection; WriteWait bounds
	// one write. Defaults 25s, 60s, 10s.
	PingInterval, PongWait, WriteWait time.Duration
	// PresenceTTL is how long a player stays reachable at this node if the
	// node stops refreshing (dies). Default 60s, refreshed every third.
	PresenceTTL time.Duration
	// RequestTimeout bounds the handling of one request. Default 5s.
	RequestTimeout time.Duration
	// Limits are the players' and client addresses' budgets: requests,
	// chat, queue joins, handshakes, connections. Nil: DefaultLimits().
	Limits *Limits
	// SkillMin and SkillMax bound the skill a client may send (the
	// Authenticator holds tokens' skill claims to the same range). Defaults
	// -1,000,000 and 1,000,000.
	SkillMin, SkillMax float64
	// CodeGuessesPerMinute bounds each player's lobby.join codes that match
	// no lobby, across connections and nodes; past it every lobby.join by
	// code gets rate_limited until the minute ends. Default 10.
	CodeGuessesPerMinute int
	// Grace is how long a disconnected player keeps their lobby place and
	// solo ticket. Default 30s.
	Grace time.Duration
	// GraceSweep is how often expired graces are looked for. Default 1s.
	GraceSweep time.Duration
	// DrainPeriod is how long a drain spreads its closes over when the
	// operator names no period. Default 1m.
	DrainPeriod time.Duration
	// TicketAudit is how often the tickets this node's players were told
	// are searching are checked for records Redis lost (see tickets.go).
	// Default and most: MaxTicketAudit.
	TicketAudit time.Duration
	// LobbyStateInterval paces each lobby's lobby.state from this node: one
	// at once, then at most one per interval carrying the latest lobby.
	// Default 250ms.
	LobbyStateInterval time.Duration

	initOnce sync.Once
	ready    chan struct{} // closed once Run accepts connections
	upgrader websocket.Upgrader
	workers  *workers // run the connections' requests and writes
	metrics  *gatewayMetrics
	hub      *hub
	limits   *limiter
	// The gateway's parts besides the sockets: getting results to players
	// (delivery), keeping them reachable and ending their grace periods
	// (presence), and the lobby rules (lobbies) with their lobby.state
	// pacing (states).
	delivery *delivery
	presence *presence
	lobbies  *lobbyService
	states   *lobbyStates

	mu       sync.Mutex
	running  bool // Run has subscribed and the hub is up
	closing  bool // Run is shutting down: no new connections
	draining bool // Drain was called: no new connections
	drain    chan time.Duration
	open     int // connections admitted and not yet ended
	conns    sync.WaitGroup
}

func (g *Gateway) init() {
	g.initOnce.Do(func() {
		if g.Logger == nil {
			g.Logger = slog.Default()
		}
		setDefault(&g.MaxFrameBytes, 4096)
		setDefault(&g.SendQueue, 64)
		setDefault(&g.PingInterval, 25*time.Second)
		setDefault(&g.PongWait, 60*time.Second)
		setDefault(&g.WriteWait, 10*time.Second)
		setDefault(&g.PresenceTTL, 60*time.Second)
		setDefault(&g.RequestTimeout, 5*time.Second)
		if g.Limits == nil {
			l := DefaultLimits()
			g.Limits = &l
		}
		if g.SkillMin == 0 && g.SkillMax == 0 {
			g.SkillMin, g.SkillMax = -1e6, 1e6
		}
		g.limits = newLimiter(*g.Limits)
		setDefault(&g.CodeGuessesPerMinute, 10)
		setDefault(&g.Grace, 30*time.Second)
		setDefault(&g.GraceSweep, time.Second)
		setDefault(&g.LobbyStateInterval, 250*time.Millisecond)
		setDefault(&g.TicketAudit, MaxTicketAudit)
		g.TicketAudit = min(g.TicketAudit, MaxTicketAudit)
		setDefault(&g.DrainPeriod, time.Minute)
		g.upgrader = websocket.Upgrader{
			ReadBufferSize:    512, // a request fits; a larger frame is read past it
			WriteBufferSize:   1024,
			WriteBufferPool:   &sync.Pool{},
			HandshakeTimeout:  10 * time.Second,
			EnableCompression: false,                                                   // read limits count compressed bytes
			CheckOrigin:       func(*http.Request) bool { return true },                // checked before Upgrade
			Error:             func(http.ResponseWriter, *http.Request, int, error) {}, // see ServeHTTP
		}
		g.upgrader.Error = func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeHTTPError(w, status, CodeBadRequest, reason.Error())
		}
		g.metrics = newGatewayMetrics(g.Registerer)
		g.hub = newHub()
		g.hub.drain = func(period time.Duration) { g.Drain(period) }
		g.workers = newWorkers()
		g.lobbies = &lobbyService{store: g.Store, logger: g.Logger}
		g.states = newLobbyStates(g.LobbyStateInterval, g.lobbies.sendStoredLobbyState)
		g.lobbies.states = g.states
		g.delivery = newDelivery(g.Store, g.hub, g.Logger, g.metrics, g.RequestTimeout)
		g.presence = &presence{store: g.Store, hub: g.hub, logger: g.Logger, ttl: g.PresenceTTL, grace: g.Grace,
			sweep: g.GraceSweep, redeliver: g.delivery.redeliver, leaveLobby: g.lobbies.leaveLobby}
		g.ready = make(chan struct{})
		g.drain = make(chan time.Duration, 1)
	})
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Run subscribes to this node's channel and serves deliveries and presence
// until ctx is done. Then it refuses new connections, closes every socket
// with 1001 (reconnect elsewhere) and returns once all of them have ended.
func (g *Gateway) Run(ctx context.Context) error {
	g.init()
	sub, err := g.Store.Subscribe(ctx, g.NodeID)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	// Lobby states are paced until every connection and the grace sweeper
	// have ended (they announce changes), then what is pending is sent.
	statesCtx, stopStates := context.WithCancel(context.WithoutCancel(ctx))
	go g.states.run(statesCtx, g.RequestTimeout)
	var wg sync.WaitGroup
	wg.Add(7)
	go func() { defer wg.Done(); g.hub.run(hubCtx) }()
	go func() { defer wg.Done(); g.runDrain(hubCtx) }()
	go func() { defer wg.Done(); g.limits.runSweeps(hubCtx, limitSweep) }()
	go func() {
		defer wg.Done()
		g.delivery.relay(hubCtx, sub)
		// Nobody reads it now: messages for this node stop queueing
		// in-process (they go to Redis, where nobody listens either).
		sub.Close()
	}()
	go func() { defer wg.Done(); g.presence.refresh(hubCtx) }()
	go func() { defer wg.Done(); g.presence.sweepGraces(hubCtx) }()
	go func() { defer wg.Done(); g.auditTickets(hubCtx) }()

	g.mu.Lock()
	g.running = true
	g.mu.Unlock()
	close(g.ready)

	acked := make(chan struct{})
	go func() { defer close(acked); g.delivery.runAcks(ctx) }()

	<-ctx.Done()
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	stopHub()
	g.conns.Wait()
	close(g.delivery.acks) // no connection is left to ack: send what is queued
	<-acked
	wg.Wait()
	stopStates()
	<-g.states.done
	g.workers.close()
	return nil
}

// Ready is closed once Run accepts connections.
func (g *Gateway) Ready() <-chan struct{} {
	g.init()
	return g.ready
}

// limitSweep is how often budgets that refilled are forgotten.
const limitSweep = 30 * time.Second

// ServeHTTP upgrades GET /v1/ws to a player's WebSocket: 401 without a
// valid token, 403 for a browser origin that is not allowed, 429 past a
// handshake or per-address limit, 503 while the gateway is not running or
// is full. It starts the connection's loops and returns.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.init()
	addr := g.limits.clientAddr(r)
	releaseAddr, wait, reason := g.limits.admitAddr(addr)
	if releaseAddr == nil {
		g.refuseHandshake(w, http.StatusTooManyRequests, CodeRateLimited, reason, wait)
		return
	}
	admitted := false
	defer func() {
		if !admitted {
			releaseAddr()
		}
	}()
	id, err := g.Auth.Verify(tokenFromRequest(r))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lobbyd"`)
		g.refuseHandshake(w, http.StatusUnauthorized, CodeUnauthorized, err.Error(), 0)
		return
	}
	if !g.originAllowed(r) {
		g.refuseHandshake(w, http.StatusForbidden, CodeForbidden, "origin not allowed", 0)
		return
	}
	budget, refusal := g.admitPlayer(r.Context(), id.PlayerID)
	if refusal != nil {
		g.refuseHandshake(w, http.StatusTooManyRequests, CodeRateLimited, refusal.reason, refusal.wait)
		return
	}
	g.mu.Lock()
	switch {
	case !g.running || g.closing:
		g.mu.Unlock()
		g.releasePlayer(budget)
		g.refuseHandshake(w, http.StatusServiceUnavailable, CodeUnavailable, "server is not accepting connections", time.Second)
		return
	case g.draining:
		g.mu.Unlock()
		g.releasePlayer(budget)
		g.refuseHandshake(w, http.StatusServiceUnavailable, CodeUnavailable, "node draining, retry another node", time.Second)
		return
	case g.Limits.MaxConns > 0 && g.open >= g.Limits.MaxConns:
		g.mu.Unlock()
		g.releasePlayer(budget)
		g.refuseHandshake(w, http.StatusServiceUnavailable, CodeUnavailable, "server is full, retry another node", 5*time.Second)
		return
	}
	g.open++
	g.conns.Add(1)
	g.mu.Unlock()

	conn, err := g.upgrader.Upgrade(&corkingWriter{ResponseWriter: w}, r, nil)
	if err != nil {
		g.connEnded(budget)
		return
	}
	admitted = true
	g.metrics.connections.Inc()
	go g.newSession(conn, id, budget, releaseAddr).serve()
}

// newSession builds the session of a player's upgraded connection, with
// its queues, the player's budget and the address slot it holds; the fuzz
// tests build theirs here too, so they drive the frames of exactly the
// session a socket gets.
func (g *Gateway) newSession(conn *websocket.Conn, id Identity, budget *playerBudget, releaseAddr func()) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		g: g, conn: conn, id: id, connID: uuid.NewString(), budget: budget, releaseAddr: releaseAddr,
		closing: make(chan struct{}), readDone: make(chan struct{}), room: make(chan struct{}, 1), writerDone: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	s.startWriter = func(inline bool) {
		if inline {
			s.writeOut(true)
			return
		}
		g.workers.goRun(func() { s.writeOut(false) })
	}
	return s
}

// refuseHandshake answers a handshake that is not upgraded, and counts it.
func (g *Gateway) refuseHandshake(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration) {
	g.metrics.handshakeFailures.WithLabelValues(code).Inc()
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	writeHTTPError(w, status, code, msg)
}

// handshakeRefusal is a player over their handshake budget.
type handshakeRefusal struct {
	reason string
	wait   time.Duration
}

// admitPlayer charges one handshake to the player's budget, resuming a
// budget their last connection on another node left in Redis when this node
// has none of theirs in use. The budget is then held until connEnded. When
// Redis cannot be read the local budget alone counts: a handshake needs no
// Redis (the socket then reports the outage).
func (g *Gateway) admitPlayer(ctx context.Context, player string) (*playerBudget, *handshakeRefusal) {
	b, _ := g.limits.player(player)
	b.mu.Lock()
	// What this node knows already refuses without a Redis read: a client
	// hammering handshakes costs no round trip.
	if refusal := g.handshakeRefusal(b, time.Now()); refusal != nil {
		b.mu.Unlock()
		return nil, refusal
	}
	inUse := b.conns > 0
	b.conns++ // held from here, so the sweep keeps it
	b.mu.Unlock()
	if !inUse {
		ctx, cancel := context.WithTimeout(ctx, min(g.RequestTimeout, time.Second))
		data, err := g.Store.PlayerLimits(ctx, player)
		cancel()
		if err != nil {
			g.Logger.Debug("read carried-over rate budgets", "player", player, "err", err)
		}
		b.resume(g.Limits, data, time.Now())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	refusal := g.handshakeRefusal(b, now)
	if refusal == nil {
		b.handshakes.take(g.Limits.Handshakes, now, 1)
		return b, nil
	}
	b.conns--
	return nil, refusal
}

// handshakeRefusal says why b admits no handshake now, or nil. b.mu is held.
func (g *Gateway) handshakeRefusal(b *playerBudget, now time.Time) *handshakeRefusal {
	if now.Before(b.penalty) {
		return &handshakeRefusal{"closed for abuse: reconnect later", b.penalty.Sub(now)}
	}
	if wait := b.handshakes.wait(g.Limits.Handshakes, now, 1); wait > 0 {
		return &handshakeRefusal{"too many connections for this player, slow down", wait}
	}
	return nil
}

// releasePlayer gives back a connection's hold on its player's budget.
func (g *Gateway) releasePlayer(b *playerBudget) {
	b.mu.Lock()
	b.conns--
	b.mu.Unlock()
}

// connEnded releases a connection's node slot and budget hold.
func (g *Gateway) connEnded(b *playerBudget) {
	g.releasePlayer(b)
	g.mu.Lock()
	g.open--
	g.mu.Unlock()
	g.conns.Done()
}

// originAllowed applies PublicURL and AllowedOrigins; gorilla would accept
// a missing Origin and nothing else, so the rule is written out here.
func (g *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if p := g.PublicURL; p != nil {
		if strings.EqualFold(u.Scheme, p.Scheme) && strings.EqualFold(u.Host, p.Host) {
			return true
		}
	} else if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range g.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

type gatewayMetrics struct {
	connections       prometheus.Gauge
	handshakeFailures *prometheus.CounterVec
	requests          *prometheus.CounterVec
	requestErrors     *prometheus.CounterVec
	slowConsumers     prometheus.Counter
	abuseCloses       *prometheus.CounterVec
	matchesDelivered  prometheus.Counter
	redelivered       prometheus.Counter
	draining          prometheus.Gauge
	ticketsLost       prometheus.Counter
	ticketsWatched    prometheus.Gauge
}

func newGatewayMetrics(reg prometheus.Registerer) *gatewayMetrics {
	m := &gatewayMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobbyd_connections", Help: "Open player WebSocket connections on this node."}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_handshake_failures_total", Help: "WebSocket handshakes refused, by reason."}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_requests_total", Help: "Client requests handled, by type."}, []string{"type"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_request_errors_total", Help: "Error replies and protocol violations, by error code."}, []string{"code"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_slow_consumer_disconnects_total", Help: "Connections closed with 4004 because their outgoing queue filled."}),
		abuseCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_abuse_disconnects_total", Help: "Connections closed because the client misbehaved, by reason (binary_frame 1003, invalid_utf8 1007, flood 1008, frame_too_large 1009, slow_consumer 4004)."}, []string{"reason"}),
		matchesDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_match_ready_delivered_total", Help: "match.ready frames written to player sockets."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_match_ready_redelivered_total", Help: "Undelivered match.ready results found by the periodic sweep and pushed again."}),
		draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobbyd_node_draining", Help: "1 while this node drains (an operator's action): it takes no new sockets and closes its own."}),
		ticketsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_tickets_lost_total", Help: "Searching tickets whose record Redis lost (a failover or restart after the queue.join reply), found by this node's ticket audit; their players were told queue.state cancelled, reason lost."}),
		ticketsWatched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobbyd_tickets_watched", Help: "Tickets this node's players were told are searching, as its last ticket audit counted them."}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.handshakeFailures, m.requests, m.requestErrors, m.slowConsumers,
			m.abuseCloses, m.matchesDelivered, m.redelivered, m.draining, m.ticketsLost, m.ticketsWatched)
	}
	return m
}
