package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// Socket settings, as lobbyd's defaults, so the yardstick does the same
// per-connection work.
const (
	maxFrameBytes = 4096
	sendQueue     = 64
	pingInterval  = 25 * time.Second
	pongWait      = 60 * time.Second
	writeWait     = 10 * time.Second
)

// queueName is the one queue echoref lists; any name is accepted in
// queue.join and echoed back.
const queueName = "default"

// server is echoref's shared state: the counter that groups joiners into
// matches, and what shutdown needs to close every socket.
type server struct {
	maxUsers int
	secret   []byte // signs dev tokens; the socket never checks them
	upgrader websocket.Upgrader
	// joins counts queue.join requests over all sockets: the n-th (from 0)
	// is in match n / maxUsers.
	joins   atomic.Uint64
	tickets atomic.Uint64

	mu       sync.Mutex
	stopping bool
	quit     chan struct{} // closed at shutdown: every socket closes with 1001
	loops    sync.WaitGroup
}

func newServer(maxUsers int, secret []byte) *server {
	return &server{
		maxUsers: maxUsers,
		secret:   secret,
		quit:     make(chan struct{}),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     func(*http.Request) bool { return true },
		},
	}
}

// routes lists every route echoref serves.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", s.handleSocket())
	mux.Handle("POST /v1/dev/token", s.handleDevToken())
	mux.Handle("GET /v1/queues", s.handleQueues())
	return mux
}

func (s *server) handleQueues() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"queues": []map[string]any{{"name": queueName, "maxUsers": s.maxUsers}}})
	})
}

// handleDevToken returns a token shaped like lobbyd's development tokens:
// an HS256 JWT with sub, name, iat and exp.
func (s *server) handleDevToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name     string `json:"name"`
			PlayerID string `json:"playerId"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": errorObject{"bad_request", `body must be JSON like {"name":"alice"}`}})
			return
		}
		if req.PlayerID == "" {
			req.PlayerID = uuid.NewString()
		}
		now := time.Now()
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": req.PlayerID, "name": req.Name, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		}).SignedString(s.secret)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": errorObject{"internal", "could not sign token"}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": token, "playerId": req.PlayerID})
	})
}

// handleSocket upgrades, queues welcome, starts the socket's read and write
// loops and returns, so net/http's buffers are released.
func (s *server) handleSocket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = strings.TrimSpace(h)
		}
		if token == "" {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": errorObject{"unauthorized", "a token is required"}})
			return
		}
		playerID, name := identify(token)
		ws, err := s.upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader answered already
		}
		c := &conn{
			s: s, ws: ws, player: playerObject{PlayerID: playerID, Name: name},
			send: make(chan []byte, sendQueue), readDone: make(chan struct{}), writeDone: make(chan struct{}),
		}
		c.send <- mustJSON(welcomeFrame{Type: "welcome", PlayerID: playerID, Protocol: 1, Node: "echoref", State: struct{}{}})
		if !s.start(c) {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(writeWait))
			ws.Close()
		}
	})
}

// identify reads the player from a token without checking it: a JWT's sub
// and name, or else the token itself as the player id.
func identify(token string) (playerID, name string) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err == nil {
		sub, _ := claims["sub"].(string)
		name, _ := claims["name"].(string)
		if sub != "" {
			if name == "" {
				name = sub
			}
			return sub, name
		}
	}
	return token, token
}

// start runs the read and write loops of c unless shutdown has begun, and
// reports whether it did.
func (s *server) start(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.loops.Add(2)
	go func() { defer s.loops.Done(); c.readLoop() }()
	go func() { defer s.loops.Done(); c.writeLoop() }()
	return true
}

// closeSockets refuses new sockets, closes every open one with 1001 and
// waits until all their loops have returned. It may be called more than
// once.
func (s *server) closeSockets() {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.quit)
	}
	s.mu.Unlock()
	s.loops.Wait()
}

// conn is one socket. Only the write loop writes to ws (besides gorilla's
// own answers to pings and closes); the read loop owns ticket.
type conn struct {
	s         *server
	ws        *websocket.Conn
	player    playerObject
	send      chan []byte
	readDone  chan struct{}
	writeDone chan struct{}
	ticket    *ticketObject // the last queue.join's ticket
}

// readLoop answers each frame read with three frames, until the socket
// ends. A full send queue holds the reading back.
func (c *conn) readLoop() {
	defer close(c.readDone)
	c.ws.SetReadLimit(maxFrameBytes)
	c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		for _, f := range c.answer(data) {
			select {
			case c.send <- f:
			case <-c.writeDone:
				return
			}
		}
	}
}

// writeLoop writes queued frames and pings until the socket ends, or
// closes it with 1001 at shutdown.
func (c *conn) writeLoop() {
	defer close(c.writeDone)
	defer c.ws.Close() // ends the read loop too
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case f := <-c.send:
			c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, f); err != nil {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-c.readDone:
			return
		case <-c.s.quit:
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(writeWait))
			return
		}
	}
}

// answer is the three frames that answer one request frame:
//
//   - queue.join: the reply with a searching ticket, match.found and
//     match.ready of the match the counter puts the player in;
//   - any other request: its reply (ping: the server time; queue.leave:
//     conflict once the player joined, as lobbyd answers once a match is
//     ready, else not_found; a frame that is not JSON: bad_request;
//     anything else: ok), then two queue.state events repeating the
//     socket's ticket (without one before the first queue.join).
func (c *conn) answer(data []byte) [3][]byte {
	var req struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Queue string `json:"queue"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		reply := replyFrame{Type: "reply", Error: &errorObject{"bad_request", "malformed request: invalid JSON"}}
		return c.withTicketStates(reply)
	}
	reply := replyFrame{Type: "reply", ID: req.ID, OK: true, Data: struct{}{}}
	switch req.Type {
	case "queue.join":
		return c.join(req.ID, req.Queue)
	case "ping":
		reply.Data = map[string]string{"serverTime": time.Now().UTC().Format(time.RFC3339Nano)}
	case "queue.leave":
		reply.OK, reply.Data, reply.Error = false, nil, &errorObject{"not_found", "you are not in a queue"}
		if c.ticket != nil {
			reply.Error = &errorObject{"conflict", "your match is ready: too late to leave the queue"}
		}
	}
	return c.withTicketStates(reply)
}

// join puts the player in the counter's current match and answers
// queue.join with the reply, match.found and match.ready. match.ready lists
// only this player: the match's later members have not joined yet when the
// first one is answered, and echoref waits for nobody.
func (c *conn) join(id, queue string) [3][]byte {
	if queue == "" {
		queue = queueName
	}
	s := c.s
	match := (s.joins.Add(1) - 1) / uint64(s.maxUsers)
	matchID := "m-" + strconv.FormatUint(match, 10)
	c.ticket = &ticketObject{
		TicketID: "t-" + strconv.FormatUint(s.tickets.Add(1), 10), Queue: queue,
		Players: []string{c.player.PlayerID}, Status: "searching", CreatedAt: time.Now().UTC().Format(time.RFC3339Nano),
	}
	reply := mustJSON(replyFrame{Type: "reply", ID: id, OK: true, Data: map[string]any{"ticket": c.ticket}})
	c.ticket.Status, c.ticket.MatchID = "matched", matchID
	players := []playerObject{c.player}
	found := mustJSON(matchFoundEvent{Type: "match.found", MatchID: matchID, Queue: queue, Players: players})
	ready := mustJSON(matchReadyEvent{
		Type: "match.ready", MatchID: matchID, Queue: queue, PartyID: "party-" + matchID,
		// About as long as a fake PlayFab descriptor, so frames weigh the same.
		NetworkDescriptor: strings.Repeat("RlBOAQ", 15) + "-" + matchID,
		InvitationID:      "inv-" + matchID, Regions: []string{"EastUs"}, Players: players,
	})
	return [3][]byte{reply, found, ready}
}

// withTicketStates is reply followed by two queue.state events.
func (c *conn) withTicketStates(reply replyFrame) [3][]byte {
	state := mustJSON(queueStateEvent{Type: "queue.state", Ticket: c.ticket})
	return [3][]byte{mustJSON(reply), state, state}
}

// Frames, shaped as docs/protocol.md says.
type (
	welcomeFrame struct {
		Type     string   `json:"type"`
		PlayerID string   `json:"playerId"`
		Protocol int      `json:"protocol"`
		Node     string   `json:"node"`
		State    struct{} `json:"state"`
	}
	replyFrame struct {
		Type  string       `json:"type"`
		ID    string       `json:"id,omitempty"`
		OK    bool         `json:"ok"`
		Data  any          `json:"data,omitempty"`
		Error *errorObject `json:"error,omitempty"`
	}
	errorObject struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	ticketObject struct {
		TicketID  string   `json:"ticketId"`
		Queue     string   `json:"queue"`
		Players   []string `json:"players"`
		Status    string   `json:"status"`
		CreatedAt string   `json:"createdAt"`
		MatchID   string   `json:"matchId,omitempty"`
	}
	playerObject struct {
		PlayerID string `json:"playerId"`
		Name     string `json:"name"`
	}
	queueStateEvent struct {
		Type   string        `json:"type"`
		Ticket *ticketObject `json:"ticket,omitempty"`
	}
	matchFoundEvent struct {
		Type    string         `json:"type"`
		MatchID string         `json:"matchId"`
		Queue   string         `json:"queue"`
		Players []playerObject `json:"players"`
	}
	matchReadyEvent struct {
		Type              string         `json:"type"`
		MatchID           string         `json:"matchId"`
		Queue             string         `json:"queue"`
		PartyID           string         `json:"partyId"`
		NetworkDescriptor string         `json:"networkDescriptor"`
		InvitationID      string         `json:"invitationId"`
		Regions           []string       `json:"regions"`
		Players           []playerObject `json:"players"`
	}
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("echoref: encode frame: " + err.Error()) // only our own types reach here
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
