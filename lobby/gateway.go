package lobby

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lobbyd/lobbyd/internal/batch"
	"github.com/lobbyd/lobbyd/store"
)

// Queuer is what the gateway needs from the matchmaker.
type Queuer interface {
	// Join creates a searching ticket from t's Queue, Players, Skill and Regions.
	Join(ctx context.Context, t store.Ticket) (store.Ticket, error)
	// Leave cancels the player's searching ticket.
	Leave(ctx context.Context, playerID string) (store.Ticket, error)
	// MaxUsers returns a queue's match size, and whether the queue exists.
	MaxUsers(queue string) (int, bool)
	// QueueNames lists the queues.
	QueueNames() []string
}

// Gateway serves players' WebSocket connections on one node. Store, Queues,
// Auth and NodeID are required; other zero-value fields get the defaults
// documented on them. Run must be running for connections to be accepted.
type Gateway struct {
	Store  *store.Store
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
	// SendQueue is the number of frames queued per connection; a client
	// that lets it fill is disconnected with 4004. Default 64.
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
	// SkillMin and SkillMax bound the skill a client may send. Defaults
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
	// LobbyStateInterval paces each lobby's lobby.state from this node: one
	// at once, then at most one per interval carrying the latest lobby.
	// Default 250ms.
	LobbyStateInterval time.Duration

	initOnce sync.Once
	ready    chan struct{} // closed once Run accepts connections
	acks     chan matchAck // delivered match.ready frames, for ackDelivered
	upgrader websocket.Upgrader
	metrics  *gatewayMetrics
	hub      *hub
	limits   *limiter
	states   *lobbyStates

	mu      sync.Mutex
	running bool // Run has subscribed and the hub is up
	closing bool // Run is shutting down: no new connections
	open    int  // connections admitted and not yet ended
	conns   sync.WaitGroup
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
		g.upgrader = websocket.Upgrader{
			ReadBufferSize:    1024,
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
		g.states = newLobbyStates(g.LobbyStateInterval, g.sendStoredLobbyState)
		g.ready = make(chan struct{})
		g.acks = make(chan matchAck, 4*ackBatch)
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
		return err
	}
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	// Lobby states are paced until every connection and the grace sweeper
	// have ended (they announce changes), then what is pending is sent.
	statesCtx, stopStates := context.WithCancel(context.WithoutCancel(ctx))
	go g.states.run(statesCtx, g.RequestTimeout)
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); g.hub.run(hubCtx) }()
	go func() { defer wg.Done(); g.limits.runSweeps(hubCtx, limitSweep) }()
	go func() { defer wg.Done(); g.relay(hubCtx, sub) }()
	go func() { defer wg.Done(); g.refreshPresence(hubCtx) }()
	go func() { defer wg.Done(); g.sweepGraces(hubCtx) }()

	g.mu.Lock()
	g.running = true
	g.mu.Unlock()
	close(g.ready)

	acked := make(chan struct{})
	go func() { defer close(acked); g.ackDelivered(ctx) }()

	<-ctx.Done()
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	stopHub()
	g.conns.Wait()
	close(g.acks) // no connection is left to ack: send what is queued
	<-acked
	sub.Close()
	wg.Wait()
	stopStates()
	<-g.states.done
	return nil
}

// Ready is closed once Run accepts connections.
func (g *Gateway) Ready() <-chan struct{} {
	g.init()
	return g.ready
}

// relay hands node-channel messages to the hub.
func (g *Gateway) relay(ctx context.Context, sub *store.Subscription) {
	for {
		msg, ok, err := sub.Next(ctx)
		if !ok {
			return
		}
		if err != nil {
			g.Logger.Warn("node message", "err", err)
			continue
		}
		if msg.Resubscribed {
			// Whatever was published to this node while the subscription was
			// down is lost: push the stored results of local players now
			// rather than at the next sweep.
			g.Logger.Info("node channel resubscribed; redelivering stored match results")
			rctx, cancel := context.WithTimeout(ctx, g.RequestTimeout)
			g.redeliver(rctx, g.hub.presences(ctx))
			cancel()
			continue
		}
		g.hub.send(ctx, msg)
	}
}

func (g *Gateway) refreshPresence(ctx context.Context) {
	t := time.NewTicker(g.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			entries := g.hub.presences(ctx)
			rctx, cancel := context.WithTimeout(ctx, g.PresenceTTL/3)
			restored, err := g.Store.RefreshPresence(rctx, entries, g.PresenceTTL)
			if err != nil {
				g.Logger.Warn("refresh presence", "err", err)
			}
			g.undoStaleRestores(rctx, restored)
			deadlines := make(map[string]time.Time, len(entries))
			for p := range entries {
				deadlines[p] = g.connectedGraceDeadline()
			}
			if err := g.Store.SetGraceDeadlines(rctx, deadlines); err != nil {
				g.Logger.Warn("extend grace deadlines", "err", err)
			}
			g.redeliver(rctx, entries)
			cancel()
		}
	}
}

// undoStaleRestores clears presences the refresh restored for players whose
// socket closed while the refresh was under way: it worked from a snapshot
// of the hub, and restoring a presence that had just been cleared would show
// a departed player connected for a minute.
func (g *Gateway) undoStaleRestores(ctx context.Context, restored map[string]store.Presence) {
	if len(restored) == 0 {
		return
	}
	now := g.hub.presences(ctx)
	for player, p := range restored {
		if now[player] != p {
			if _, err := g.Store.ClearPresence(ctx, player, p); err != nil {
				g.Logger.Warn("clear stale presence", "player", player, "err", err)
			}
		}
	}
}

// connectedGraceDeadline is the grace deadline of a connected player: their
// node renews it while they stay; if the node dies, it passes one presence
// lifetime plus the grace period after the last renewal.
func (g *Gateway) connectedGraceDeadline() time.Time {
	return time.Now().Add(g.PresenceTTL + g.Grace)
}

// sweepGraces ends the grace period of players who stayed away: they leave
// their lobby and their solo ticket is cancelled. Every node sweeps; each
// expired grace is handed to one of them.
func (g *Gateway) sweepGraces(ctx context.Context) {
	t := time.NewTicker(g.GraceSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			graces, err := g.Store.LeaseExpiredGraces(ctx, time.Now(), 100)
			if err != nil {
				if ctx.Err() == nil {
					g.Logger.Warn("sweep graces", "err", err)
				}
				break
			}
			for _, gr := range graces {
				if g.expire(ctx, gr.PlayerID) {
					if err := g.Store.GraceHandled(ctx, gr); err != nil && ctx.Err() == nil {
						g.Logger.Warn("finish grace", "player", gr.PlayerID, "err", err)
					}
				}
			}
			if len(graces) < 100 {
				break
			}
		}
	}
}

// expire ends one player's grace period, unless they are connected. It
// reports whether the grace is done with (false: try again later).
func (g *Gateway) expire(ctx context.Context, player string) bool {
	connected, err := g.Store.Connected(ctx, []string{player})
	if err != nil {
		return false
	}
	if connected[player] {
		return true // back: their node keeps a new deadline
	}
	log := g.Logger.With("player", player)
	l, err := g.Store.PlayerLobby(ctx, player)
	switch {
	case err == nil:
		log.Info("grace period over: leaving lobby", "lobby", l.ID)
		if err := g.leaveLobby(ctx, l, player); err != nil {
			log.Warn("remove player from lobby", "err", err)
			return false
		}
	case !errors.Is(err, store.ErrNotFound):
		return false
	}
	t, err := g.Store.PlayerTicket(ctx, player)
	switch {
	case err == nil && t.LobbyID == "" && (t.Status == store.TicketSearching || t.Status == store.TicketMatched):
		if _, err := g.Store.CancelPlayerTicket(ctx, player); err == nil {
			log.Info("grace period over: ticket cancelled", "ticket", t.ID)
		} else if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return false
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false
	}
	return true
}

// redeliver pushes results stored for connected players but never written
// to their sockets: a publish is lost if it happens while this node's
// subscription is reconnecting to Redis. Each connection still shows a
// match.ready once.
func (g *Gateway) redeliver(ctx context.Context, entries map[string]store.Presence) {
	players := make([]string, 0, len(entries))
	for p := range entries {
		players = append(players, p)
	}
	pending, err := g.Store.PendingMatches(ctx, players)
	if err != nil {
		g.Logger.Warn("look for undelivered matches", "err", err)
		return
	}
	if len(pending) == 0 {
		return
	}
	msg := store.NodeMessage{Events: make([]store.Addressed, 0, len(pending))}
	for _, a := range pending {
		msg.Events = append(msg.Events, a)
	}
	g.metrics.redelivered.Add(float64(len(pending)))
	g.hub.send(ctx, msg)
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
	case g.Limits.MaxConns > 0 && g.open >= g.Limits.MaxConns:
		g.mu.Unlock()
		g.releasePlayer(budget)
		g.refuseHandshake(w, http.StatusServiceUnavailable, CodeUnavailable, "server is full, retry another node", 5*time.Second)
		return
	}
	g.open++
	g.conns.Add(1)
	g.mu.Unlock()

	conn, err := g.upgrader.Upgrade(w, r, nil)
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
		send: make(chan outgoing, g.SendQueue), closing: make(chan struct{}), readDone: make(chan struct{}),
		ctx: ctx, cancel: cancel,
		delivered: make(map[string]bool),
	}
	s.log = g.Logger.With("player", id.PlayerID, "conn", s.connID)
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

// ackMatch clears the player's undelivered copy of a match once its
// match.ready is written, and returns a channel closed when that is done
// (or has failed: the copy then only means a duplicate that the client
// ignores). Acks are batched by ackDelivered, one pipeline for the acks of
// many sessions; when its queue is full the ack is made at once instead.
func (g *Gateway) ackMatch(ctx context.Context, playerID, matchID string) <-chan struct{} {
	g.metrics.matchesDelivered.Inc()
	a := matchAck{MatchAck: store.MatchAck{PlayerID: playerID, MatchID: matchID}, done: make(chan struct{})}
	select {
	case g.acks <- a:
		return a.done
	default:
	}
	defer close(a.done)
	ctx, cancel := context.WithTimeout(ctx, g.RequestTimeout)
	defer cancel()
	if err := g.Store.AckPendingMatch(ctx, playerID, matchID); err != nil && !errors.Is(err, context.Canceled) {
		g.Logger.Warn("ack delivered match", "player", playerID, "match", matchID, "err", err)
	}
	return a.done
}

type matchAck struct {
	store.MatchAck
	done chan struct{} // closed once sent
}

// ackBatch bounds the acks sent in one pipeline.
const ackBatch = 512

// ackDelivered sends queued acks in batches until acks is closed (after the
// last connection ended) and every ack queued before has been sent. Each
// batch is tried once, so the sessions waiting on it move on; acks that
// failed because Redis was unavailable go to retryAcks, which sends them
// again with backoff while the gateway runs. An ack never made leaves a
// copy that is shown again on a later connection, but only until the
// player queues again (see store.DeliverMatch).
func (g *Gateway) ackDelivered(ctx context.Context) {
	failed := make(chan []store.MatchAck, 16)
	retried := make(chan struct{})
	go func() { defer close(retried); g.retryAcks(ctx, failed) }()
	defer func() { close(failed); <-retried }()
	batch.Each(g.acks, ackBatch, func(batch []matchAck) {
		acks := make([]store.MatchAck, len(batch))
		for i, a := range batch {
			acks[i] = a.MatchAck
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.RequestTimeout)
		err := g.Store.AckPendingMatches(actx, acks)
		cancel()
		for _, a := range batch {
			close(a.done)
		}
		switch {
		case err == nil:
		case store.IsUnavailable(err) && ctx.Err() == nil:
			select {
			case failed <- acks:
			default:
				g.Logger.Warn("ack delivered matches: retry queue full, dropped", "matches", len(acks), "err", err)
			}
		default:
			g.Logger.Warn("ack delivered matches", "matches", len(acks), "err", err)
		}
	})
}

// maxAckRetries bounds the acks retryAcks holds; beyond it the oldest are
// dropped (each only means a duplicate on a later connection).
const maxAckRetries = 100 * ackBatch

// retryAcks sends again, with backoff, the acks that failed while Redis was
// unavailable, until they go through or ctx is done, and returns once
// failed is closed.
func (g *Gateway) retryAcks(ctx context.Context, failed <-chan []store.MatchAck) {
	var pending []store.MatchAck
	var wait <-chan time.Time
	retry := 0
	for {
		select {
		case acks, ok := <-failed:
			if !ok {
				if len(pending) > 0 {
					g.Logger.Warn("ack delivered matches: gave up at shutdown", "matches", len(pending))
				}
				return
			}
			if ctx.Err() != nil {
				continue
			}
			if drop := len(pending) + len(acks) - maxAckRetries; drop > 0 {
				pending = pending[min(drop, len(pending)):]
			}
			pending = append(pending, acks...)
			if wait == nil {
				retry = 1
				wait = time.After(ackBackoff(retry))
				g.Logger.Warn("ack delivered matches: retrying while Redis is unavailable", "matches", len(pending))
			}
		case <-wait:
			wait = nil
			if ctx.Err() != nil {
				continue
			}
			for len(pending) > 0 {
				n := min(len(pending), ackBatch)
				actx, cancel := context.WithTimeout(ctx, g.RequestTimeout)
				err := g.Store.AckPendingMatches(actx, pending[:n])
				cancel()
				if err != nil && store.IsUnavailable(err) {
					retry++
					wait = time.After(ackBackoff(retry))
					break
				}
				if err != nil {
					g.Logger.Warn("ack delivered matches", "matches", n, "err", err)
				}
				pending = pending[n:]
			}
		}
	}
}

// ackBackoff is the wait before the retry-th try of failed acks: doubling
// from 50ms up to 2s, with jitter so that nodes do not retry in step.
func ackBackoff(retry int) time.Duration {
	d := min(50*time.Millisecond<<min(retry-1, 6), 2*time.Second)
	return d/2 + rand.N(d/2+1)
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
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.handshakeFailures, m.requests, m.requestErrors, m.slowConsumers,
			m.abuseCloses, m.matchesDelivered, m.redelivered)
	}
	return m
}
