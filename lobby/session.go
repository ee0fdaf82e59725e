package lobby

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/lobbyd/lobbyd/internal/domain"
)

// RFC 6455 close codes the gateway sends.
const (
	closeNormal      = websocket.CloseNormalClosure
	closeGoingAway   = websocket.CloseGoingAway
	closeUnsupported = websocket.CloseUnsupportedData
	closeInvalidData = websocket.CloseInvalidFramePayloadData
	closePolicy      = websocket.ClosePolicyViolation
	closeTooBig      = websocket.CloseMessageTooBig
	closeInternal    = websocket.CloseInternalServerErr
)

// closeGrace is how long the writer waits for the client to answer a
// close frame before dropping the connection.
const closeGrace = time.Second

// After a refused frame the socket is drained (see finish) while the
// client keeps sending, each read allowing closeGrace for the next, up to
// maxDrainBytes and maxDrainTime in all.
const (
	maxDrainBytes = 16 << 20
	maxDrainTime  = 10 * time.Second
)

// outgoing is one frame queued for the writer.
type outgoing struct {
	frame []byte
	// matchID marks a match.ready: once written, the player's undelivered
	// copy is cleared.
	matchID string
	// ping marks a ping control frame (frame is empty).
	ping bool
}

// session is one player's connection. The read loop reads requests; it is
// the connection's one long-lived goroutine, and hands each request to a
// worker (see workers), waiting for it, so requests are still handled one
// at a time, in order. Frames for the player are queued, and a writer,
// run when there is something to send and gone once all is sent, is the
// only writer of the socket: an idle connection costs one goroutine, and
// everything queued meanwhile leaves in one write (see corkConn). Pings
// and the token's expiry are timers, not goroutines.
type session struct {
	g      *Gateway
	conn   *websocket.Conn
	id     Identity
	connID string

	closing  chan struct{} // closed by closeWith
	readDone chan struct{} // closed when the read loop has returned
	ctx      context.Context
	cancel   context.CancelFunc

	budget      *playerBudget // the player's rate budgets, shared by their connections here
	releaseAddr func()        // gives back the client address's connection slot

	closeOnce sync.Once
	closeCode int
	closeText string

	mu        sync.Mutex
	welcomed  bool
	early     []outgoing      // events that arrived before welcome was queued
	delivered map[string]bool // match ids pushed on this connection
	// watch is the ticket the player was told is searching, until it ends
	// (see tickets.go).
	watch *watch

	// wmu guards the writer's state: the frames queued for it and whether
	// one runs. It is taken after mu, never before.
	wmu     sync.Mutex
	queue   []outgoing
	writing bool // a writer runs; stays set once the last one (which closes the socket) started
	// inline: the request being handled claimed the writer's part and
	// writes its reply itself when it ends (see answer).
	inline bool
	// startWriter runs the writer: on a worker, or with inline on the
	// calling goroutine; tests without a socket replace it.
	startWriter func(inline bool)
	// room is signalled (without blocking) when a writer takes the queue.
	room chan struct{}
	// writerDone is closed by the writer that closed the socket.
	writerDone chan struct{}
	// acked is closed once the last match.ready written has been acked;
	// only the running writer touches it.
	acked <-chan struct{}

	pingTimer, expiry *time.Timer

	// followUps and afterDo hold what a request produced for after its
	// reply: events for this socket, and work such as broadcasts to a
	// lobby. Only the request being handled touches them (one at a time).
	followUps [][]byte
	afterDo   []func(context.Context)
}

// logger is the session's logger, built when a line is logged: a
// connection keeps none.
func (s *session) logger() *slog.Logger {
	return s.g.Logger.With("player", s.id.PlayerID, "conn", s.connID)
}

// afterReplyDo runs f (in the request's turn) once the current reply is queued.
func (s *session) afterReplyDo(f func(context.Context)) { s.afterDo = append(s.afterDo, f) }

// afterReply queues an event to be sent right after the current reply.
func (s *session) afterReply(frame []byte) { s.followUps = append(s.followUps, frame) }

func (s *session) presence() domain.Presence {
	return domain.Presence{NodeID: s.g.NodeID, ConnID: s.connID}
}

// closeWith asks the writer to close the socket with code (0: drop the
// connection without a close frame, the peer is gone). The first call wins.
func (s *session) closeWith(code int, text string) {
	s.closeOnce.Do(func() {
		s.closeCode, s.closeText = code, text
		if reason, ok := abuseReasons[code]; ok {
			s.g.metrics.abuseCloses.WithLabelValues(reason).Inc()
			if code == CloseSlowConsumer {
				s.g.metrics.slowConsumers.Inc()
			}
			s.logger().Warn("connection closed for abuse", "code", code, "reason", reason, "detail", text)
		}
		if code == closePolicy {
			s.budget.mu.Lock()
			s.budget.penalty = time.Now().Add(s.g.Limits.AbusePenalty)
			s.budget.mu.Unlock()
		}
		close(s.closing) // last: the writer may send the close frame at once
		s.kick()
	})
}

// stopsReading: the close codes the read loop sends when it stops on a
// frame it refused, with the client perhaps still sending.
var stopsReading = map[int]bool{closeUnsupported: true, closeInvalidData: true, closePolicy: true, closeTooBig: true}

// abuseReasons names the close codes that mean the client misbehaved: each
// such close is logged once and counted by reason.
var abuseReasons = map[int]string{
	closeUnsupported:  "binary_frame",
	closeInvalidData:  "invalid_utf8",
	closePolicy:       "flood",
	closeTooBig:       "frame_too_large",
	CloseSlowConsumer: "slow_consumer",
}

// replace tells the player this connection was superseded and closes it.
func (s *session) replace() {
	s.enqueue(outgoing{frame: sessionReplacedFrame})
	s.closeWith(CloseSessionReplaced, "session replaced by a newer connection")
}

// push queues a frame for the player. Before welcome it is held back, so
// welcome is always the first frame; a match.ready already pushed on this
// connection is dropped; a full queue means the client does not read fast
// enough and it is disconnected (4004).
func (s *session) push(o outgoing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.welcomed {
		s.early = append(s.early, o)
		return
	}
	s.pushLocked(o)
}

func (s *session) pushLocked(o outgoing) {
	if o.matchID != "" {
		if s.delivered[o.matchID] {
			return
		}
		s.markDelivered(o.matchID)
		s.watch = nil // the ticket ended in this match
	}
	s.followTicket(o.frame)
	if !s.enqueue(o) {
		s.closeWith(CloseSlowConsumer, "outgoing queue full: read faster")
	}
}

// enqueue queues o for the writer, starting one if none runs. It reports
// false, queueing nothing, when SendQueue frames wait already.
func (s *session) enqueue(o outgoing) bool { return s.enqueueAs(o, false) }

// enqueueAs is enqueue; with inline (a request's answer) a writer that
// must start is not started: the request writes when it ends (writeInline),
// which saves a hand-off to another goroutine per request.
func (s *session) enqueueAs(o outgoing, inline bool) bool {
	s.wmu.Lock()
	if len(s.queue) >= s.g.SendQueue {
		s.wmu.Unlock()
		return false
	}
	s.queue = append(s.queue, o)
	start := !s.writing
	s.writing = true
	if start && inline {
		s.inline, start = true, false
	}
	s.wmu.Unlock()
	if start {
		s.startWriter(false)
	}
	return true
}

// writeInline writes, on the request's goroutine, what the request queued
// if it claimed the writer's part (see enqueueAs).
func (s *session) writeInline() {
	s.wmu.Lock()
	own := s.inline
	s.inline = false
	s.wmu.Unlock()
	if own {
		s.startWriter(true)
	}
}

// kick starts a writer if none runs, to notice the socket is closing.
func (s *session) kick() {
	s.wmu.Lock()
	start := !s.writing
	s.writing = true
	s.wmu.Unlock()
	if start {
		s.startWriter(false)
	}
}

// markDelivered records that matchID's match.ready is on this connection
// (the map is made on the first: most connections never see one).
func (s *session) markDelivered(matchID string) {
	if s.delivered == nil {
		s.delivered = make(map[string]bool, 1)
	}
	s.delivered[matchID] = true
}

// welcome queues the welcome frame, then whatever arrived before it.
func (s *session) welcome(w welcomeFrame, pendingMatch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pendingMatch != "" {
		s.markDelivered(pendingMatch)
		s.watch = nil // the ticket ended in this match
	}
	s.welcomed = true
	if !s.enqueue(outgoing{frame: mustJSON(w), matchID: pendingMatch}) {
		s.closeWith(CloseSlowConsumer, "outgoing queue full")
	}
	for _, o := range s.early {
		s.pushLocked(o)
	}
	s.early = nil
}

// reply queues the reply to a request.
func (s *session) reply(id string, data any, err error) {
	r := replyFrame{Type: "reply", ID: id, OK: err == nil}
	if err != nil {
		r.Error = toError(err)
		if r.Error.Code == CodeInternal || r.Error.Code == CodeUnavailable {
			s.logger().Warn("request failed", "err", err)
		}
		s.g.metrics.requestErrors.WithLabelValues(r.Error.Code).Inc()
	} else if data == nil {
		r.Data = struct{}{}
	} else {
		r.Data = data
	}
	s.answer(mustJSON(r))
}

// answer queues a frame a request produced (its reply, or an event it
// caused). Unlike pushed events it waits for room: a client that
// pipelines requests faster than it reads replies is slowed down by TCP,
// not disconnected. Only a queue that stays full for WriteWait is a slow
// consumer.
func (s *session) answer(frame []byte) {
	o := outgoing{frame: frame}
	if s.enqueueAs(o, true) {
		return
	}
	// The queue may be full of what this request holds back for its own
	// write (see enqueueAs): only that write makes room for it.
	s.writeInline()
	if s.enqueueAs(o, true) {
		return
	}
	t := time.NewTimer(s.g.WriteWait)
	defer t.Stop()
	for {
		select {
		case <-s.room:
			if s.enqueue(o) {
				return
			}
		case <-s.closing:
			return
		case <-t.C:
			s.closeWith(CloseSlowConsumer, "outgoing queue full: read faster")
			return
		}
	}
}

// startTimers arms the ping timer and the token's expiry.
func (s *session) startTimers() {
	var ping func()
	ping = func() {
		select {
		case <-s.closing:
			return
		default:
		}
		if !s.enqueue(outgoing{ping: true}) {
			s.closeWith(CloseSlowConsumer, "outgoing queue full: read faster")
			return
		}
		s.pingTimer.Reset(s.g.PingInterval)
	}
	s.wmu.Lock() // ping reads pingTimer: set it before it can fire
	s.pingTimer = time.AfterFunc(s.g.PingInterval, ping)
	s.wmu.Unlock()
	s.expiry = time.AfterFunc(time.Until(s.id.Expires), func() {
		s.closeWith(CloseTokenExpired, "token expired: reconnect with a new token")
	})
}

// stopTimers stops them; serve, which started them, calls it.
func (s *session) stopTimers() {
	s.pingTimer.Stop()
	s.expiry.Stop()
}

// serve runs the connection to its end: attach, read until the socket
// closes, then detach. Only the reading runs on its goroutine: the rest
// runs on the gateway's workers (see workers), so the goroutine that
// waits on an idle socket keeps a small stack.
func (s *session) serve() {
	defer s.g.connEnded(s.budget)
	defer s.releaseAddr()
	defer s.cancel()
	s.startTimers()
	defer s.stopTimers()
	var err error
	s.g.workers.run(func() { err = s.attach() })
	if err != nil {
		if errors.Is(err, errShuttingDown) {
			s.closeWith(closeGoingAway, "server shutting down, reconnect")
		} else {
			s.logger().Warn("attach session", "err", err)
			s.closeWith(closeInternal, "could not load your state, reconnect")
		}
		// No welcome, no requests: wait for the close handshake only.
		s.awaitClose()
	} else {
		s.readLoop()
	}
	close(s.readDone)
	s.closeWith(0, "")
	<-s.writerDone
	s.g.workers.run(s.detach)
}

// attach makes the player reachable on this node and sends welcome with
// whatever they still have from before: a ticket, an undelivered match.
// Order matters: the hub and presence first, then the state read, so a
// result stored meanwhile is either in welcome or pushed (and deduplicated).
func (s *session) attach() error {
	if !s.g.hub.add(s) {
		return errShuttingDown
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.g.RequestTimeout)
	defer cancel()
	prev, found, err := s.g.Store.SetPresence(ctx, s.id.PlayerID, s.presence(), s.g.PresenceTTL)
	if err != nil {
		return err
	}
	if found && prev.NodeID != s.g.NodeID {
		msg := domain.NodeMessage{Replace: &domain.Replace{PlayerID: s.id.PlayerID, ConnID: prev.ConnID}}
		if err := s.g.Store.Publish(ctx, prev.NodeID, msg); err != nil {
			s.logger().Warn("ask other node to close replaced session", "node", prev.NodeID, "err", err)
		}
	}
	w := welcomeFrame{Type: "welcome", PlayerID: s.id.PlayerID, Protocol: ProtocolVersion, Node: s.g.NodeID}
	// One round trip for what the player may hold; more only for what they do.
	a, err := s.g.Store.Attach(ctx, s.id.PlayerID, s.g.presence.connectedGraceDeadline())
	if err != nil {
		return err
	}
	if a.TicketID != "" {
		t, err := s.g.Store.Ticket(ctx, a.TicketQueue, a.TicketID)
		switch {
		case err == nil && (t.Status == domain.TicketSearching || t.Status == domain.TicketMatched):
			obj := ticketObject(t)
			w.State.Ticket = &obj
			s.watchTicket(t)
		case errors.Is(err, domain.ErrNotFound):
			// The claim names a ticket with no record: lost while the
			// player was away (or the claim outlived it). The audit finds
			// out which and tells them (see tickets.go).
			s.watchTicket(domain.Ticket{ID: a.TicketID, Queue: a.TicketQueue, CreatedAt: time.Now()})
		case err != nil && !errors.Is(err, domain.ErrNotFound):
			return err
		}
	}
	if a.PendingMatchID != "" {
		w.State.Match = &a.PendingMatch
	}
	var l domain.Lobby
	if a.LobbyID != "" {
		l, err = s.g.Store.LobbyOf(ctx, s.id.PlayerID, a.LobbyID)
		switch {
		case err == nil:
			obj, err := s.g.lobbies.snapshot(ctx, l)
			if err != nil {
				return err
			}
			w.State.Lobby = &obj
		case !errors.Is(err, domain.ErrNotFound):
			return err
		}
	}
	s.welcome(w, a.PendingMatchID)
	if w.State.Lobby != nil {
		// The others see this member connected again.
		if err := s.g.lobbies.lobbyEvents(ctx, l); err != nil {
			s.logger().Warn("send lobby state", "lobby", l.ID, "err", err)
		}
	}
	return nil
}

var errShuttingDown = errors.New("gateway is shutting down")

// awaitClose reads and discards frames until the client answers the close
// frame or the connection ends; no request is served.
func (s *session) awaitClose() {
	s.conn.SetReadLimit(s.g.MaxFrameBytes)
	s.conn.SetReadDeadline(time.Now().Add(closeGrace + s.g.WriteWait))
	for {
		if _, _, err := s.conn.ReadMessage(); err != nil {
			return
		}
	}
}

// detach makes the player unreachable here, unless a newer connection has
// taken over already.
func (s *session) detach() {
	s.g.hub.remove(s)
	defer s.g.metrics.connections.Dec()
	ctx, cancel := context.WithTimeout(context.Background(), s.g.RequestTimeout)
	defer cancel()
	s.saveBudget(ctx)
	if s.g.hub.holds(ctx, s.id.PlayerID) {
		// A newer connection of the player is here: its presence may have
		// landed before ours; either way the player stays reachable.
		return
	}
	cleared, err := s.g.Store.ClearPresence(ctx, s.id.PlayerID, s.presence())
	if err != nil {
		s.logger().Warn("clear presence", "err", err)
		return
	}
	if !cleared {
		return // a newer connection holds the player
	}
	// The player keeps their lobby place and ticket for the grace period.
	if err := s.g.Store.SetGraceDeadlines(ctx, map[string]time.Time{s.id.PlayerID: time.Now().Add(s.g.Grace)}); err != nil {
		s.logger().Warn("start grace period", "err", err)
	}
	if l, err := s.g.Store.PlayerLobby(ctx, s.id.PlayerID); err == nil {
		if err := s.g.lobbies.lobbyEvents(ctx, l); err != nil {
			s.logger().Warn("send lobby state", "lobby", l.ID, "err", err)
		}
	}
}

// saveBudget carries what the player's budgets still owe over to Redis
// when their last connection on this node ends, so reconnecting to another
// node does not refill them. Best effort: a failure costs at most one
// fresh budget.
func (s *session) saveBudget(ctx context.Context) {
	b := s.budget
	b.mu.Lock()
	last := b.conns == 1
	b.mu.Unlock()
	if !last {
		return // a newer connection here goes on spending it
	}
	data, ttl := b.carryOver(s.g.Limits, time.Now())
	if data == nil {
		return // all refilled: nothing to carry
	}
	if err := s.g.Store.SavePlayerLimits(ctx, s.id.PlayerID, data, ttl); err != nil {
		s.logger().Warn("carry rate budgets over", "err", err)
	}
}

func (s *session) readLoop() {
	c := s.conn
	c.SetReadLimit(s.g.MaxFrameBytes)
	extend := func() { c.SetReadDeadline(time.Now().Add(s.g.PongWait)) }
	extend()
	c.SetPongHandler(func(string) error { extend(); return nil })
	// A client's ping costs a pong: it is charged like a request.
	c.SetPingHandler(func(msg string) error {
		if s.charge() == flooding {
			return errFlood
		}
		err := c.WriteControl(websocket.PongMessage, []byte(msg), time.Now().Add(s.g.WriteWait))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
		}
		return nil
	})
	for {
		kind, data, err := c.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// gorilla has already sent close 1009 to the client.
				s.g.metrics.requestErrors.WithLabelValues(CodeTooLarge).Inc()
				s.closeWith(closeTooBig, "frame too large")
			}
			return
		}
		extend()
		if kind != websocket.TextMessage {
			s.closeWith(closeUnsupported, "binary frames are not supported")
			return
		}
		if !s.takeFrame(data) {
			return
		}
	}
}

// takeFrame handles one text frame as read from the socket: it must be
// UTF-8 (else close 1007) and is charged to the player's budget before
// anything else is read of it. It reports false once the socket is being
// closed.
func (s *session) takeFrame(data []byte) bool {
	if !utf8.Valid(data) {
		s.closeWith(closeInvalidData, "text frames must be valid UTF-8")
		return false
	}
	switch s.charge() {
	case charged:
		s.g.workers.run(func() { s.handleFrame(data, false) })
	case overBudget:
		s.g.workers.run(func() { s.handleFrame(data, true) })
	case flooding:
		return false
	}
	return true
}

// errFlood stops the read loop of a connection closed with 1008.
var errFlood = errors.New("far past the rate limit")

// charge is what spending one frame from the player's budget came to.
type charge int

const (
	charged    charge = iota // within budget: handle it
	overBudget               // past it: answer rate_limited
	flooding                 // far past it: closed with 1008
)

// charge spends one request from the player's budget, whatever the frame
// holds. Past the budget a frame is refused; far past it (the rejections
// budget is spent too) the socket is closed with 1008.
func (s *session) charge() charge {
	c := s.budget.charge(s.g.Limits, time.Now())
	if c == flooding {
		s.closeWith(closePolicy, "far past the rate limit")
	}
	return c
}

// writeOut is the writer: it sends what is queued, batch by batch, and
// returns once the queue is empty, unless the socket is closing: then it
// finishes the connection and closes the socket, and no writer starts
// again. Run inline by a request, it leaves that to a writer of its own:
// finishing waits for the read loop, which waits for the request.
func (s *session) writeOut(inline bool) {
	var batch []outgoing
	for {
		s.wmu.Lock()
		batch, s.queue = s.queue, batch[:0]
		closing := isClosed(s.closing)
		if len(batch) == 0 && !closing {
			s.writing = false
			s.queue = nil // an idle connection keeps no buffer
			s.wmu.Unlock()
			return
		}
		s.wmu.Unlock()
		select {
		case s.room <- struct{}{}:
		default:
		}
		if closing && inline {
			s.wmu.Lock()
			s.queue = append(batch, s.queue...) // for the writer taking over
			s.wmu.Unlock()
			s.startWriter(false)
			return
		}
		if closing {
			s.finish(batch)
			s.awaitAck()
			s.conn.Close()
			close(s.writerDone)
			return
		}
		if err := s.writeBatch(batch); err != nil {
			s.closeWith(0, "")
		}
		clear(batch)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// writeBatch writes frames in order, in as few writes as it can. A
// match.ready ends a write: the player's stored copy is acked once it is
// written, and the next frame waits for that ack, so a client that saw any
// later frame (a reply) knows the match is no longer pending, as if the
// ack had been made inline; meanwhile the acks of many sessions share a
// pipeline. The wait is bounded by WriteWait: a Redis too slow to take the
// ack then costs at most a duplicate on a later connection, never this one.
func (s *session) writeBatch(batch []outgoing) error {
	c := s.conn
	cork, _ := c.NetConn().(*corkConn) // as Upgrade hijacked it (see corkingWriter)
	for len(batch) > 0 {
		s.awaitAck()
		cork.cork()
		deadline := time.Now().Add(s.g.WriteWait)
		c.SetWriteDeadline(deadline)
		var err error
		n := 0
		for _, o := range batch {
			n++
			if o.ping {
				err = c.WriteControl(websocket.PingMessage, nil, deadline)
			} else {
				err = c.WriteMessage(websocket.TextMessage, o.frame)
			}
			if err != nil || o.matchID != "" {
				break
			}
		}
		if uerr := cork.uncork(); err == nil {
			err = uerr
		}
		if err != nil {
			return err
		}
		if last := batch[n-1]; last.matchID != "" {
			s.acked = s.g.delivery.ack(s.ctx, s.id.PlayerID, last.matchID)
		}
		batch = batch[n:]
	}
	return nil
}

// awaitAck waits, up to WriteWait, for the ack of the last match.ready
// written.
func (s *session) awaitAck() {
	if s.acked == nil {
		return
	}
	t := time.NewTimer(s.g.WriteWait)
	select {
	case <-s.acked:
	case <-t.C:
	}
	t.Stop()
	s.acked = nil
}

// finish flushes what is queued (a session.replaced, the last replies),
// sends the close frame and waits briefly for the client to answer it.
func (s *session) finish(batch []outgoing) {
	if s.closeCode == 0 {
		return
	}
	if s.closeCode != CloseSlowConsumer && len(batch) > 0 {
		if s.writeBatch(batch) != nil {
			return
		}
	}
	if s.closeCode != closeTooBig { // gorilla sent that one itself
		msg := websocket.FormatCloseMessage(s.closeCode, s.closeText)
		if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.g.WriteWait)); err != nil {
			return
		}
	}
	// Wait for the read loop: it ends at once on a frame it refused (too
	// large, binary, invalid UTF-8, a flood), else when the client answers
	// the close frame.
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-s.readDone:
	case <-grace.C:
		return
	}
	if stopsReading[s.closeCode] {
		// Nobody reads the socket now. Drain it, so the client can finish
		// sending and read the close frame; closing under unread data
		// resets the connection, which fails the client's write (a browser
		// then reports 1006 instead of our code).
		drain(s.conn.NetConn())
	}
}

// drain reads and discards what the client still sends, for as long as it
// keeps sending (closeGrace between reads), up to maxDrainBytes and
// maxDrainTime: a large frame over a slow link still ends in our close
// frame, and a client that never stops costs a bounded amount.
func drain(nc net.Conn) {
	end := time.Now().Add(maxDrainTime)
	r := &io.LimitedReader{R: nc, N: maxDrainBytes}
	buf := make([]byte, 32<<10)
	for r.N > 0 {
		deadline := time.Now().Add(closeGrace)
		if deadline.After(end) {
			deadline = end
		}
		nc.SetReadDeadline(deadline)
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// handleFrame parses one client frame and answers it with exactly one reply.
// A frame over the player's budget is answered rate_limited once its id is
// read, valid or not.
func (s *session) handleFrame(data []byte, overBudget bool) {
	defer s.writeInline()
	typ, id, problem := parseEnvelope(data)
	switch {
	case overBudget:
		s.reply(id, nil, errorf(CodeRateLimited, "too many requests, slow down"))
		return
	case problem != nil:
		s.reply(id, nil, problem)
		return
	}
	h, ok := requestHandlers[typ]
	if !ok {
		s.reply(id, nil, errorf(CodeUnknownType, "unknown request type "+truncate(typ, 64)))
		return
	}
	s.g.metrics.requests.WithLabelValues(typ).Inc()
	ctx, cancel := context.WithTimeout(s.ctx, s.g.RequestTimeout)
	defer cancel()
	out, err := h(ctx, s, data)
	s.reply(id, out, err)
	for _, f := range s.followUps {
		s.answer(f)
	}
	s.followUps = s.followUps[:0]
	s.writeInline() // the reply leaves before the work that comes after it
	for _, f := range s.afterDo {
		f(ctx)
	}
	s.afterDo = s.afterDo[:0]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
