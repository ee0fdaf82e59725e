package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/store/storetest"
)

// loseTicket removes a ticket of the default queue from Redis as a
// failover or a restart without persistence would: its record, its place
// in the queue and, when claims is true, its players' claims (a single
// Redis loses them together; a cluster may keep them on another primary).
func loseTicket(t *testing.T, m *miniredis.Miniredis, ticketID string, claims ...string) {
	t.Helper()
	require.True(t, m.Del(ticketRecord(ticketID)), "the ticket's record was there")
	_, err := m.ZRem("{q:default}:searching", ticketID)
	require.NoError(t, err)
	m.HDel("{q:default}:searching:data", ticketID)
	for _, player := range claims {
		m.Del("{p:" + player + "}:ticket")
	}
}

// A ticket whose record Redis lost after its queue.join was answered is
// not waited on for good: the node that told the player it was searching
// finds it gone at its next audit and tells them queue.state cancelled,
// reason lost, once; the player queues again.
func TestLostTicketIsAnswered(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "1s"})
	alice := srv.player(t, "alice")
	bob := srv.player(t, "bob")
	lost := alice.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
	kept := bob.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
	loseTicket(t, m, lost, alice.id)

	nextLost(t, alice, lost)
	assert.Equal(t, "cancelled", m.HGet(ticketRecord(lost), "status"), "marked once for every node")
	assert.EqualValues(t, 1, srv.counter(t, "lobbyd_tickets_lost_total"))

	again := alice.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket")
	assert.Equal(t, "searching", again.Str("status"), "the player queues again")
	assert.NotEqual(t, lost, again.Str("ticketId"))
	assert.Equal(t, "searching", m.HGet(ticketRecord(kept), "status"), "a ticket still there is left alone")
	// The audit that found alice's ticket gone read bob's too.
	require.True(t, bob.Request("ping", nil).OK())
	bob.Drain()
	assert.Zero(t, bob.Count("queue.state"), "bob's ticket is there: no event")
}

// queuedLobby makes a lobby of two in the default queue, both ready, and
// queues it: its owner, its guest and its ticket.
func queuedLobby(t *testing.T, srv *server) (owner, guest *player, ticket string) {
	t.Helper()
	owner, guest = srv.player(t, "owner"), srv.player(t, "guest")
	code := owner.ok(t, "lobby.create", map[string]any{"queue": "default", "visibility": "private"}).Obj("lobby").Str("code")
	guest.ok(t, "lobby.join", map[string]any{"code": code})
	owner.ok(t, "lobby.ready", map[string]any{"ready": true})
	guest.ok(t, "lobby.ready", map[string]any{"ready": true})
	return owner, guest, owner.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
}

// A lobby's lost ticket reopens the lobby, and every member is told.
func TestLostLobbyTicketReopensTheLobby(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "1s"})
	owner, guest, ticket := queuedLobby(t, srv)
	loseTicket(t, m, ticket, owner.id, guest.id)

	for _, p := range []*player{owner, guest} {
		nextLost(t, p, ticket)
		for p.state(t).Str("status") != "open" { // the lobby.state that reopened it
		}
	}
	assert.EqualValues(t, 1, srv.counter(t, "lobbyd_tickets_lost_total"), "told once")
	owner.ok(t, "queue.join", map[string]any{"queue": "default"})
}

// nextLost waits for p's queue.state that is not its join's searching one,
// and checks it says the ticket was lost.
func nextLost(t *testing.T, p *player, ticketID string) {
	t.Helper()
	for {
		state := p.Next("queue.state")
		if state.Obj("ticket").Str("status") == "searching" {
			continue
		}
		assert.Equal(t, ticketID, state.Obj("ticket").Str("ticketId"), p.name)
		assert.Equal(t, "cancelled", state.Obj("ticket").Str("status"), p.name)
		assert.Equal(t, "lost", state.Str("reason"), p.name)
		return
	}
}

// A ticket that ended as tickets do is never reported lost, even once its
// final status has expired from Redis before any audit saw it: the
// queue.state that ended it ends the watch. A player still searching in
// another queue is watched beside it: once the audits count that one
// alone, an audit ran that no longer watched the ended ticket, and any
// lost report (a watch the event did not end meets the missing record)
// would have come before it.
func TestEndedTicketIsNotReportedLost(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(file, []byte(adminQueues), 0o600))
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "5s", "LOBBYD_CONFIG": file})
	brief := srv.player(t, "brief")
	waiting := srv.player(t, "waiting")
	ticket := brief.ok(t, "queue.join", map[string]any{"queue": "brief"}).Obj("ticket").Str("ticketId")
	waiting.ok(t, "queue.join", map[string]any{"queue": "default"})

	expired := brief.Next("queue.state") // after 1 s, before the first audit
	require.Equal(t, "expired", expired.Obj("ticket").Str("status"))
	require.True(t, m.Del("{q:brief}:t:"+ticket), "its final status gone, as after a minute")
	storetest.Eventually(t, 15*time.Second, func() bool { return srv.counter(t, "lobbyd_tickets_watched") == 1 },
		"an audit watches the searching ticket alone")
	require.True(t, brief.Request("ping", nil).OK())
	brief.Drain()
	assert.Zero(t, brief.Count("queue.state"), "no second end, no lost")
	assert.Zero(t, srv.counter(t, "lobbyd_tickets_lost_total"))
}

// A queued lobby whose owner is away when Redis loses its ticket is not
// stuck: a member watches the ticket from its queue.state, and the audit
// tells everyone and reopens the lobby.
func TestLostLobbyTicketWithTheOwnerAway(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "1s"})
	owner, guest, ticket := queuedLobby(t, srv)
	require.Equal(t, "searching", guest.Next("queue.state").Obj("ticket").Str("status"), "the member is told the lobby queued")
	owner.Conn.Close() // away, within the reconnect grace
	storetest.Eventually(t, 10*time.Second, func() bool { return srv.counter(t, "lobbyd_connections") == 1 }, "the owner's socket is gone")
	loseTicket(t, m, ticket) // the claims survive (another primary)

	nextLost(t, guest, ticket)
	for guest.state(t).Str("status") != "open" {
	}
	assert.EqualValues(t, 1, srv.counter(t, "lobbyd_tickets_lost_total"))
}

// A player back after Redis lost their ticket while they were away learns
// it from welcome (no ticket) and then from queue.state: their claim still
// names the ticket, which the audit finds gone.
func TestLostWhileAwayIsAnsweredAfterWelcome(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "1s"})
	p := srv.player(t, "away")
	ticket := p.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
	p.Conn.Close()
	storetest.Eventually(t, 10*time.Second, func() bool { return srv.counter(t, "lobbyd_connections") == 0 }, "the socket is gone")
	loseTicket(t, m, ticket)

	c, welcome := srv.connect(t, p.token)
	assert.Nil(t, welcome.Obj("state")["ticket"], "welcome shows no ticket")
	back := &player{Client: c, id: p.id, name: p.name, token: p.token}
	nextLost(t, back, ticket)
	back.ok(t, "queue.join", map[string]any{"queue": "default"})
}

// A lobby lost with its ticket is no reason to tell its owner again and
// again: the owner is told once, and later audits say nothing more.
func TestLostTicketOfALostLobbyIsToldOnce(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "1s"})
	owner, _, ticket := queuedLobby(t, srv)
	lobbyID := owner.state(t).Str("lobbyId")
	loseTicket(t, m, ticket, owner.id)
	require.True(t, m.Del("{l:"+lobbyID+"}"), "the lobby's record was there")

	nextLost(t, owner, ticket)
	storetest.Eventually(t, 10*time.Second, func() bool { return srv.counter(t, "lobbyd_tickets_watched") == 0 },
		"an audit after the telling watches nothing")
	require.True(t, owner.Request("ping", nil).OK())
	owner.Drain()
	assert.Zero(t, owner.Count("queue.state"), "told once")
	assert.EqualValues(t, 1, srv.counter(t, "lobbyd_tickets_lost_total"))
}
