package main

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

	state := alice.Next("queue.state")
	for state.Obj("ticket").Str("status") == "searching" { // the join's own
		state = alice.Next("queue.state")
	}
	assert.Equal(t, lost, state.Obj("ticket").Str("ticketId"))
	assert.Equal(t, "cancelled", state.Obj("ticket").Str("status"))
	assert.Equal(t, "lost", state.Str("reason"))
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

// A lobby's lost ticket reopens the lobby, and every member is told.
func TestLostLobbyTicketReopensTheLobby(t *testing.T) {
	t.Parallel()
	srv, m := startOnMiniredis(t, map[string]string{"LOBBYD_TICKET_AUDIT": "1s"})
	owner := srv.player(t, "owner")
	guest := srv.player(t, "guest")
	code := owner.ok(t, "lobby.create", map[string]any{"queue": "default", "visibility": "private"}).Obj("lobby").Str("code")
	guest.ok(t, "lobby.join", map[string]any{"code": code})
	owner.ok(t, "lobby.ready", map[string]any{"ready": true})
	guest.ok(t, "lobby.ready", map[string]any{"ready": true})
	ticket := owner.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket").Str("ticketId")
	loseTicket(t, m, ticket, owner.id, guest.id)

	for _, p := range []*player{owner, guest} {
		for {
			state := p.Next("queue.state")
			if state.Obj("ticket").Str("status") == "searching" {
				continue
			}
			assert.Equal(t, "cancelled", state.Obj("ticket").Str("status"), p.name)
			assert.Equal(t, "lost", state.Str("reason"), p.name)
			break
		}
		for p.state(t).Str("status") != "open" { // the lobby.state that reopened it
		}
	}
	assert.EqualValues(t, 1, srv.counter(t, "lobbyd_tickets_lost_total"), "told once")
	owner.ok(t, "queue.join", map[string]any{"queue": "default"})
}
