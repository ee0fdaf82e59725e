package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// fakeLobbyd is a tiny stand-in for lobbyd that speaks just enough of the
// protocol for one solo player per match, and can be told to misbehave.
type fakeLobbyd struct {
	*httptest.Server
	// MatchReadyCopies is how many times match.ready is sent after
	// queue.join (1 is correct).
	MatchReadyCopies int
	// OneMatch puts every player in the same match, but with an
	// invitationId of their own (which players of one match must agree on).
	OneMatch bool
	// Secret, when set, makes the fake check HS256 tokens with it instead
	// of serving dev tokens.
	Secret string
	// DropAfter, when set, closes each player's first socket with 1001
	// (as a node shutting down) that long after its welcome;
	// CloseAfterReady closes it so right after its match.ready.
	// RefuseReconnects answers a player's later handshakes 503.
	DropAfter        time.Duration
	CloseAfterReady  bool
	RefuseReconnects bool

	ids      atomic.Int64
	welcomed atomic.Int64 // sockets sent welcome
	mu       sync.Mutex
	sources  map[string]bool // remote IPs of sockets
	// welcomedAtJoins is, for each queue.join, how many sockets had got
	// welcome when it arrived.
	welcomedAtJoins []int64
	// handshakes counts each player's handshakes.
	handshakes map[string]int
}

func newFakeLobbyd(t *testing.T, copies int, secret string) *fakeLobbyd {
	f := &fakeLobbyd{MatchReadyCopies: copies, Secret: secret, sources: map[string]bool{}, handshakes: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/queues", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"queues":[{"name":"default","maxUsers":1}]}`)
	})
	mux.HandleFunc("POST /v1/dev/token", func(w http.ResponseWriter, _ *http.Request) {
		if f.Secret != "" {
			http.NotFound(w, nil)
			return
		}
		id := fmt.Sprintf("p%d", f.ids.Add(1))
		json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + id, "playerId": id})
	})
	mux.HandleFunc("GET /v1/ws", f.serveWS)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLobbyd) playerID(r *http.Request) (string, bool) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if f.Secret == "" {
		return strings.CutPrefix(token, "tok-")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(f.Secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	sub, _ := claims["sub"].(string)
	return sub, err == nil && sub != ""
}

func (f *fakeLobbyd) serveWS(w http.ResponseWriter, r *http.Request) {
	id, ok := f.playerID(r)
	if !ok {
		http.Error(w, `{"error":{"code":"unauthorized"}}`, http.StatusUnauthorized)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	f.mu.Lock()
	f.sources[host] = true
	f.handshakes[id]++
	first := f.handshakes[id] == 1
	f.mu.Unlock()
	if !first && f.RefuseReconnects {
		http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	send := func(v any) bool { return ws.WriteJSON(v) == nil }
	goingAway := func() {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		ws.Close()
	}
	// Counted before it is sent, so that no client can act on a welcome
	// not yet counted.
	f.welcomed.Add(1)
	if !send(map[string]any{"type": "welcome", "playerId": id, "protocol": 1, "state": map[string]any{}}) {
		return
	}
	if first && f.DropAfter > 0 {
		time.AfterFunc(f.DropAfter, goingAway)
	}
	for {
		var req struct{ Type, ID string }
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		if req.Type == "queue.join" {
			f.mu.Lock()
			f.welcomedAtJoins = append(f.welcomedAtJoins, f.welcomed.Load())
			f.mu.Unlock()
		}
		if !send(map[string]any{"type": "reply", "id": req.ID, "ok": true, "data": map[string]any{}}) {
			return
		}
		if req.Type != "queue.join" {
			continue
		}
		matchID, invitationID := "m-"+id, "inv-"+id
		if f.OneMatch {
			matchID = "m-all"
		}
		ready := map[string]any{"type": "match.ready", "matchId": matchID, "queue": "default", "partyId": matchID,
			"networkDescriptor": "nd-" + matchID, "invitationId": invitationID, "regions": []string{"EastUs"},
			"players": []map[string]string{{"playerId": id, "name": id}}}
		for range f.MatchReadyCopies {
			if !send(ready) {
				return
			}
		}
		if first && f.CloseAfterReady {
			goingAway()
			return
		}
	}
}

// fewestWelcomedAtJoin is the fewest sockets that had got welcome when a
// queue.join arrived, and how many queue.join arrived.
func (f *fakeLobbyd) fewestWelcomedAtJoin() (fewest int64, joins int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.welcomedAtJoins) == 0 {
		return 0, 0
	}
	return slices.Min(f.welcomedAtJoins), len(f.welcomedAtJoins)
}

// sourceIPs returns the distinct remote addresses sockets came from.
func (f *fakeLobbyd) sourceIPs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for ip := range f.sources {
		out = append(out, ip)
	}
	return out
}
