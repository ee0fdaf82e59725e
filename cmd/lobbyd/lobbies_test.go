package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// player is a connected test player.
type player struct {
	*lobbytest.Client
	id, name, token string
}

func (s *server) player(t *testing.T, name string) *player {
	t.Helper()
	token, id := s.devToken(t, name, "")
	c, _ := s.connect(t, token)
	return &player{Client: c, id: id, name: name, token: token}
}

// ok sends a request that must succeed and returns its data.
func (p *player) ok(t *testing.T, typ string, fields map[string]any) lobbytest.Frame {
	t.Helper()
	r := p.Request(typ, fields)
	require.True(t, r.OK(), "%s by %s: %v", typ, p.name, r)
	return r.Obj("data")
}

// fails sends a request that must fail with code.
func (p *player) fails(t *testing.T, code, typ string, fields map[string]any) {
	t.Helper()
	r := p.Request(typ, fields)
	require.False(t, r.OK(), "%s by %s should fail with %s: %v", typ, p.name, code, r)
	assert.Equal(t, code, r.ErrorCode(), "%s by %s: %v", typ, p.name, r)
}

// state waits for the next lobby.state and returns its lobby.
func (p *player) state(t *testing.T) lobbytest.Frame {
	t.Helper()
	return p.Next("lobby.state").Obj("lobby")
}

// queueDepth is the default queue's depth from GET /v1/queues.
func queueDepth(t *testing.T, srv *server) int {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var qs struct{ Queues []struct{ Depth int } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&qs))
	return qs.Queues[0].Depth
}

func memberIDs(l lobbytest.Frame) []string {
	var ids []string
	for _, m := range l["members"].([]any) {
		ids = append(ids, m.(map[string]any)["playerId"].(string))
	}
	return ids
}

func memberField(l lobbytest.Frame, id, field string) any {
	for _, m := range l["members"].([]any) {
		if mm := m.(map[string]any); mm["playerId"] == id {
			return mm[field]
		}
	}
	return nil
}

func TestLobbyRequests(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	alice, bob, carol, dave, eve := srv.player(t, "alice"), srv.player(t, "bob"), srv.player(t, "carol"), srv.player(t, "dave"), srv.player(t, "eve")

	// Create: validation, then a public lobby.
	alice.fails(t, "not_found", "lobby.create", map[string]any{"queue": "nope"})
	alice.fails(t, "bad_request", "lobby.create", map[string]any{"queue": "default", "visibility": "secret"})
	alice.fails(t, "bad_request", "lobby.create", map[string]any{"queue": "default", "maxMembers": 5})
	tooMany := map[string]string{}
	for i := 0; i < 17; i++ {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	alice.fails(t, "too_large", "lobby.create", map[string]any{"queue": "default", "props": tooMany})
	created := alice.ok(t, "lobby.create", map[string]any{"queue": "default", "visibility": "public", "props": map[string]string{"map": "dust"}}).Obj("lobby")
	lobbyID, code := created.Str("lobbyId"), created.Str("code")
	assert.Len(t, code, 6)
	assert.NotContains(t, code, "0")
	assert.NotContains(t, code, "O")
	assert.Equal(t, alice.id, created.Str("ownerId"))
	assert.EqualValues(t, 4, created["maxMembers"], "defaults to the queue's match size")
	assert.Equal(t, "open", created.Str("status"))
	assert.Equal(t, "dust", created.Obj("props").Str("map"))
	assert.Equal(t, lobbyID, alice.state(t).Str("lobbyId"), "lobby.state follows every change")
	alice.fails(t, "conflict", "lobby.create", map[string]any{"queue": "default"})

	// Join by code (any case) and by id; everyone sees every change.
	joined := bob.ok(t, "lobby.join", map[string]any{"code": strings.ToLower(code)}).Obj("lobby")
	assert.Equal(t, []string{alice.id, bob.id}, memberIDs(joined))
	assert.Equal(t, []string{alice.id, bob.id}, memberIDs(alice.state(t)))
	carol.ok(t, "lobby.join", map[string]any{"lobbyId": lobbyID})
	assert.Len(t, memberIDs(bob.state(t)), 2) // bob's own join
	assert.Len(t, memberIDs(bob.state(t)), 3)
	assert.Equal(t, true, memberField(alice.state(t), carol.id, "connected"))
	listed := eve.ok(t, "lobby.list", map[string]any{"queue": "default"})["lobbies"].([]any)
	require.Len(t, listed, 1, "public, open, not full")
	dave.ok(t, "lobby.join", map[string]any{"code": code})
	listed = eve.ok(t, "lobby.list", nil)["lobbies"].([]any)
	assert.Empty(t, listed, "full lobbies are not listed")
	eve.fails(t, "full", "lobby.join", map[string]any{"code": code})
	eve.fails(t, "not_found", "lobby.join", map[string]any{"code": "ZZZZZZ"})
	eve.fails(t, "not_found", "lobby.join", map[string]any{"code": "0O1I00"})
	eve.fails(t, "bad_request", "lobby.join", map[string]any{})
	bob.fails(t, "conflict", "lobby.join", map[string]any{"code": code})

	// Owner-only requests.
	bob.fails(t, "forbidden", "lobby.update", map[string]any{"props": map[string]string{"x": "y"}})
	bob.fails(t, "forbidden", "lobby.kick", map[string]any{"playerId": carol.id})
	bob.fails(t, "forbidden", "lobby.promote", map[string]any{"playerId": bob.id})
	alice.fails(t, "bad_request", "lobby.update", map[string]any{"maxMembers": 3})
	updated := alice.ok(t, "lobby.update", map[string]any{"props": map[string]string{"mode": "ranked"}}).Obj("lobby")
	assert.Equal(t, "ranked", updated.Obj("props").Str("mode"))
	alice.fails(t, "not_found", "lobby.kick", map[string]any{"playerId": eve.id})
	alice.fails(t, "bad_request", "lobby.kick", map[string]any{"playerId": alice.id})
	alice.ok(t, "lobby.kick", map[string]any{"playerId": dave.id})
	removed := dave.Next("lobby.removed")
	assert.Equal(t, "kicked", removed.Str("reason"))
	assert.Equal(t, lobbyID, removed.Str("lobbyId"))
	dave.fails(t, "not_found", "lobby.leave", nil)

	// Chat reaches every member, within limits.
	bob.ok(t, "lobby.chat", map[string]any{"text": "gl hf"})
	for _, p := range []*player{alice, bob, carol} {
		msg := p.Next("lobby.chat")
		assert.Equal(t, "gl hf", msg.Str("text"))
		assert.Equal(t, bob.id, msg.Obj("from").Str("playerId"))
		assert.Equal(t, "bob", msg.Obj("from").Str("name"))
	}
	bob.fails(t, "too_large", "lobby.chat", map[string]any{"text": strings.Repeat("a", 501)})
	bob.fails(t, "bad_request", "lobby.chat", map[string]any{"text": ""})
	dave.fails(t, "not_found", "lobby.chat", map[string]any{"text": "hi"})
	limited := false
	for i := 0; i < 10 && !limited; i++ {
		limited = bob.Request("lobby.chat", map[string]any{"text": "spam"}).ErrorCode() == "rate_limited"
	}
	assert.True(t, limited, "chat is rate-limited per player")

	eve.fails(t, "not_found", "lobby.list", map[string]any{"queue": "nope"})
	alice.fails(t, "not_found", "lobby.promote", map[string]any{"playerId": eve.id})
	alice.fails(t, "too_large", "lobby.update", map[string]any{"props": map[string]string{"k": strings.Repeat("v", 257)}})
	alice.fails(t, "bad_request", "lobby.update", map[string]any{"visibility": "hidden"})
	eve.fails(t, "not_found", "lobby.update", map[string]any{"props": map[string]string{}})
	eve.fails(t, "not_found", "lobby.ready", map[string]any{"ready": true})

	// Promotion, and ownership passing to the earliest joiner.
	alice.ok(t, "lobby.promote", map[string]any{"playerId": carol.id})
	alice.fails(t, "forbidden", "lobby.kick", map[string]any{"playerId": bob.id})
	carol.ok(t, "lobby.leave", nil)
	storetest.Eventually(t, 5*time.Second, func() bool {
		l := alice.state(t)
		return len(memberIDs(l)) == 2 && l.Str("ownerId") == alice.id
	}, "the owner left: the earliest joiner (alice) owns the lobby")

	// Private lobbies: joinable by code only, never listed.
	priv := eve.ok(t, "lobby.create", map[string]any{"queue": "default", "visibility": "private", "maxMembers": 2}).Obj("lobby")
	dave.fails(t, "not_found", "lobby.join", map[string]any{"lobbyId": priv.Str("lobbyId")})
	for _, l := range dave.ok(t, "lobby.list", nil)["lobbies"].([]any) {
		assert.NotEqual(t, priv.Str("lobbyId"), l.(map[string]any)["lobbyId"], "private lobbies are never listed")
	}
	dave.ok(t, "lobby.join", map[string]any{"code": priv.Str("code")})
	dave.fails(t, "bad_request", "lobby.ready", map[string]any{})
}

// A lobby queues as one ticket, only from its owner once everyone is ready,
// and is matched with solos without being split.
func TestLobbyQueuesTogether(t *testing.T) {
	t.Parallel()
	srv, fake := startWithFake(t, "")
	alice, bob, carol, dave := srv.player(t, "alice"), srv.player(t, "bob"), srv.player(t, "carol"), srv.player(t, "dave")
	code := alice.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	bob.ok(t, "lobby.join", map[string]any{"code": code})

	bob.fails(t, "forbidden", "queue.join", map[string]any{"queue": "default"})
	alice.fails(t, "conflict", "queue.join", map[string]any{"queue": "default"})
	alice.ok(t, "lobby.ready", map[string]any{"ready": true})
	bob.ok(t, "lobby.ready", map[string]any{"ready": true})
	ticket := alice.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket")
	assert.ElementsMatch(t, []any{alice.id, bob.id}, ticket["players"], "one ticket for the whole lobby")
	for _, p := range []*player{alice, bob} {
		assert.Equal(t, ticket.Str("ticketId"), p.Next("queue.state").Obj("ticket").Str("ticketId"))
		storetest.Eventually(t, 5*time.Second, func() bool { return p.state(t).Str("status") == "queued" }, "lobby queued")
	}
	bob.fails(t, "conflict", "lobby.ready", map[string]any{"ready": false})
	carol.fails(t, "conflict", "lobby.join", map[string]any{"code": code})

	carol.ok(t, "queue.join", map[string]any{"queue": "default"})
	dave.ok(t, "queue.join", map[string]any{"queue": "default"})
	var matchID string
	for _, p := range []*player{alice, bob, carol, dave} {
		ready := p.Next("match.ready")
		if matchID == "" {
			matchID = ready.Str("matchId")
		}
		assert.Equal(t, matchID, ready.Str("matchId"), "lobby and solos in one match")
	}
	assert.Equal(t, 1, fake.Stats().Parties[matchID])
	for _, p := range []*player{alice, bob} {
		storetest.Eventually(t, 5*time.Second, func() bool { return p.state(t).Str("status") == "matched" },
			"after match.ready the lobby is matched")
	}
}

// Any member leaving the lobby, or queue.leave from any member, takes the
// lobby's ticket out of the queue and tells every member.
func TestLobbyTicketCancelledByAnyMember(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	for _, how := range []string{"queue.leave", "lobby.leave"} {
		t.Run(how, func(t *testing.T) {
			owner, m1, m2 := srv.player(t, "o-"+how), srv.player(t, "a-"+how), srv.player(t, "b-"+how)
			code := owner.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
			for _, p := range []*player{m1, m2} {
				p.ok(t, "lobby.join", map[string]any{"code": code})
			}
			for _, p := range []*player{owner, m1, m2} {
				p.ok(t, "lobby.ready", map[string]any{"ready": true})
			}
			owner.ok(t, "queue.join", map[string]any{"queue": "default"}) // 3 of 4: waits
			m1.ok(t, how, nil)
			for _, p := range []*player{owner, m1, m2} {
				st := p.Next("queue.state")
				if st.Obj("ticket").Str("status") == "searching" {
					st = p.Next("queue.state")
				}
				assert.Equal(t, "cancelled", st.Obj("ticket").Str("status"), "%s told", p.name)
			}
			storetest.Eventually(t, 5*time.Second, func() bool { return owner.state(t).Str("status") == "open" }, "lobby open again")
			owner.ok(t, "lobby.leave", nil)
			m2.ok(t, "lobby.leave", nil)
			if how == "queue.leave" {
				m1.ok(t, "lobby.leave", nil)
			}
		})
	}
}

// A member drops while their lobby is queued; the match forms while they
// are away; they reconnect within the grace period and get it all back:
// their lobby (now matched) and the undelivered match.
func TestReconnectWhileAwayKeepsEverything(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	alice, bob := srv.player(t, "alice"), srv.player(t, "bob")
	code := alice.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	bob.ok(t, "lobby.join", map[string]any{"code": code})
	alice.ok(t, "lobby.ready", map[string]any{"ready": true})
	bob.ok(t, "lobby.ready", map[string]any{"ready": true})
	alice.ok(t, "queue.join", map[string]any{"queue": "default"})

	bob.Conn.Close()
	storetest.Eventually(t, 5*time.Second, func() bool { return memberField(alice.state(t), bob.id, "connected") == false },
		"the others see bob disconnected")
	solos := []*player{srv.player(t, "c"), srv.player(t, "d")}
	for _, p := range solos {
		p.ok(t, "queue.join", map[string]any{"queue": "default"})
	}
	ready := alice.Next("match.ready")
	// match.ready goes out before the lobby is marked matched (Notifier.
	// MatchReady): wait for the lobby.state that says so, which comes once
	// it is stored.
	storetest.Eventually(t, 5*time.Second, func() bool { return alice.state(t).Str("status") == "matched" },
		"the lobby is marked matched")

	c, w := srv.connect(t, bob.token)
	state := w.Obj("state")
	assert.Equal(t, ready.Str("matchId"), state.Obj("match").Str("matchId"), "the match formed while away")
	assert.Equal(t, code, state.Obj("lobby").Str("code"), "the lobby place is kept")
	assert.Equal(t, "matched", state.Obj("lobby").Str("status"))
	c.Request("ping", nil)
	assert.Zero(t, c.Count("match.ready"))
	storetest.Eventually(t, 5*time.Second, func() bool { return memberField(alice.state(t), bob.id, "connected") == true },
		"the others see bob back")
}

// After the grace period a disconnected player leaves their lobby and their
// solo ticket is cancelled.
func TestGracePeriodEnds(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t, "-reconnect-grace", "1s")
	alice, bob, solo := srv.player(t, "alice"), srv.player(t, "bob"), srv.player(t, "solo")
	code := bob.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	alice.ok(t, "lobby.join", map[string]any{"code": code})
	solo.ok(t, "queue.join", map[string]any{"queue": "default"})

	bob.Conn.Close()
	solo.Conn.Close()
	storetest.Eventually(t, 10*time.Second, func() bool {
		l := alice.state(t)
		return len(memberIDs(l)) == 1 && l.Str("ownerId") == alice.id
	}, "bob left after the grace period, and alice owns the lobby")

	storetest.Eventually(t, 10*time.Second, func() bool { return queueDepth(t, srv) == 0 },
		"the solo ticket was cancelled after the grace period")
	_, w := srv.connect(t, solo.token)
	assert.Nil(t, w.Obj("state")["ticket"], "the solo ticket was cancelled")
	_, w = srv.connect(t, bob.token)
	assert.Nil(t, w.Obj("state")["lobby"])
}

// Restarting lobbyd on the same Redis loses no lobby: members reconnect to
// it intact.
func TestRestartKeepsLobbies(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": testJWTSecret, "LOBBYD_REDIS_URL": r.URL}
	first := startServer(t, env)
	alice, bob := first.player(t, "alice"), first.player(t, "bob")
	created := alice.ok(t, "lobby.create", map[string]any{"queue": "default", "props": map[string]string{"map": "dust"}}).Obj("lobby")
	bob.ok(t, "lobby.join", map[string]any{"code": created.Str("code")})
	alice.ok(t, "lobby.ready", map[string]any{"ready": true})
	first.shutdown(t)
	assert.Equal(t, 1001, alice.CloseCode())

	second := startServer(t, env)
	for _, p := range []*player{alice, bob} {
		_, w := second.connect(t, p.token)
		l := w.Obj("state").Obj("lobby")
		require.NotNil(t, l, "%s's lobby survived the restart", p.name)
		assert.Equal(t, created.Str("lobbyId"), l.Str("lobbyId"))
		assert.Equal(t, []string{alice.id, bob.id}, memberIDs(l))
		assert.Equal(t, alice.id, l.Str("ownerId"))
		assert.Equal(t, "dust", l.Obj("props").Str("map"))
		assert.Equal(t, true, memberField(l, alice.id, "ready"))
	}
}

// Two members change the lobby at the same moment: their lobby.state
// snapshots may arrive in either order, so each carries a version. The
// highest version a member received is always the lobby as stored.
func TestLobbyStateVersionsOrderConcurrentChanges(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	x, y := srv.player(t, "x"), srv.player(t, "y")
	code := x.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	y.ok(t, "lobby.join", map[string]any{"code": code})
	for round := 0; round < 20; round++ {
		ready := round%2 == 0
		// Both requests are on the wire before either reply is read.
		for _, p := range []*player{x, y} {
			require.NoError(t, p.Conn.WriteJSON(map[string]any{"type": "lobby.ready", "id": fmt.Sprint("r", round), "ready": ready}))
		}
		for _, p := range []*player{x, y} {
			require.True(t, p.Next("reply").OK())
		}
		stored := x.ok(t, "lobby.update", map[string]any{}).Obj("lobby") // the reply is the stored lobby
		for _, p := range []*player{x, y} {
			var latest lobbytest.Frame
			storetest.Eventually(t, 5*time.Second, func() bool {
				p.Drain()
				for p.Count("lobby.state") > 0 {
					l := p.state(t)
					if latest == nil || l["version"].(float64) > latest["version"].(float64) {
						latest = l
					}
				}
				return latest != nil && latest["version"] == stored["version"]
			}, "%s received the stored version", p.name)
			assert.Equal(t, stored["members"], latest["members"], "round %d: %s's newest snapshot is the stored lobby", round, p.name)
		}
	}
}

// A lobby claim that outlived its lobby (the lobby key expired or was lost)
// does not stop its player from queueing alone.
func TestQueueAloneAfterLobbyVanished(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	srv := startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": testJWTSecret, "LOBBYD_REDIS_URL": r.URL})
	alice := srv.player(t, "alice")
	l := alice.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby")
	raw := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer raw.Close()
	require.EqualValues(t, 1, raw.Del(context.Background(), "{l:"+l.Str("lobbyId")+"}").Val(), "the lobby key")
	// Older than the grace in which a claim binds without its lobby.
	require.True(t, raw.PExpire(context.Background(), "{p:"+alice.id+"}:lobby", 24*time.Hour-time.Minute).Val(), "alice's claim")

	ticket := alice.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket")
	assert.Equal(t, []any{alice.id}, ticket["players"], "a solo ticket")
	assert.Equal(t, "searching", ticket.Str("status"))
	assert.Equal(t, 1, queueDepth(t, srv))
}
