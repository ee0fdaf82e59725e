package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lobbyd/lobbyd/internal/wsread"
)

// Closes the generator sends: a clean goodbye, and the "drop" of
// -reconnect-share players (any code but 1000 works; 4000 is private use).
const (
	closeGoodbye = websocket.CloseNormalClosure
	closeDrop    = 4000
)

const (
	// welcomeWait bounds the wait for the first frame after the upgrade.
	welcomeWait = 10 * time.Second
	// closeWait bounds the close handshake, during which frames already
	// sent by the server are still read and checked.
	closeWait = 2 * time.Second
	writeWait = 5 * time.Second
)

// lobbyGroup is what the members of one simulated lobby share: the join
// code the owner publishes and the time the owner queued the lobby.
type lobbyGroup struct {
	ready  chan struct{} // closed once code is set
	failed chan struct{} // closed if the owner gave up
	code   string
	once   sync.Once

	mu     sync.Mutex
	joinAt time.Time
}

func newLobbyGroup() *lobbyGroup {
	return &lobbyGroup{ready: make(chan struct{}), failed: make(chan struct{})}
}

func (g *lobbyGroup) publish(code string) { g.code = code; close(g.ready) }
func (g *lobbyGroup) fail()               { g.once.Do(func() { close(g.failed) }) }

func (g *lobbyGroup) setJoinAt(t time.Time) { g.mu.Lock(); g.joinAt = t; g.mu.Unlock() }
func (g *lobbyGroup) queuedAt() time.Time   { g.mu.Lock(); defer g.mu.Unlock(); return g.joinAt }

// conn is one WebSocket of a player. A goroutine reads frames into frames;
// only the player's goroutine writes.
type conn struct {
	url     int // the index in -url of the lobbyd it reached
	ws      *websocket.Conn
	frames  chan *frame // closed when the socket ends
	done    chan struct{}
	readErr error // why the socket ended; read after frames is closed
	// endedAt is when the reader saw the socket end (zero: it was told to
	// stop); read, like readErr, after frames is closed.
	endedAt time.Time
	seq     int
	pending []pendingRequest // sent, not yet answered, in order
	closing bool             // we started the close handshake
	// matchIDs are the matches whose match.ready came on this socket.
	matchIDs []string
}

type pendingRequest struct{ id, typ string }

func (c *conn) read() {
	defer close(c.frames) // after readErr is set: it is read once frames is closed
	c.readErr = wsread.Loop(c.ws, c.frames, c.done, func() *frame { return &frame{Type: "!invalid-json"} })
	if c.readErr == nil {
		c.readErr = errors.New("closed by lobbyload")
	} else {
		c.endedAt = time.Now()
	}
}

// player is one simulated player. Its fields are owned by the goroutine
// running play; the report reads them after it returns.
type player struct {
	load  *load
	role  role
	group *lobbyGroup
	name  string
	// index is the player's place in the run's plan (its name's number);
	// url the index in -url of the lobbyd it connects to first, then of
	// the one its latest socket reached.
	index, url int

	id, token string
	conn      *conn
	lobby     *lobbyObject // latest lobby.state or reply
	foundIDs  []string     // matchIds of every match.found
	stopWait  string       // why waiting for match.ready is pointless, if it is

	// results
	connects      []time.Duration
	joinReplies   []time.Duration
	joinAt        time.Time // the last queue.join of the ticket that got matched
	firstJoinAt   time.Time
	matchAt       time.Time
	matchLatency  time.Duration
	matchReadies  int
	matchIDs      []string
	wasConnected  bool
	failure       string
	lost          bool
	leaves        int
	cancelled     int      // queue.state cancelled events seen
	leftMatchIDs  []string // matches this player left while they allocated
	leftMatch     bool     // left after match.found and did not queue again
	lateCounted   bool
	reconnects    int
	finishedCount bool
	searchingNow  bool

	// What a reconnection must not do again: set when done and from
	// welcome.state after a lost socket (see applyWelcome).
	queued     bool // the player's ticket (a lobby owner's: the lobby's) is in the queue
	inLobby    bool // a lobby role is in its lobby
	readyDone  bool // a lobby role sent lobby.ready, or the lobby is queued already
	published  bool // a lobby owner gave its members the code
	dropped    bool // a reconnecter made its drop
	leaveTried bool // a leaver went through its leave (or lost its socket doing so)
	// lostSockets counts the player's sockets that the server closed or
	// that broke; redelivered the match.ready of its match that came again
	// on a later socket (allowed: see gotMatch).
	lostSockets, redelivered int
	// resumed counts the reconnections whose welcome gave the player's
	// ticket, lobby or match back.
	resumed int
	// ticketsLost counts the tickets the server said it lost (queue.state
	// cancelled, reason lost: a Redis failover or restart lost it after
	// the queue.join reply); requeue is set when this player is to queue
	// again for it (alone, or as its lobby's owner).
	ticketsLost int
	requeue     bool
	// droppedTickets and droppedLobbies count the reconnections whose
	// welcome left out what the server had acknowledged and not ended: a
	// searching ticket, a lobby place (see applyWelcome).
	droppedTickets, droppedLobbies int
	// lostAt is when the player's latest lost socket ended (as its reader
	// saw it), until the next welcome; lostURL is the URL it was on.
	// backs are the player's ways back: each lost socket's loss and the
	// next welcome (see reconnection).
	lostAt  time.Time
	lostURL int
	backs   []reconnection
}

// reconnection is one lost socket and the player's way back: when the
// socket ended (as the player's reader saw it: on loopback, within a
// millisecond of a node's death), and when the next welcome arrived, from
// URL, however many attempts that took.
type reconnection struct {
	URL    int
	Player string
	Lost   time.Time
	Back   time.Time
}

// socketLost records that the player's socket c was lost at (or, if its
// reader saw it end earlier, then): the player is away until its next
// welcome.
func (p *player) socketLost(c *conn, at time.Time) {
	if !c.endedAt.IsZero() && c.endedAt.Before(at) {
		at = c.endedAt
	}
	p.lostSockets++
	p.load.urls[c.url].lost.Add(1)
	if p.lostAt.IsZero() {
		p.lostAt, p.lostURL = at, c.url
		p.load.away.Add(1)
	}
}

// lostSocket is the error of a socket the server closed, or that broke,
// for a reason after which a client reconnects (docs/protocol.md, "Close
// codes": 1001 from a drain or a shutdown, 1011, 4004, 4005, or a reset).
type lostSocket struct{ kind string }

func (e *lostSocket) Error() string { return "socket lost: " + e.kind }

// reconnectable reports whether a client reconnects after the server
// closed its socket with code (0: the socket broke without a close frame).
func reconnectable(code int) bool {
	switch code {
	case 0, websocket.CloseGoingAway, websocket.CloseAbnormalClosure, websocket.CloseInternalServerErr,
		websocket.CloseServiceRestart, websocket.CloseTryAgainLater, 4004, 4005:
		return true
	}
	return false
}

// connectError is a failed connection attempt; retry says another attempt
// (on the next URL, after a backoff) may succeed: the lobbyd was not
// reachable, refused the handshake for now (429, 502, 503, 504) or sent no
// welcome.
type connectError struct {
	err   error
	retry bool
}

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// retryableStatus reports whether a handshake refused with HTTP status
// may succeed later or on another node.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// play runs the player's scenario until it is matched (then holds its
// socket until every player finished) or fails, or ctx ends. A socket lost
// on the way is replaced (see resume).
func (p *player) play(ctx context.Context) {
	defer p.finish()
	defer p.closeConn(closeGoodbye)
	err := p.resume(ctx)
	if p.leftMatch {
		p.finish()
		return
	}
	if err != nil {
		if p.group != nil && ctx.Err() == nil {
			p.group.fail()
		}
		if ctx.Err() != nil && p.failure == "" && p.stopWait == "" {
			p.lost = true
			if p.role != roleIdle {
				p.load.check.error("timeout: no match.ready before the run ended")
			}
			p.finish()
			return
		}
		p.fail(err.Error())
		return
	}
	if p.role != roleIdle {
		p.hold(ctx)
	}
}

// resume runs the scenario; whenever the player's socket is lost it
// reconnects (recover) and runs the scenario again, which skips what the
// player did already and what welcome.state says it still has.
func (p *player) resume(ctx context.Context) error {
	for {
		err := p.scenario(ctx)
		if errors.Is(err, errRequeue) && ctx.Err() == nil {
			continue // the server lost the ticket: queue again, as a client should
		}
		var lost *lostSocket
		if err == nil || !errors.As(err, &lost) || ctx.Err() != nil {
			return err
		}
		if err := p.recover(ctx); err != nil {
			return err
		}
	}
}

// scenario is the player's role, up to its match.ready.
func (p *player) scenario(ctx context.Context) error {
	if p.matchReadies > 0 || p.leftMatch {
		return nil
	}
	var err error
	switch p.role {
	case roleIdle:
		return p.idle(ctx)
	case roleLobbyOwner:
		err = p.ownLobby(ctx)
	case roleLobbyMember:
		err = p.joinLobby(ctx)
	default:
		err = p.queueAlone(ctx)
	}
	if err != nil || p.leftMatch {
		return err
	}
	return p.awaitMatch(ctx)
}

// fail marks the player failed, once.
func (p *player) fail(reason string) {
	if p.failure != "" || p.matchReadies > 0 {
		return
	}
	p.failure = reason
	p.load.failed.Add(1)
	p.finish()
}

// finish counts the player as done for the run, once.
func (p *player) finish() {
	if p.searchingNow {
		p.searchingNow = false
		p.load.searching.Add(-1)
	}
	if !p.finishedCount {
		p.finishedCount = true
		p.load.finish()
	}
}

func (p *player) idle(ctx context.Context) error {
	if err := p.connectOnce(ctx); err != nil {
		return err
	}
	for {
		if _, err := p.next(ctx); err != nil {
			if ctx.Err() != nil {
				p.finish()
				return nil // held until the end, as asked
			}
			return err
		}
	}
}

func (p *player) queueAlone(ctx context.Context) error {
	if err := p.connectOnce(ctx); err != nil {
		return err
	}
	if p.role == roleLeaver && !p.leaveTried {
		// Once: after a lost socket the leaver only makes sure it is queued.
		p.leaveTried = true
		return p.leaveAndRejoin(ctx)
	}
	if !p.queued {
		if p.leaves > 0 && p.leftAfterFound() {
			p.leftMatch = true // as leaveAndRejoin decides
			return nil
		}
		if err := p.queueJoin(ctx); err != nil {
			return err
		}
	}
	if p.role == roleReconnecter && !p.dropped {
		p.dropped = true
		return p.dropAndReconnect(ctx)
	}
	return nil
}

// leaveAndRejoin queues, leaves the queue and queues again. The leave is
// pipelined behind queue.join so that it rarely lands after match.found,
// which the protocol allows: the match goes ahead without this player's
// match.ready, and queueing again puts one player too many in the queue.
func (p *player) leaveAndRejoin(ctx context.Context) error {
	r, err := p.queueJoinThen(ctx, "queue.leave")
	if err != nil {
		return err
	}
	switch code := r.errorCode(); code {
	case "":
		p.leaves++
		p.queued = false
		// The queue.state that follows the reply says whether the ticket
		// was already in a match (its matchId); the ping after it also lets
		// match.found arrive, for servers that do not say.
		for !p.sawCancelled() {
			if _, err := p.next(ctx); err != nil {
				return err
			}
		}
		if _, err := p.request(ctx, "ping", nil); err != nil {
			return err
		}
		if p.leftAfterFound() {
			// The match goes ahead with this player's slot and without its
			// match.ready; queueing again would leave one player too many.
			p.leftMatch = true
			return nil
		}
		return p.queueJoin(ctx)
	case "conflict": // the party exists already: too late to leave
		return nil
	default:
		return fmt.Errorf("queue.leave: %s", code)
	}
}

// sawCancelled reports whether a queue.state cancelled arrived for each leave.
func (p *player) sawCancelled() bool { return p.cancelled >= p.leaves }

// dropAndReconnect drops the socket while queued and reconnects at once
// with the same token, to the next URL of -url (the same one when there is
// one); the match then comes live or in welcome.state.
func (p *player) dropAndReconnect(ctx context.Context) error {
	if p.matchReadies > 0 {
		return nil
	}
	p.closeConn(closeDrop)
	p.reconnects++
	return p.dial(ctx, p.url+1, len(p.load.cfg.URLs), false)
}

func (p *player) ownLobby(ctx context.Context) error {
	if err := p.connectOnce(ctx); err != nil {
		return err
	}
	size := p.load.cfg.LobbySize
	if !p.inLobby {
		if p.published {
			// After a lost socket welcome has no lobby: the one whose code
			// the members have is gone.
			return errors.New("the lobby is gone after a reconnection")
		}
		r, err := p.request(ctx, "lobby.create", map[string]any{"queue": p.load.cfg.Queue, "maxMembers": size, "visibility": "private"})
		if err != nil {
			return err
		}
		if r.errorCode() != "" || r.Data == nil || r.Data.Lobby == nil {
			return fmt.Errorf("lobby.create: %s", r.errorCode())
		}
		p.seeLobby(r.Data.Lobby)
		p.inLobby = true
	}
	if !p.published {
		p.published = true
		p.group.publish(p.lobby.Code)
	}
	if !p.readyDone {
		if err := p.ready(ctx); err != nil {
			return err
		}
	}
	if p.queued {
		return nil
	}
	allReady := func() bool {
		if p.lobby == nil || len(p.lobby.Members) < size {
			return false
		}
		for _, m := range p.lobby.Members {
			if !m.Ready {
				return false
			}
		}
		return true
	}
	for !allReady() {
		if _, err := p.next(ctx); err != nil {
			return fmt.Errorf("waiting for the lobby's members: %w", err)
		}
	}
	return p.queueJoin(ctx)
}

func (p *player) joinLobby(ctx context.Context) error {
	if err := p.connectOnce(ctx); err != nil {
		return err
	}
	// Waiting for the owner's code, the socket is watched: a lost one is
	// replaced at once, as a client would.
	for waiting := true; waiting; {
		select {
		case <-p.group.ready:
			waiting = false
		case <-p.group.failed:
			p.stopWait = "lobby owner failed"
			return errors.New("the lobby's owner failed")
		case f, ok := <-p.conn.frames:
			if !ok {
				return p.socketEnded()
			}
			p.observe(f)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !p.inLobby {
		r, err := p.request(ctx, "lobby.join", map[string]any{"code": p.group.code})
		if err != nil {
			return err
		}
		if code := r.errorCode(); code != "" {
			return fmt.Errorf("lobby.join: %s", code)
		}
		p.inLobby = true
	}
	if !p.readyDone {
		if err := p.ready(ctx); err != nil {
			return err
		}
	}
	if !p.searchingNow {
		p.searchingNow = true
		p.load.searching.Add(1)
	}
	return nil
}

func (p *player) ready(ctx context.Context) error {
	r, err := p.request(ctx, "lobby.ready", map[string]any{"ready": true})
	if err != nil {
		return err
	}
	if code := r.errorCode(); code != "" {
		return fmt.Errorf("lobby.ready: %s", code)
	}
	p.readyDone = true
	return nil
}

func (p *player) queueJoin(ctx context.Context) error {
	_, err := p.queueJoinThen(ctx, "")
	return err
}

// queueJoinThen sends queue.join and, pipelined right behind it, the
// request then (if any), whose reply it returns.
func (p *player) queueJoinThen(ctx context.Context, then string) (*frame, error) {
	start := time.Now()
	if p.group != nil {
		p.group.setJoinAt(start)
	}
	var r *frame
	var thenID string
	for attempt := 0; ; attempt++ {
		joinID, err := p.send("queue.join", map[string]any{"queue": p.load.cfg.Queue})
		if err != nil {
			return nil, err
		}
		thenID = ""
		if then != "" {
			if thenID, err = p.send(then, nil); err != nil {
				return nil, err
			}
		}
		if r, err = p.awaitReply(ctx, joinID, "queue.join"); err != nil {
			return nil, err
		}
		if then != "" || !p.retryUnavailable(ctx, r, "queue.join", attempt) {
			break
		}
	}
	p.joinReplies = append(p.joinReplies, time.Since(start))
	if code := r.errorCode(); code != "" {
		return nil, fmt.Errorf("queue.join: %s", code)
	}
	p.joinAt = start
	p.queued = true
	if p.firstJoinAt.IsZero() {
		p.firstJoinAt = start
	}
	if !p.searchingNow {
		p.searchingNow = true
		p.load.searching.Add(1)
	}
	if then == "" {
		return nil, nil
	}
	return p.awaitReply(ctx, thenID, then)
}

// awaitMatch reads frames until match.ready arrives.
func (p *player) awaitMatch(ctx context.Context) error {
	for p.matchReadies == 0 {
		if p.stopWait != "" {
			return errors.New(p.stopWait)
		}
		if p.requeue {
			p.requeue = false
			return errRequeue
		}
		if _, err := p.next(ctx); err != nil {
			return fmt.Errorf("waiting for match.ready: %w", err)
		}
		if !p.lateCounted && p.leftAfterFound() {
			p.lateCounted = true
			p.load.lateLeaves.Add(1)
			p.load.lastLateAt.Store(time.Now().UnixNano())
		}
	}
	return nil
}

// hold keeps a matched player's socket open until every player finished,
// then makes sure, with a ping whose reply comes after anything the server
// sent before, that no duplicate match.ready is on its way. A socket lost
// meanwhile is replaced, so what a reconnection brings is checked too.
func (p *player) hold(ctx context.Context) {
holding:
	for {
		if p.conn == nil && p.recover(ctx) != nil {
			return
		}
		select {
		case f, ok := <-p.conn.frames:
			if !ok {
				var lost *lostSocket
				if !errors.As(p.socketEnded(), &lost) || ctx.Err() != nil || p.recover(ctx) != nil {
					return
				}
				continue
			}
			p.observe(f)
		case <-p.load.holdEnd:
			break holding
		case <-ctx.Done():
			break holding
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.load.cfg.FlushWait)
	defer cancel()
	for {
		_, err := p.request(fctx, "ping", nil)
		var lost *lostSocket
		if errors.As(err, &lost) && fctx.Err() == nil && p.recover(fctx) == nil {
			continue
		}
		if err != nil {
			p.load.check.error("final ping: " + errorKind(err))
		}
		return
	}
}

// preconnect is the connect phase of -preconnect: it connects the player,
// who then waits for the barrier. A player who cannot connect has failed,
// and so has its lobby.
func (p *player) preconnect(ctx context.Context) {
	err := p.connect(ctx)
	if err == nil {
		return
	}
	if p.group != nil {
		p.group.fail()
	}
	if ctx.Err() != nil {
		err = errors.New("not connected: run ended")
	}
	p.fail(err.Error())
	p.closeConn(closeGoodbye)
}

// waitTurn holds a preconnected player's socket until its turn to queue
// (at), reading what the server sends, and replaces the socket at once if
// it is lost meanwhile. It reports whether the player is to play: a player
// whose run ended first, or who could not reconnect, has failed.
func (p *player) waitTurn(ctx context.Context, at time.Time) bool {
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case f, ok := <-p.conn.frames:
			if ok {
				p.observe(f)
				continue
			}
			var lost *lostSocket
			if !errors.As(p.socketEnded(), &lost) {
				return true // closed for good: the scenario finds no socket and connects again
			}
			if err := p.recover(ctx); err != nil {
				if ctx.Err() != nil {
					err = errors.New("not started: run ended")
				} else if p.group != nil {
					p.group.fail()
				}
				p.fail(err.Error())
				return false
			}
		case <-ctx.Done():
			p.fail("not started: run ended")
			p.release()
			return false
		}
	}
}

// connectOnce connects the player unless -preconnect already did.
func (p *player) connectOnce(ctx context.Context) error {
	switch {
	case p.conn != nil:
		return nil
	case p.wasConnected:
		return p.recover(ctx)
	}
	return p.connect(ctx)
}

// connect connects the player for the first time: to its own URL (player
// i: URL i mod n) and, when that fails for a reason worth another try (a
// node full or restarting, Redis away: 503, 1011), to each next one of
// -url in turn, after a backoff, three times around (with one URL, three
// attempts): a client rides out a short outage, as after a Redis
// failover, and gives up on a long one.
func (p *player) connect(ctx context.Context) error {
	return p.dial(ctx, p.url, connectRounds*len(p.load.cfg.URLs), false)
}

// connectRounds is how many times around -url a first connection tries.
const connectRounds = 3

// recover replaces a lost socket: after a backoff with full jitter it
// connects to the next URL of -url (with -reconnect-to random, to any
// other URL, at random), and on failure to the one after, with a longer
// backoff each time, until one gives welcome or the run ends.
func (p *player) recover(ctx context.Context) error {
	from := p.url + 1
	if n := len(p.load.cfg.URLs); p.load.cfg.ReconnectTo == reconnectRandom && n > 2 {
		from += rand.N(n - 1) // any other URL first
	}
	return p.dial(ctx, from, 0, true)
}

// dial tries to connect to URL from, then the next ones, at most attempts
// times (0: until ctx ends or an attempt fails for good), waiting a
// backoff before every attempt but the first (and before the first too
// when wait is set).
func (p *player) dial(ctx context.Context, from, attempts int, wait bool) error {
	n := len(p.load.cfg.URLs)
	var err error
	for a := 0; attempts == 0 || a < attempts; a++ {
		if a > 0 || wait {
			if !waitUntil(ctx, time.Now().Add(backoff(a))) {
				if err == nil {
					err = ctx.Err()
				}
				return err
			}
		}
		err = p.connectTo(ctx, (from+a)%n)
		var ce *connectError
		if err == nil || !errors.As(err, &ce) || !ce.retry || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// connectTo gets a token (once, from the lobbyd at URL u unless signed
// here), dials URL u, and reads welcome. What welcome.state says the
// player still has (a match kept while it was away, its ticket, its lobby)
// is applied.
func (p *player) connectTo(ctx context.Context, u int) error {
	l := p.load
	select {
	case l.connecting <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.connecting }()
	failed := func(err error) error {
		l.urls[u].failures.Add(1)
		return err
	}
	start := time.Now()
	if p.token == "" {
		token, id, err := l.token(ctx, u, p.name, "")
		if err != nil {
			l.check.error("token")
			return failed(err)
		}
		p.token, p.id = token, id
	}
	ws, resp, err := l.dialer().DialContext(ctx, l.wsURL(u), http.Header{"Authorization": {"Bearer " + p.token}})
	if err != nil {
		kind := "connect: " + errorKind(err)
		retry := true
		if resp != nil {
			kind = fmt.Sprintf("connect: HTTP %d", resp.StatusCode)
			retry = retryableStatus(resp.StatusCode)
		}
		l.check.error(kind)
		return failed(&connectError{err: fmt.Errorf("%s: %w", kind, err), retry: retry})
	}
	ws.SetReadLimit(1 << 20)
	l.open.Add(1)
	c := &conn{url: u, ws: ws, frames: make(chan *frame, 64), done: make(chan struct{})}
	go c.read()
	p.conn = c
	p.url = u
	wctx, cancel := context.WithTimeout(ctx, welcomeWait)
	defer cancel()
	var welcome *frame
	select {
	case welcome = <-c.frames:
	case <-wctx.Done():
		l.check.error("no welcome")
		if ctx.Err() == nil {
			p.release()
		}
		return failed(&connectError{err: errors.New("no welcome frame"), retry: true})
	}
	if welcome == nil {
		kind, code := c.endKind()
		l.check.error(kind)
		p.release()
		return failed(&connectError{err: errors.New(kind), retry: reconnectable(code)})
	}
	if welcome.Type != "welcome" {
		l.check.violation("first frame not welcome", "player %s: first frame %q", p.name, welcome.Type)
		return failed(fmt.Errorf("first frame %q, not welcome", welcome.Type))
	}
	if p.id != "" && welcome.PlayerID != p.id {
		l.check.violation("welcome for another player", "player %s: welcome.playerId %q, token's %q", p.name, welcome.PlayerID, p.id)
	}
	p.connects = append(p.connects, time.Since(start))
	if !p.wasConnected {
		p.wasConnected = true
		l.connected.Add(1)
		l.urls[u].connected.Add(1)
	} else {
		l.urls[u].reconnects.Add(1)
		if !p.lostAt.IsZero() {
			p.backs = append(p.backs, reconnection{URL: u, Player: p.name, Lost: p.lostAt, Back: time.Now()})
			p.lostAt = time.Time{}
			l.away.Add(-1)
			l.back.Add(1)
		}
		p.applyWelcome(welcome)
	}
	if welcome.State != nil && welcome.State.Match != nil {
		p.gotMatch(welcome.State.Match)
	}
	return nil
}

// applyWelcome takes, on a reconnection, what welcome.state says the
// player still has: its ticket (then it does not queue again) and its
// lobby (then it does not create or join one again, nor say ready again
// once it did or the lobby is queued). Without them the player was not
// queued, or its ticket or lobby is gone, and the scenario does it again.
//
// What the server acknowledged and nothing ended must come back: a ticket
// whose queue.join was answered and that got no match.ready, no
// cancellation and no expiry, and a lobby place whose lobby was not
// removed. welcome leaving either out is counted (droppedTickets,
// droppedLobbies), and fails the run (see verdict): no reconnection, to the
// same node or another after a kill, may lose them.
func (p *player) applyWelcome(w *frame) {
	st := w.State
	if st == nil {
		st = &welcomeState{}
	}
	if st.Ticket != nil || st.Lobby != nil || st.Match != nil {
		p.resumed++
	}
	open := p.matchReadies == 0 && p.stopWait == ""
	queuedLobby := st.Lobby != nil && st.Lobby.Status == "queued"
	if open && p.queued && st.Ticket == nil && st.Match == nil && !queuedLobby {
		p.droppedTickets++
		p.load.check.error("ticket missing from welcome")
	}
	if open && p.group != nil && p.inLobby && st.Lobby == nil && st.Match == nil {
		p.droppedLobbies++
		p.load.check.error("lobby place missing from welcome")
	}
	p.queued = st.Ticket != nil && (st.Ticket.Status == "searching" || st.Ticket.Status == "matched")
	if p.group == nil {
		return
	}
	p.lobby, p.inLobby, p.readyDone = st.Lobby, st.Lobby != nil, false
	if lb := st.Lobby; lb != nil {
		if lb.Status == "queued" {
			p.readyDone = true
			if p.role == roleLobbyOwner {
				p.queued = true
			}
		}
		for _, m := range lb.Members {
			if m.PlayerID == p.id && m.Ready {
				p.readyDone = true
			}
		}
	}
}

// errRequeue ends a scenario whose ticket the server lost: resume runs it
// again, and it queues again.
var errRequeue = errors.New("the server lost the ticket: queue again")

// request sends one request and returns its reply.
func (p *player) request(ctx context.Context, typ string, fields map[string]any) (*frame, error) {
	for attempt := 0; ; attempt++ {
		id, err := p.send(typ, fields)
		if err != nil {
			return nil, err
		}
		r, err := p.awaitReply(ctx, id, typ)
		if err != nil || !p.retryUnavailable(ctx, r, typ, attempt) {
			return r, err
		}
	}
}

// retryUnavailable reports whether reply r says unavailable (Redis is
// away, as during a failover: docs/protocol.md asks clients to try again),
// and if so waits a backoff with full jitter before the caller sends the
// request again, counting it. It gives up when ctx ends.
func (p *player) retryUnavailable(ctx context.Context, r *frame, typ string, attempt int) bool {
	if r == nil || r.errorCode() != "unavailable" {
		return false
	}
	p.load.check.error("retried after unavailable: " + typ)
	select {
	case <-time.After(backoff(attempt)):
		return true
	case <-ctx.Done():
		return false
	}
}

// send writes one request without waiting for its reply, so requests can
// be pipelined; it returns the request's id.
func (p *player) send(typ string, fields map[string]any) (string, error) {
	c := p.conn
	c.seq++
	id := strconv.Itoa(c.seq)
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteJSON(msg); err != nil {
		kind := "write: " + errorKind(err)
		p.load.check.error(kind)
		// The socket is broken: read what the server sent before (a
		// match.ready written just before still counts), then reconnect.
		p.abandon()
		return "", fmt.Errorf("send %s: %w", typ, &lostSocket{kind: kind})
	}
	c.pending = append(c.pending, pendingRequest{id: id, typ: typ})
	return id, nil
}

// awaitReply reads frames until the reply to request id.
func (p *player) awaitReply(ctx context.Context, id, typ string) (*frame, error) {
	for {
		f, err := p.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for the reply to %s: %w", typ, err)
		}
		if f.Type == "reply" && f.ID != nil && *f.ID == id {
			return f, nil
		}
	}
}

// next returns the next frame of the socket, checked and applied.
func (p *player) next(ctx context.Context) (*frame, error) {
	var ownerFailed <-chan struct{}
	if p.role == roleLobbyMember && p.matchReadies == 0 {
		ownerFailed = p.group.failed
	}
	select {
	case <-ownerFailed:
		p.stopWait = "the lobby's owner failed"
		return nil, errors.New(p.stopWait)
	case f, ok := <-p.conn.frames:
		if !ok {
			return nil, p.socketEnded()
		}
		p.observe(f)
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// socketEnded accounts for a socket the server closed (or that broke) and
// returns why: a *lostSocket when the player reconnects after it.
func (p *player) socketEnded() error {
	c := p.conn
	kind, code := c.endKind()
	if !c.closing {
		p.load.check.error(kind)
	}
	p.release()
	if !c.closing && reconnectable(code) {
		p.socketLost(c, time.Now())
		return &lostSocket{kind: kind}
	}
	return errors.New(kind)
}

// endKind says why the socket's reads ended, once frames is closed: "close
// <code>" and the close code the server sent, or "socket: <error kind>"
// and 0 for a socket that broke.
func (c *conn) endKind() (kind string, code int) {
	var ce *websocket.CloseError
	if errors.As(c.readErr, &ce) {
		return fmt.Sprintf("close %d", ce.Code), ce.Code
	}
	return "socket: " + errorKind(c.readErr), 0
}

// abandon gives up a socket that broke under a write: it reads, for at
// most closeWait, what the server had sent before, then frees it.
func (p *player) abandon() {
	c := p.conn
	c.closing = true
	at := time.Now()
	// Once released, the reader is done: its endedAt may be read.
	defer func() { p.socketLost(c, at) }()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				p.release()
				return
			}
			p.observe(f)
		case <-timer.C:
			p.release()
			return
		}
	}
}

// observe checks one frame against the protocol and applies it.
func (p *player) observe(f *frame) {
	c, check := p.conn, p.load.check
	switch f.Type {
	case "reply":
		if f.ID == nil {
			check.violation(violationReplyOrder, "player %s: reply without id: %+v", p.name, f.Error)
			return
		}
		if len(c.pending) == 0 || c.pending[0].id != *f.ID {
			var want string
			if len(c.pending) > 0 {
				want = c.pending[0].id
			}
			check.violation(violationReplyOrder, "player %s: reply id %q, awaiting %q", p.name, *f.ID, want)
			return
		}
		req := c.pending[0]
		c.pending = c.pending[1:]
		if code := f.errorCode(); code != "" {
			check.error("reply " + req.typ + ": " + code)
		}
		if f.Data != nil && f.Data.Lobby != nil {
			p.seeLobby(f.Data.Lobby)
		}
	case "match.ready":
		p.gotMatch(f)
	case "match.found":
		p.foundIDs = append(p.foundIDs, f.MatchID)
	case "match.failed":
		check.error("match.failed " + f.Reason)
		if !f.Requeued {
			p.stopWait = "match.failed without requeue"
		}
	case "queue.state":
		if f.Ticket != nil && f.Ticket.Status == "cancelled" {
			p.cancelled++
			if f.Ticket.MatchID != "" {
				// lobbyd names the match a late leave left: exact, whatever
				// order match.found arrives in.
				p.leftMatchIDs = append(p.leftMatchIDs, f.Ticket.MatchID)
			}
		}
		if f.Ticket != nil && f.Ticket.Status == "cancelled" && f.Reason == "lost" {
			// The server lost the ticket (docs/protocol.md, queue.state):
			// whoever queued it queues again.
			p.ticketsLost++
			p.queued = false
			p.requeue = p.group == nil || p.role == roleLobbyOwner
		}
		if f.Ticket != nil && f.Ticket.Status == "expired" {
			check.error("ticket expired")
			p.stopWait = "ticket expired"
		}
	case "lobby.state":
		if f.Lobby != nil {
			p.seeLobby(f.Lobby)
		}
	case "lobby.removed":
		check.error("lobby.removed " + f.Reason)
		p.stopWait = "removed from the lobby"
	case "session.replaced":
		check.error("session.replaced")
	case "welcome":
		check.violation("welcome after the first frame", "player %s", p.name)
	case "!invalid-json":
		check.violation("frame not JSON", "player %s", p.name)
	case "":
		check.violation("frame without type", "player %s", p.name)
	case "lobby.chat":
	default:
		// Newer servers may send event types this generator does not know.
		check.error("unknown event " + f.Type)
	}
}

// seeLobby keeps the newest lobby snapshot (snapshots may arrive out of
// order; the highest version wins).
func (p *player) seeLobby(lb *lobbyObject) {
	if p.lobby == nil || lb.Version >= p.lobby.Version {
		p.lobby = lb
	}
}

// gotMatch records one match.ready, live or from welcome.state. The same
// match again on a later socket is a redelivery docs/protocol.md allows
// (welcome.state.match: "one written but whose acknowledgement did not
// reach Redis (then it may come again; key on matchId)"): it is counted,
// and checked against the other players' copies, but is no duplicate. A
// second match, or one match twice on one socket, is.
func (p *player) gotMatch(f *frame) {
	l := p.load
	if c := p.conn; c != nil {
		again := slices.Contains(c.matchIDs, f.MatchID)
		c.matchIDs = append(c.matchIDs, f.MatchID)
		if p.matchReadies > 0 && !again && slices.Contains(p.matchIDs, f.MatchID) {
			p.redelivered++
			l.check.matchReady(p.id, f)
			return
		}
	}
	p.matchReadies++
	p.matchIDs = append(p.matchIDs, f.MatchID)
	l.check.matchReady(p.id, f)
	if p.matchReadies > 1 {
		l.check.violation(violationDuplicate, "player %s (%s) got match.ready %d times: matches %v", p.name, p.id, p.matchReadies, p.matchIDs)
		return
	}
	p.matchAt = time.Now()
	joinAt := p.joinAt
	if p.role == roleLobbyMember {
		joinAt = p.group.queuedAt()
	}
	if !joinAt.IsZero() {
		p.matchLatency = p.matchAt.Sub(joinAt)
	}
	if p.failure != "" {
		// A failed player may still hold the socket briefly; its match is
		// counted so the totals stay true.
		l.failed.Add(-1)
		p.failure = ""
	}
	l.matched.Add(1)
	l.urls[p.url].matched.Add(1)
	l.lastMatchAt.Store(p.matchAt.UnixNano())
	p.finish()
}

// closeConn closes the socket with a close handshake, reading (and
// checking) whatever the server sent before it saw the close: a match.ready
// written just before a drop still counts. A no-op without a socket.
func (p *player) closeConn(code int) {
	c := p.conn
	if c == nil {
		return
	}
	c.closing = true
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(writeWait))
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
drain:
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				var ce *websocket.CloseError
				if errors.As(c.readErr, &ce) && len(c.pending) > 0 {
					p.load.check.violation(violationReplyMiss, "player %s: %d request(s) unanswered at close, first %s", p.name, len(c.pending), c.pending[0].typ)
				}
				break drain
			}
			p.observe(f)
		case <-timer.C:
			p.load.check.error("close handshake timed out")
			break drain
		}
	}
	p.release()
}

// release frees the socket and its reader.
func (p *player) release() {
	c := p.conn
	if c == nil {
		return
	}
	close(c.done)
	c.ws.Close()
	p.load.open.Add(-1)
	for range c.frames { // let the reader exit
	}
	p.conn = nil
}

// errorKind shortens an error to a countable kind.
func errorKind(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, websocket.ErrCloseSent):
		return "closed by the server" // a write after the server's close frame
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	for _, known := range []string{"connection refused", "connection reset", "broken pipe", "EOF", "too many open files", "cannot assign requested address"} {
		if strings.Contains(strings.ToLower(s), strings.ToLower(known)) {
			return known
		}
	}
	return "other"
}
