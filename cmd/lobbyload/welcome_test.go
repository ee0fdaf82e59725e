package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// applyWelcome counts what a reconnection's welcome left out of what the
// server acknowledged and nothing ended, and the verdict fails the run for
// it; what ended (a match.ready, an expiry) or came back is no loss.
func TestWelcomeMustKeepWhatWasAcknowledged(t *testing.T) {
	l := newLoad(config{URLs: []string{"ws://x"}}, io.Discard)
	queuedLobby := &lobbyObject{Status: "queued"}
	for _, tc := range []struct {
		name           string
		queued, lobby  bool
		matched        bool
		stopWait       string
		state          *welcomeState
		tickets, lobbs int
	}{
		{name: "a searching ticket left out", queued: true, state: &welcomeState{}, tickets: 1},
		{name: "no state at all", queued: true, state: nil, tickets: 1},
		{name: "the ticket back", queued: true, state: &welcomeState{Ticket: &ticketObject{Status: "searching"}}},
		{name: "its match instead", queued: true, state: &welcomeState{Match: &frame{Type: "match.ready"}}},
		{name: "the lobby queued it", queued: true, lobby: true, state: &welcomeState{Lobby: queuedLobby}},
		{name: "matched already", queued: true, matched: true, state: &welcomeState{}},
		{name: "expired already", queued: true, stopWait: "ticket expired", state: &welcomeState{}},
		{name: "never queued", state: &welcomeState{}},
		{name: "a lobby place left out", lobby: true, state: &welcomeState{}, lobbs: 1},
		{name: "the lobby back", lobby: true, state: &welcomeState{Lobby: &lobbyObject{Status: "open"}}},
		{name: "removed from the lobby", lobby: true, stopWait: "removed from the lobby", state: &welcomeState{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &player{load: l, name: "p", queued: tc.queued, inLobby: tc.lobby, stopWait: tc.stopWait}
			if tc.lobby {
				p.group = &lobbyGroup{}
			}
			if tc.matched {
				p.matchReadies = 1
			}
			p.applyWelcome(&frame{Type: "welcome", State: tc.state})
			assert.Equal(t, tc.tickets, p.droppedTickets, "tickets")
			assert.Equal(t, tc.lobbs, p.droppedLobbies, "lobby places")
		})
	}
	r := &report{DroppedTickets: 1}
	require.Error(t, r.verdict())
	assert.Contains(t, r.verdict().Error(), "1 ticket(s) and 0 lobby place(s)")
	assert.NoError(t, (&report{}).verdict())
}
