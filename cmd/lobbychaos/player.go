package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/lobbyd/lobbyd/internal/wait"
	"github.com/lobbyd/lobbyd/internal/wsread"
)

const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
	// welcomeWait bounds the wait for welcome after the upgrade.
	welcomeWait = 10 * time.Second
	writeWait   = 5 * time.Second
	// pauseMax bounds the pause between a match.ready and the next
	// queue.join, so rounds interleave.
	pauseMax = 1500 * time.Millisecond
)

// phase is where a player is in its round.
type phase int

const (
	phaseIdle      phase = iota // between rounds: queue.join at nextJoinAt
	phaseJoining                // queue.join sent on this connection, no reply yet
	phaseSearching              // holds a ticket, waits for match.ready
)

// frame is a server frame with the fields the players read.
type frame struct {
	Type  string  `json:"type"`
	ID    *string `json:"id"`
	OK    bool    `json:"ok"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
	Data *struct {
		Ticket *ticketObject `json:"ticket"`
	} `json:"data"`
	Ticket *ticketObject `json:"ticket"`
	State  *struct {
		Ticket *ticketObject `json:"ticket"`
		Match  *frame        `json:"match"`
	} `json:"state"`

	MatchID           string `json:"matchId"`
	PartyID           string `json:"partyId"`
	InvitationID      string `json:"invitationId"`
	NetworkDescriptor string `json:"networkDescriptor"`
	Players           []struct {
		PlayerID string `json:"playerId"`
	} `json:"players"`
	Requeued bool `json:"requeued"`
}

type ticketObject struct {
	TicketID string `json:"ticketId"`
	Status   string `json:"status"`
	MatchID  string `json:"matchId"`
}

func (f *frame) errorCode() string {
	if f.OK {
		return ""
	}
	if f.Error == nil {
		return "no_error_code"
	}
	return f.Error.Code
}

// playEnv is what every player of a run shares.
type playEnv struct {
	nodeURLs  []string
	jwtSecret string
	grace     time.Duration
	// stop is closed when the play phase ends: players then finish the
	// ticket they hold and queue no more.
	stop <-chan struct{}
	// lastReady is the time of the latest match.ready any player got
	// (unix nanoseconds), for the drain to see the run settle.
	lastReady atomic.Int64
}

// player is one simulated player. Its fields belong to the goroutine
// running play; rec is read by the checker once play returned.
type player struct {
	env   *playEnv
	rng   *rand.Rand
	home  int
	token string
	rec   playerRecord

	conn       *wsConn
	phase      phase
	joinID     string
	nextJoinAt time.Time
	joinErrors int // consecutive failed queue.joins, for back-off

	// busy is 1 while the player holds (or is getting) a ticket, 2 once
	// that ticket is in a match still allocating; read by the drain.
	busy atomic.Int32
}

func newPlayer(env *playEnv, n int, seed uint64) *player {
	id := fmt.Sprintf("chaos-%04d-%s", n, randomHex(4))
	p := &player{env: env, rng: rand.New(rand.NewPCG(seed, uint64(n))), home: n % len(env.nodeURLs)}
	p.rec = playerRecord{ID: id, Errors: map[string]int{}}
	claims := jwt.MapClaims{"sub": id, "name": fmt.Sprintf("chaos %d", n), "pfEntity": id, "exp": time.Now().Add(24 * time.Hour).Unix()}
	p.token, _ = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(env.jwtSecret))
	return p
}

// wsConn is one socket: a goroutine reads frames into frames (closed when
// the socket ends); only the player's goroutine writes.
type wsConn struct {
	ws      *websocket.Conn
	node    int
	frames  chan *frame
	done    chan struct{}
	readErr error // why the socket ended; read after frames is closed
	seq     int
}

func (c *wsConn) read() {
	defer close(c.frames) // after readErr is set: it is read once frames is closed
	c.readErr = wsread.Loop(c.ws, c.frames, c.done, func() *frame { return &frame{Type: "!invalid-json"} })
}

// close ends the socket (with code, when the socket still works) and waits
// for the reader to exit.
func (c *wsConn) close(code int) {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	close(c.done)
	c.ws.Close()
	for range c.frames {
	}
}

// play runs rounds until the play phase ends (the ticket held then is
// played out) or ctx ends, then closes the socket with 1000: the player
// leaves.
func (p *player) play(ctx context.Context) {
	defer func() {
		if p.conn != nil {
			p.conn.close(websocket.CloseNormalClosure)
			p.conn = nil
		}
		p.busy.Store(0)
	}()
	for {
		if ctx.Err() != nil {
			p.endRun()
			return
		}
		if p.conn == nil {
			if !p.reconnect(ctx) {
				continue // ctx ended
			}
		}
		if p.phase == phaseIdle {
			select {
			case <-p.env.stop:
				if r := p.rec.currentRound(); r != nil && r.MatchID == "" {
					p.rec.End = endTicketEnded
				}
				return
			default:
			}
			if !time.Now().Before(p.nextJoinAt) {
				p.sendJoin()
				continue
			}
		}
		p.await(ctx)
	}
}

// await waits for the next frame (applying it), the time of the next
// queue.join, the end of the play phase, or the end of ctx.
func (p *player) await(ctx context.Context) {
	var wake <-chan time.Time
	var stop <-chan struct{}
	if p.phase == phaseIdle {
		t := time.NewTimer(time.Until(p.nextJoinAt))
		defer t.Stop()
		wake, stop = t.C, p.env.stop
	}
	select {
	case f, ok := <-p.conn.frames:
		if !ok {
			p.socketEnded()
			return
		}
		p.handle(f)
	case <-wake:
	case <-stop:
	case <-ctx.Done():
	}
}

// endRun records why the player is not idle when the run ends.
func (p *player) endRun() {
	switch {
	case p.phase == phaseIdle:
	case p.busy.Load() == 2:
		p.rec.End = endAllocating
	default:
		p.rec.End = endSearching
	}
}

// sendJoin starts a round (or retries its queue.join).
func (p *player) sendJoin() {
	if p.rec.currentRound() == nil || p.rec.currentRound().MatchID != "" {
		p.rec.Rounds = append(p.rec.Rounds, roundRecord{N: len(p.rec.Rounds) + 1, JoinedAt: time.Now()})
	}
	p.busy.Store(1)
	id, err := p.send("queue.join", map[string]any{"queue": "default"})
	if err != nil {
		return // the reader sees the socket end
	}
	p.joinID, p.phase = id, phaseJoining
}

func (p *player) send(typ string, fields map[string]any) (string, error) {
	c := p.conn
	c.seq++
	id := strconv.Itoa(c.seq)
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return id, c.ws.WriteJSON(msg)
}

// handle applies one frame.
func (p *player) handle(f *frame) {
	now := time.Now()
	switch f.Type {
	case "reply":
		if p.phase != phaseJoining || f.ID == nil || *f.ID != p.joinID {
			return
		}
		if code := f.errorCode(); code != "" {
			p.rec.noteError(now, "queue.join "+code)
			p.phase = phaseIdle
			p.joinErrors++
			p.nextJoinAt = now.Add(p.backoff(p.joinErrors))
			if code == "conflict" {
				// The server holds a ticket this player lost track of:
				// a new connection's welcome says which.
				p.conn.close(4000)
				p.conn = nil
				p.rec.Disconnects = append(p.rec.Disconnects, disconnect{At: now, Node: -1, Code: 4000, Reason: "resync after conflict"})
			}
			return
		}
		p.joinErrors = 0
		p.phase = phaseSearching
		if r := p.rec.currentRound(); r != nil && f.Data != nil && f.Data.Ticket != nil {
			r.TicketID = f.Data.Ticket.TicketID
		}
	case "match.found":
		p.found(f.MatchID)
	case "queue.state":
		if f.Ticket == nil {
			return
		}
		switch f.Ticket.Status {
		case "matched":
			p.found(f.Ticket.MatchID)
		case "cancelled", "expired":
			// This player never leaves a queue: its ticket ended without
			// it asking (the grace period ran out, or it expired).
			p.rec.noteError(now, "ticket "+f.Ticket.Status)
			p.rec.Ended = append(p.rec.Ended, endedTicket{TicketID: f.Ticket.TicketID, At: now, Why: f.Ticket.Status})
			if p.phase == phaseSearching {
				p.toIdle(now, 0)
			}
		}
	case "match.failed":
		p.rec.noteError(now, "match.failed")
		if r := p.rec.currentRound(); r != nil {
			r.Failed++
		}
		p.busy.Store(1)
		if !f.Requeued && p.phase == phaseSearching {
			p.rec.Ended = append(p.rec.Ended, endedTicket{At: now, Why: "match.failed without requeue"})
			p.toIdle(now, 0)
		}
	case "match.ready":
		p.deliver(f, viaLive, now)
	case "session.replaced":
		p.rec.noteError(now, "session.replaced")
	case "welcome":
		p.rec.noteError(now, "welcome after the first frame")
	}
}

// found notes a match.found (or queue.state matched) for the round.
func (p *player) found(matchID string) {
	r := p.rec.currentRound()
	if r == nil || matchID == "" || p.phase == phaseIdle {
		return
	}
	if len(r.FoundIDs) == 0 || r.FoundIDs[len(r.FoundIDs)-1] != matchID {
		r.FoundIDs = append(r.FoundIDs, matchID)
	}
	p.busy.Store(2)
}

// deliver records one match.ready; the first one for the round's ticket
// ends the round.
func (p *player) deliver(f *frame, via string, now time.Time) {
	d := delivery{MatchID: f.MatchID, PartyID: f.PartyID, InvitationID: f.InvitationID, Descriptor: f.NetworkDescriptor,
		Via: via, Conn: p.rec.Connections, At: now}
	for _, pl := range f.Players {
		d.Players = append(d.Players, pl.PlayerID)
	}
	r := p.rec.currentRound()
	if p.phase != phaseIdle && r != nil && r.MatchID == "" && p.rec.roundOf(f.MatchID) == 0 {
		r.MatchID, r.ReadyAt = f.MatchID, now
		d.Round = r.N
		p.toIdle(now, time.Duration(p.rng.Int64N(int64(pauseMax))))
		p.env.lastReady.Store(now.UnixNano())
	} else {
		d.Round = p.rec.roundOf(f.MatchID)
	}
	p.rec.Deliveries = append(p.rec.Deliveries, d)
}

// toIdle ends the round's ticket; the next queue.join goes after pause.
func (p *player) toIdle(now time.Time, pause time.Duration) {
	p.phase = phaseIdle
	p.nextJoinAt = now.Add(pause)
	p.busy.Store(0)
}

// socketEnded records a socket the server closed or that broke.
func (p *player) socketEnded() {
	c := p.conn
	p.conn = nil
	d := disconnect{At: time.Now(), Node: c.node, Code: websocket.CloseAbnormalClosure, Reason: errorKind(c.readErr)}
	var ce *websocket.CloseError
	if errors.As(c.readErr, &ce) {
		d.Code = ce.Code
	}
	c.close(websocket.CloseNormalClosure)
	p.rec.Disconnects = append(p.rec.Disconnects, d)
}

// reconnect dials until a welcome arrives, with exponential back-off and
// full jitter, trying the player's home node first and then the others in
// turn (what a load balancer in front of the nodes would do). It returns
// false if ctx ended first.
func (p *player) reconnect(ctx context.Context) bool {
	var last *disconnect
	if n := len(p.rec.Disconnects); n > 0 && p.rec.Disconnects[n-1].ReconnectedAt.IsZero() {
		last = &p.rec.Disconnects[n-1]
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			_ = wait.Sleep(ctx, p.backoff(attempt))
		}
		if ctx.Err() != nil {
			return false
		}
		node := (p.home + attempt) % len(p.env.nodeURLs)
		welcome, err := p.dial(ctx, node)
		if err != nil {
			p.rec.noteError(time.Now(), "connect: "+err.Error())
			if last != nil {
				last.Attempts++
			}
			continue
		}
		now := time.Now()
		p.rec.Connections++
		if last != nil {
			last.ReconnectedAt = now
		}
		p.applyWelcome(welcome, now, last)
		return true
	}
}

// backoff is the wait before retry n (n ≥ 1): exponential, capped, with
// full jitter.
func (p *player) backoff(n int) time.Duration {
	d := backoffMax
	if n < 8 {
		d = min(backoffMax, backoffBase<<(n-1))
	}
	return time.Duration(p.rng.Int64N(int64(d)) + 1)
}

// dial opens a socket to node and reads welcome. Its error is a short kind
// ("HTTP 503", "close 1011", "connection refused").
func (p *player) dial(ctx context.Context, node int) (*frame, error) {
	d := &websocket.Dialer{
		NetDialContext:   (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		HandshakeTimeout: 5 * time.Second,
		ReadBufferSize:   2048, WriteBufferSize: 1024,
	}
	ws, resp, err := d.DialContext(ctx, p.env.nodeURLs[node], http.Header{"Authorization": {"Bearer " + p.token}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil, errors.New(errorKind(err))
	}
	c := &wsConn{ws: ws, node: node, frames: make(chan *frame, 64), done: make(chan struct{})}
	go c.read()
	timer := time.NewTimer(welcomeWait)
	defer timer.Stop()
	select {
	case f, ok := <-c.frames:
		if !ok {
			err := c.readErr
			c.close(websocket.CloseNormalClosure)
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return nil, fmt.Errorf("close %d", ce.Code)
			}
			return nil, errors.New(errorKind(err))
		}
		if f.Type != "welcome" {
			c.close(websocket.CloseNormalClosure)
			return nil, fmt.Errorf("first frame %q", f.Type)
		}
		p.conn = c
		return f, nil
	case <-timer.C:
		c.close(websocket.CloseNormalClosure)
		return nil, errors.New("no welcome")
	case <-ctx.Done():
		c.close(websocket.CloseNormalClosure)
		return nil, ctx.Err()
	}
}

// applyWelcome takes what the server kept for the player: an undelivered
// match, the ticket. A player who held a ticket and finds neither lost it.
func (p *player) applyWelcome(w *frame, now time.Time, gap *disconnect) {
	if p.phase == phaseJoining {
		// The queue.join went out on the old socket; welcome says whether
		// it took.
		p.phase = phaseSearching
	}
	if w.State != nil && w.State.Match != nil {
		p.deliver(w.State.Match, viaWelcome, now)
	}
	if p.phase != phaseSearching {
		return
	}
	if w.State != nil && w.State.Ticket != nil {
		t := w.State.Ticket
		if r := p.rec.currentRound(); r != nil {
			if r.TicketID == "" {
				r.TicketID = t.TicketID
			}
		}
		if t.Status == "matched" {
			p.found(t.MatchID)
		}
		return
	}
	r := p.rec.currentRound()
	if r != nil && r.TicketID != "" {
		v := endedTicket{TicketID: r.TicketID, At: now, Why: "vanished"}
		if gap != nil {
			v.Disconnected = now.Sub(gap.At)
		}
		p.rec.Ended = append(p.rec.Ended, v)
		r.TicketID = "" // the round goes on with a new ticket
	}
	// Either the join never took, or the ticket is gone: join again now.
	p.toIdle(now, 0)
	p.busy.Store(1)
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
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	for _, known := range []string{"connection refused", "connection reset", "broken pipe", "unexpected EOF", "EOF"} {
		if strings.Contains(s, known) {
			return known
		}
	}
	return "other"
}
