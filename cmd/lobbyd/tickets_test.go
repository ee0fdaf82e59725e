package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// startOnMiniredis starts lobbyd in dev mode (JWT secret testJWTSecret) on
// a miniredis the test can inspect and fast-forward.
func startOnMiniredis(t *testing.T, env map[string]string, args ...string) (*server, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	full := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": testJWTSecret, "LOBBYD_REDIS_URL": "redis://" + m.Addr()}
	for k, v := range env {
		full[k] = v
	}
	return startServer(t, full, args...), m
}

// ticketRecord is the key of a ticket of the default queue.
func ticketRecord(ticketID string) string { return "{q:default}:t:" + ticketID }

// keysLike lists the keys with the given prefix and suffix.
func keysLike(m *miniredis.Miniredis, prefix, suffix string) []string {
	var out []string
	for _, k := range m.Keys() {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			out = append(out, k)
		}
	}
	return out
}

// assertFinishedRecord checks that a finished ticket's record holds its
// status alone and expires within a minute.
func assertFinishedRecord(t *testing.T, m *miniredis.Miniredis, key, status string) {
	t.Helper()
	assert.Empty(t, finishedRecordProblem(m, key, status))
}

// finishedRecordProblem says how a finished ticket's record is not its
// status alone, expiring within a minute ("" when it is).
func finishedRecordProblem(m *miniredis.Miniredis, key, status string) string {
	fields, err := m.HKeys(key)
	switch ttl := m.TTL(key); {
	case err != nil:
		return fmt.Sprintf("%s: %v", key, err)
	case len(fields) != 1 || m.HGet(key, "status") != status:
		return fmt.Sprintf("%s holds %v, not its status %q alone", key, fields, status)
	case ttl <= 0 || ttl > time.Minute:
		return fmt.Sprintf("%s expires in %v, not within a minute", key, ttl)
	}
	return ""
}

// storedTicket decodes the data a searching ticket's record holds.
func storedTicket(t *testing.T, m *miniredis.Miniredis, ticketID string) (regions []string, latencies map[string]int) {
	t.Helper()
	var d struct {
		Regions   []string       `json:"regions"`
		Latencies map[string]int `json:"latencies"`
	}
	require.NoError(t, json.Unmarshal([]byte(m.HGet(ticketRecord(ticketID), "data")), &d))
	return d.Regions, d.Latencies
}

// junkRegions is what issue 11 found sent: 31 region names of 118
// characters that no queue serves.
func junkRegions() []string {
	out := make([]string, 31)
	for i := range out {
		out[i] = fmt.Sprintf("%02d%s", i, strings.Repeat("x", 116))
	}
	return out
}

// 200 queue.join + queue.leave cycles, each join carrying junk regions or
// latencies of junk regions, leave no ticket behind: no claim at once, and
// within a minute no ticket record either (miniredis's clock is moved on,
// nobody waits). Only the queue's regions are ever stored.
func TestJoinLeaveCyclesLeaveNoTickets(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, nil)
	const players, cycles = 20, 10 // 20 requests per connection: within any rate limit's burst
	junk := junkRegions()
	joins := []map[string]any{
		{"queue": "default", "regions": append([]string{"EastUs"}, junk...)},
		{"queue": "default", "latencies": map[string]int{"EastUs": 40, junk[0]: 10, junk[1]: 20, "Mars": 5}},
	}
	var tickets []string
	for i := 0; i < players; i++ {
		p := srv.player(t, fmt.Sprint("cycler", i))
		for c := 0; c < cycles; c++ {
			join := joins[c%len(joins)]
			id := p.ok(t, "queue.join", join).Obj("ticket").Str("ticketId")
			if i == 0 && c < len(joins) {
				regions, latencies := storedTicket(t, m, id)
				if _, ok := join["regions"]; ok {
					assert.Equal(t, []string{"EastUs"}, regions, "only the queue's regions are stored")
				} else {
					assert.Equal(t, map[string]int{"EastUs": 40}, latencies, "only the queue's regions' latencies are stored")
				}
			}
			p.ok(t, "queue.leave", nil)
			assert.Equal(t, "cancelled", p.Next("queue.state").Obj("ticket").Str("status"))
			tickets = append(tickets, id)
		}
		p.Conn.Close()
	}

	assert.Empty(t, keysLike(m, "{p:", ":ticket"), "no player holds a ticket claim")
	assert.False(t, m.Exists("{q:default}:searching"), "no ticket is searching")
	assert.False(t, m.Exists("{q:default}:searching:data"), "no searching data is left")
	storetest.Eventually(t, 5*time.Second, func() bool { return !m.Exists("{q:default}:incoming") },
		"the leader takes the arrivals")
	require.Len(t, keysLike(m, "{q:default}:t:", ""), len(tickets))
	var problems []string
	for _, id := range tickets {
		if p := finishedRecordProblem(m, ticketRecord(id), "cancelled"); p != "" {
			problems = append(problems, p)
		}
	}
	assert.Empty(t, problems[:min(len(problems), 3)], "%d of %d records are not a status alone expiring within a minute", len(problems), len(tickets))
	m.FastForward(61 * time.Second)
	assert.Zero(t, len(keysLike(m, "{q:default}:t:", "")), "a minute on, no ticket record is left")
}

// Every way a ticket ends other than a match leaves only its status, for
// at most a minute: a lobby's ticket when a member leaves or is kicked, a
// solo ticket when its player's grace period ends, a ticket that waited
// past the queue's ticketTimeout.
func TestEveryWayATicketEndsLeavesOnlyItsStatus(t *testing.T) {
	t.Parallel()
	// A lobby of two, queued (the queue needs four): returns the owner, the
	// other member and the ticket id.
	queuedLobby := func(t *testing.T, srv *server) (owner, other *player, ticketID string) {
		owner, other = srv.player(t, "owner"), srv.player(t, "other")
		code := owner.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
		other.ok(t, "lobby.join", map[string]any{"code": code})
		owner.ok(t, "lobby.ready", map[string]any{"ready": true})
		other.ok(t, "lobby.ready", map[string]any{"ready": true})
		ticketID = owner.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
		return owner, other, ticketID
	}
	// nextStatus waits for the queue.state of ticketID with a status other
	// than searching.
	nextStatus := func(p *player, ticketID string) string {
		for {
			tk := p.Next("queue.state").Obj("ticket")
			if tk.Str("ticketId") == ticketID && tk.Str("status") != "searching" {
				return tk.Str("status")
			}
		}
	}
	timeoutQueue := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(timeoutQueue, []byte(`queues:
  - name: default
    maxUsers: 4
    maxDevices: 4
    maxDevicesPerUser: 1
    maxUsersPerDevice: 1
    maxEndpointsPerDevice: 1
    regions: [EastUs]
    ticketTimeout: 1s
    maxWait: 1s
`), 0o600))

	for _, tc := range []struct {
		name   string
		args   []string
		status string
		end    func(t *testing.T, srv *server, m *miniredis.Miniredis) string // returns the ended ticket's id
	}{
		{"lobby.leave", nil, "cancelled", func(t *testing.T, srv *server, _ *miniredis.Miniredis) string {
			owner, other, id := queuedLobby(t, srv)
			other.ok(t, "lobby.leave", nil)
			assert.Equal(t, "cancelled", nextStatus(owner, id))
			return id
		}},
		{"lobby.kick", nil, "cancelled", func(t *testing.T, srv *server, _ *miniredis.Miniredis) string {
			owner, other, id := queuedLobby(t, srv)
			owner.ok(t, "lobby.kick", map[string]any{"playerId": other.id})
			assert.Equal(t, "cancelled", nextStatus(owner, id))
			return id
		}},
		{"grace period over", []string{"-reconnect-grace", "1s"}, "cancelled", func(t *testing.T, srv *server, m *miniredis.Miniredis) string {
			solo := srv.player(t, "solo")
			id := solo.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
			solo.Conn.Close()
			storetest.Eventually(t, 10*time.Second, func() bool { return m.HGet(ticketRecord(id), "status") == "cancelled" },
				"the ticket is cancelled once the grace period is over")
			return id
		}},
		{"ticket timeout", []string{"-config", timeoutQueue}, "expired", func(t *testing.T, srv *server, _ *miniredis.Miniredis) string {
			solo := srv.player(t, "solo")
			id := solo.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
			assert.Equal(t, "expired", nextStatus(solo, id))
			return id
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, m := startOnMiniredis(t, nil, tc.args...)
			id := tc.end(t, srv, m)
			assertFinishedRecord(t, m, ticketRecord(id), tc.status)
			m.FastForward(61 * time.Second)
			assert.False(t, m.Exists(ticketRecord(id)), "a minute on, nothing is left of the ticket")
		})
	}
}

// A player who leaves while their match allocates leaves only their
// ticket's status behind, and the match still works as the protocol says:
// when the allocation fails, the others are requeued with everything their
// tickets were created with, and the leaver is not.
func TestLeaverOfAFailedMatchLeavesOnlyItsStatus(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	srv, _ := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake, Faults: fakeplayfab.Faults{ErrorRate: 1}},
		map[string]string{"LOBBYD_ALLOCATION_DEADLINE": "1500ms", "LOBBYD_LOG_LEVEL": "error", "LOBBYD_REDIS_URL": "redis://" + m.Addr()})
	clients := queuePlayers(t, srv, "f", 4)
	tickets := make([]string, len(clients))
	for i, c := range clients {
		c.Next("match.found")
		tickets[i] = c.Next("queue.state").Obj("ticket").Str("ticketId")
	}
	leaver := clients[3]
	require.True(t, leaver.Request("queue.leave", nil).OK())
	assert.Equal(t, "cancelled", leaver.Next("queue.state").Obj("ticket").Str("status"))
	assertFinishedRecord(t, m, ticketRecord(tickets[3]), "cancelled")

	for i, c := range clients[:3] {
		assert.Equal(t, true, c.Next("match.failed")["requeued"])
		assert.Equal(t, "searching", c.Next("queue.state").Obj("ticket").Str("status"))
		assert.Equal(t, "searching", m.HGet(ticketRecord(tickets[i]), "status"))
		assert.Contains(t, m.HGet(ticketRecord(tickets[i]), "data"), fmt.Sprintf(`"pfEntity":"pf-f%03d"`, i),
			"a requeued ticket keeps what it was created with")
	}
	assertFinishedRecord(t, m, ticketRecord(tickets[3]), "cancelled")
	assert.Equal(t, 3, queueDepth(t, srv), "three requeued, the leaver not")
}

// A token whose pfEntity is longer than a ticket stores is refused at the
// handshake, naming the field, and nothing is stored.
func TestOversizedPfEntityIsRefusedAtHandshake(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, nil)
	auth := &lobby.Authenticator{Secret: []byte(testJWTSecret)}
	token, err := auth.Issue(lobby.Identity{PlayerID: "long-entity", Name: "long", PlayFabEntity: strings.Repeat("A", 65)}, time.Hour)
	require.NoError(t, err)
	h := dial(t, srv.wsURL(), bearer(token))
	assert.Equal(t, http.StatusUnauthorized, h.status)
	assert.Contains(t, h.msg, "pfEntity")
	assert.Empty(t, keysLike(m, "{q:default}:t:", ""), "nothing stored")
}
