package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// rawPlayer reads its frames as the bytes sent on the wire, which the
// lobbytest client decodes away.
type rawPlayer struct {
	t    *testing.T
	conn *websocket.Conn
}

func (s *server) rawPlayer(t *testing.T, name string) *rawPlayer {
	t.Helper()
	token, _ := s.devToken(t, name, "")
	conn, _, err := websocket.DefaultDialer.Dial(s.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	p := &rawPlayer{t: t, conn: conn}
	p.next("welcome")
	return p
}

func (p *rawPlayer) send(typ string, fields map[string]any) {
	p.t.Helper()
	msg := map[string]any{"type": typ, "id": typ}
	for k, v := range fields {
		msg[k] = v
	}
	var frame bytes.Buffer
	enc := json.NewEncoder(&frame)
	enc.SetEscapeHTML(false) // as sent by most clients: WriteJSON would send "<" as \u003c
	require.NoError(p.t, enc.Encode(msg))
	require.NoError(p.t, p.conn.WriteMessage(websocket.TextMessage, frame.Bytes()))
}

// next returns the next frame of the given type as received, skipping
// others; it fails the test after lobbytest.Wait.
func (p *rawPlayer) next(typ string) []byte {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(lobbytest.Wait))
	for {
		_, data, err := p.conn.ReadMessage()
		require.NoError(p.t, err, "waiting for %s", typ)
		var f struct{ Type string }
		require.NoError(p.t, json.Unmarshal(data, &f))
		if f.Type == typ {
			return data
		}
	}
}

// Frames carry <, > and & as they are, not as \u003c: props of "<" cost
// their size, not six times it, on every lobby.state. Props are bounded by
// their size as JSON besides their counts.
func TestLobbyPropsOnTheWire(t *testing.T) {
	t.Parallel()
	// Frames large enough to carry props past their own limit.
	srv, _ := startProtocolServer(t, "-max-frame-bytes", "16384")
	alice, bob := srv.rawPlayer(t, "alice"), srv.player(t, "bob")

	alice.send("lobby.create", map[string]any{"queue": "default", "props": map[string]string{"html": "<<<&>>>"}})
	reply := alice.next("reply")
	assert.Contains(t, string(reply), `"html":"<<<&>>>"`, "the reply, unescaped")
	assert.NotContains(t, string(reply), `\u003c`)
	var created struct {
		Data struct{ Lobby struct{ Code string } }
	}
	require.NoError(t, json.Unmarshal(reply, &created))
	alice.next("lobby.state") // her own create

	// Bob joins on his socket: alice's lobby.state goes through the node
	// channel, which must not escape it either.
	bob.ok(t, "lobby.join", map[string]any{"code": created.Data.Lobby.Code})
	state := alice.next("lobby.state")
	assert.Contains(t, string(state), `"html":"<<<&>>>"`, "lobby.state, relayed, unescaped")
	assert.NotContains(t, string(state), `\u003c`)

	// 16 props of 230 "<" each: within the counts, 3.9 KB as JSON.
	within := map[string]string{}
	for i := 0; i < 16; i++ {
		within[fmt.Sprintf("k%02d", i)] = strings.Repeat("<", 230)
	}
	alice.send("lobby.update", map[string]any{"props": within})
	assert.Contains(t, string(alice.next("reply")), `"ok":true`)
	state = alice.next("lobby.state")
	for {
		var s struct {
			Lobby struct{ Props map[string]string }
		}
		require.NoError(t, json.Unmarshal(state, &s))
		if len(s.Lobby.Props) == 16 {
			break
		}
		state = alice.next("lobby.state") // bob's join, sent later
	}
	t.Logf("lobby.state with 16 props of 230 \"<\": %d bytes", len(state))
	assert.Less(t, len(state), 5000, "a lobby.state with 3.9 KB of props (it was 21 KB escaped)")

	// 16 props of 256 "<" each: within the counts, over 4 KiB as JSON.
	over := map[string]string{}
	for i := 0; i < 16; i++ {
		over[fmt.Sprintf("k%02d", i)] = strings.Repeat("<", 256)
	}
	for _, typ := range []string{"lobby.update", "lobby.create"} {
		alice.send(typ, map[string]any{"queue": "default", "props": over})
		var r struct {
			OK    bool
			Error struct{ Code string }
		}
		require.NoError(t, json.Unmarshal(alice.next("reply"), &r))
		assert.Equal(t, "too_large", r.Error.Code, "%s with 4.4 KB of props", typ)
	}
}

// Join codes cannot be found by guessing: after 10 codes that match no
// lobby in a minute, a player's lobby.join by code is refused, even with
// a right code, on a new connection to another node too. Other players
// are not affected.
func TestWrongCodesAreRateLimited(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": testJWTSecret, "LOBBYD_REDIS_URL": r.URL}
	nodeA, nodeB := startServer(t, env), startServer(t, env)
	alice := nodeA.player(t, "alice")
	code := alice.ok(t, "lobby.create", map[string]any{"queue": "default", "visibility": "private"}).Obj("lobby").Str("code")

	mallory := nodeA.player(t, "mallory")
	wrong := []string{"0O1I00", "not a code"} // malformed codes count too
	for c := 'A'; len(wrong) < 10; c++ {
		if guess := strings.Repeat(string(c), 6); guess != code {
			wrong = append(wrong, guess)
		}
	}
	for _, guess := range wrong {
		mallory.fails(t, "not_found", "lobby.join", map[string]any{"code": guess})
	}
	mallory.fails(t, "rate_limited", "lobby.join", map[string]any{"code": code})

	again, _ := nodeB.connect(t, mallory.token)
	mallory.Client = again
	mallory.fails(t, "rate_limited", "lobby.join", map[string]any{"code": code})
	mallory.fails(t, "rate_limited", "lobby.join", map[string]any{"code": "ZZZZZZ"})
	mallory.ok(t, "lobby.create", map[string]any{"queue": "default"}) // only code lookups are limited

	nodeB.player(t, "bob").ok(t, "lobby.join", map[string]any{"code": code})
}

// lobby.list never shows codes; members see them. A lobby turning private
// gets a new code and the old one stops working; turning public keeps it.
func TestLobbyCodesStayWithMembers(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	alice, bob, eve := srv.player(t, "alice"), srv.player(t, "bob"), srv.player(t, "eve")
	created := alice.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby")
	public := created.Str("code")
	require.Len(t, public, 6, "the creator sees the code")

	listed := eve.ok(t, "lobby.list", nil)["lobbies"].([]any)
	require.Len(t, listed, 1)
	assert.Equal(t, created.Str("lobbyId"), listed[0].(map[string]any)["lobbyId"])
	assert.Empty(t, listed[0].(map[string]any)["code"], "listed lobbies show no code")

	bob.ok(t, "lobby.join", map[string]any{"code": public}) // bob knows the public code
	bob.ok(t, "lobby.leave", nil)

	private := alice.ok(t, "lobby.update", map[string]any{"visibility": "private"}).Obj("lobby").Str("code")
	assert.Len(t, private, 6)
	assert.NotEqual(t, public, private, "a lobby turning private gets a new code")
	storetest.Eventually(t, 5*time.Second, func() bool { return alice.state(t).Str("code") == private },
		"members get the new code in lobby.state")
	bob.fails(t, "not_found", "lobby.join", map[string]any{"code": public})
	eve.fails(t, "not_found", "lobby.join", map[string]any{"lobbyId": created.Str("lobbyId")})
	joined := eve.ok(t, "lobby.join", map[string]any{"code": private}).Obj("lobby")
	assert.Equal(t, private, joined.Str("code"), "members see the code")

	again := alice.ok(t, "lobby.update", map[string]any{"visibility": "public"}).Obj("lobby")
	assert.Equal(t, private, again.Str("code"), "turning public keeps the code")
	listed = bob.ok(t, "lobby.list", nil)["lobbies"].([]any)
	require.Len(t, listed, 1)
	assert.Empty(t, listed[0].(map[string]any)["code"])
	bob.ok(t, "lobby.join", map[string]any{"code": private})
}

// A burst of changes to one lobby reaches its members as a few lobby.state
// frames, at most one per 250 ms after the first, and the last one carries
// the final lobby.
func TestLobbyStateBurstIsCoalesced(t *testing.T) {
	t.Parallel()
	const interval = 250 * time.Millisecond // LobbyStateInterval's default
	srv, _ := startProtocolServer(t)
	alice, bob, carol := srv.player(t, "alice"), srv.player(t, "bob"), srv.player(t, "carol")
	code := alice.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	bob.ok(t, "lobby.join", map[string]any{"code": code})
	carol.ok(t, "lobby.join", map[string]any{"code": code})
	storetest.Eventually(t, 5*time.Second, func() bool { return len(memberIDs(carol.state(t))) == 3 }, "carol sees the lobby")
	carol.Drain()
	before := carol.Count("lobby.state")

	start := time.Now()
	// The frames already received are read first: they do not count.
	frames := -before
	// 50 toggles, each a change, by two members.
	for round := 0; round < 5; round++ {
		for i := 0; i < 5; i++ {
			for _, p := range []*player{alice, bob} {
				p.ok(t, "lobby.ready", map[string]any{"ready": (round*5+i)%2 == 0})
			}
		}
		carol.state(t) // spreads the burst over several intervals
		frames++
	}
	final := alice.ok(t, "lobby.update", map[string]any{}).Obj("lobby") // the reply is the stored lobby
	var last lobbytest.Frame
	for last == nil || last["version"] != final["version"] {
		last = carol.state(t)
		frames++
	}
	elapsed := time.Since(start)
	assert.Equal(t, true, memberField(last, alice.id, "ready"), "the last lobby.state is the final lobby")
	assert.Equal(t, true, memberField(last, bob.id, "ready"))
	// One at once, one per interval after it, and one sent before the burst
	// that may still have been on its way.
	bound := 2 + int(elapsed/interval)
	t.Logf("51 changes in %v: %d lobby.state frames (bound %d)", elapsed.Round(time.Millisecond), frames, bound)
	assert.LessOrEqual(t, frames, bound)
	assert.Less(t, frames, 51, "not one per change")
}

// A node shutting down sends the lobby states it was still holding back:
// the members on other nodes see the last change and the departed member
// disconnected.
func TestPendingLobbyStateSentAtShutdown(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": testJWTSecret, "LOBBYD_REDIS_URL": r.URL}
	nodeA, nodeB := startServer(t, env), startServer(t, env)
	alice, bob := nodeA.player(t, "alice"), nodeB.player(t, "bob")
	code := alice.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	bob.ok(t, "lobby.join", map[string]any{"code": code})
	storetest.Eventually(t, 5*time.Second, func() bool { return len(memberIDs(alice.state(t))) == 2 }, "alice sees bob")

	for _, ready := range []bool{true, false, true} {
		bob.ok(t, "lobby.ready", map[string]any{"ready": ready})
	}
	nodeB.shutdown(t) // at once: the last changes are still held back
	assert.Equal(t, websocket.CloseGoingAway, bob.CloseCode())
	storetest.Eventually(t, 5*time.Second, func() bool {
		l := alice.state(t)
		return memberField(l, bob.id, "ready") == true && memberField(l, bob.id, "connected") == false
	}, "alice sees bob's last change and his socket gone")
}
