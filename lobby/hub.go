package lobby

import (
	"context"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// hub owns the node's map of connected players. One goroutine (run) holds
// the map; sessions, the node channel and the presence refresher talk to it
// over channels, as in gorilla/websocket's chat example.
type hub struct {
	register   chan *session
	unregister chan *session
	inbound    chan domain.NodeMessage
	snapshot   chan chan map[string]domain.Presence
	list       chan chan []*session
	lookup     chan lookup
	closes     chan closeRequest
	done       chan struct{} // closed when run has returned
	// drain starts the node's drain (a node message asked for it).
	drain func(period time.Duration)

	sessions map[string]*session
}

func newHub() *hub {
	return &hub{
		register:   make(chan *session),
		unregister: make(chan *session),
		inbound:    make(chan domain.NodeMessage, 256),
		snapshot:   make(chan chan map[string]domain.Presence),
		list:       make(chan chan []*session),
		lookup:     make(chan lookup),
		closes:     make(chan closeRequest),
		done:       make(chan struct{}),
		sessions:   make(map[string]*session),
	}
}

// run serves the hub until ctx is done, then tells every socket that the
// server is going away (close 1001, reconnect elsewhere) and returns.
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	for {
		select {
		case <-ctx.Done():
			for _, s := range h.sessions {
				s.closeWith(closeGoingAway, "server shutting down, reconnect")
			}
			return
		case s := <-h.register:
			if old := h.sessions[s.id.PlayerID]; old != nil {
				old.replace()
			}
			h.sessions[s.id.PlayerID] = s
		case s := <-h.unregister:
			if h.sessions[s.id.PlayerID] == s {
				delete(h.sessions, s.id.PlayerID)
			}
		case msg := <-h.inbound:
			h.deliver(msg)
		case q := <-h.lookup:
			q.reply <- h.sessions[q.player] != nil
		case r := <-h.closes:
			r.reply <- h.close(r)
		case reply := <-h.list:
			out := make([]*session, 0, len(h.sessions))
			for _, s := range h.sessions {
				out = append(out, s)
			}
			reply <- out
		case reply := <-h.snapshot:
			m := make(map[string]domain.Presence, len(h.sessions))
			for p, s := range h.sessions {
				m[p] = s.presence()
			}
			reply <- m
		}
	}
}

func (h *hub) deliver(msg domain.NodeMessage) {
	for _, e := range msg.Events {
		for _, p := range e.To {
			if s := h.sessions[p]; s != nil {
				s.push(outgoing{frame: e.Event, matchID: e.MatchID})
			}
		}
	}
	if r := msg.Replace; r != nil {
		if s := h.sessions[r.PlayerID]; s != nil && s.connID == r.ConnID {
			s.replace()
		}
	}
	if d := msg.Drain; d != nil && h.drain != nil {
		h.drain(time.Duration(d.PeriodMs) * time.Millisecond)
	}
	if d := msg.Disconnect; d != nil {
		h.close(closeRequest{player: d.PlayerID, code: CloseByOperator, text: "disconnected by an operator"})
	}
}

// closeRequest asks the hub to close the named player's connection, or,
// with no player, a share of the connections that are not closing yet: one
// in every steps (rounded up), for a drain that has that many steps left.
type closeRequest struct {
	player string
	steps  int
	code   int
	text   string
	reply  chan int // how many connections are left open
}

// close closes what r asks for and returns how many connections are left
// open (not closing) on this node.
func (h *hub) close(r closeRequest) (open int) {
	if r.player != "" {
		if s := h.sessions[r.player]; s != nil {
			s.closeWith(r.code, r.text)
		}
	}
	var live []*session
	for _, s := range h.sessions {
		if !isClosed(s.closing) {
			live = append(live, s)
		}
	}
	if r.steps <= 0 {
		return len(live)
	}
	n := (len(live) + r.steps - 1) / r.steps
	for _, s := range live[:n] {
		s.closeWith(r.code, r.text)
	}
	return len(live) - n
}

// closeConns hands r to the hub and returns the connections left open, or
// -1 if the hub has stopped.
func (h *hub) closeConns(ctx context.Context, r closeRequest) int {
	r.reply = make(chan int, 1)
	select {
	case h.closes <- r:
		return <-r.reply
	case <-h.done:
	case <-ctx.Done():
	}
	return -1
}

// add registers s, replacing any older session of the same player on this
// node. It reports false if the hub has stopped.
func (h *hub) add(s *session) bool {
	select {
	case h.register <- s:
		return true
	case <-h.done:
		return false
	}
}

// remove unregisters s if it is still the player's session.
func (h *hub) remove(s *session) {
	select {
	case h.unregister <- s:
	case <-h.done:
	}
}

// send hands a node message to the hub for delivery to local sockets.
func (h *hub) send(ctx context.Context, msg domain.NodeMessage) {
	select {
	case h.inbound <- msg:
	case <-h.done:
	case <-ctx.Done():
	}
}

type lookup struct {
	player string
	reply  chan bool
}

// holds reports whether the hub has a session for the player.
func (h *hub) holds(ctx context.Context, player string) bool {
	q := lookup{player: player, reply: make(chan bool, 1)}
	select {
	case h.lookup <- q:
		return <-q.reply
	case <-h.done:
	case <-ctx.Done():
	}
	return false
}

// all lists the node's sessions (nil once the hub stopped or ctx ended).
func (h *hub) all(ctx context.Context) []*session {
	reply := make(chan []*session, 1)
	select {
	case h.list <- reply:
		return <-reply
	case <-h.done:
	case <-ctx.Done():
	}
	return nil
}

// presences lists the connections this node holds, for presence refresh.
func (h *hub) presences(ctx context.Context) map[string]domain.Presence {
	reply := make(chan map[string]domain.Presence, 1)
	select {
	case h.snapshot <- reply:
		return <-reply
	case <-h.done:
	case <-ctx.Done():
	}
	return nil
}
