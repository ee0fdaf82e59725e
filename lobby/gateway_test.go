package lobby_test

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

var auth = &lobby.Authenticator{Secret: []byte("lobby-test-secret-lobby-test-secret")}

// node is one gateway serving on its own HTTP server.
type node struct {
	gw  *lobby.Gateway
	url string
}

// startNode runs a gateway named id on st until the test ends.
func startNode(t *testing.T, st *store.Store, id string, tune func(*lobby.Gateway)) *node {
	t.Helper()
	gw := &lobby.Gateway{Store: st, Auth: auth, NodeID: id,
		Queues: &matchmaker.Service{Store: st, Queues: matchmaker.DefaultQueues(), NodeID: id}}
	if tune != nil {
		tune(gw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	select {
	case <-gw.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		srv.Close()
	})
	return &node{gw: gw, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

func token(t *testing.T, player string) string {
	t.Helper()
	tok, err := auth.Issue(lobby.Identity{PlayerID: player, Name: strings.ToUpper(player)}, time.Hour)
	require.NoError(t, err)
	return tok
}

func TestReplacementAcrossNodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		a, b := startNode(t, st, "node-a", nil), startNode(t, st, "node-b", nil)
		first, _ := lobbytest.Connect(t, a.url, token(t, "alice"))
		second, w := lobbytest.Connect(t, b.url, token(t, "alice"))
		assert.Equal(t, "node-b", w.Str("node"))
		first.Next("session.replaced")
		assert.Equal(t, lobby.CloseSessionReplaced, first.CloseCode())
		assert.True(t, second.Request("ping", nil).OK())
	})
}

// TestMatchesFoundInOneCall: the matches of a committed chunk are
// announced together, each player getting their own ticket's queue.state
// and their own match's match.found, on whichever node holds them.
func TestMatchesFoundInOneCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		a, b := startNode(t, st, "node-a", nil), startNode(t, st, "node-b", nil)
		var ms []domain.Match
		clients := map[string]*lobbytest.Client{}
		for i := range 3 {
			m := domain.Match{ID: fmt.Sprint("m-", i), Queue: "default"}
			for j := range 2 {
				p := fmt.Sprintf("p%d-%d", i, j)
				m.Players = append(m.Players, domain.Player{ID: p, Name: p, TicketID: "t-" + p})
				url := a.url
				if j == 1 {
					url = b.url
				}
				clients[p], _ = lobbytest.Connect(t, url, token(t, p))
			}
			ms = append(ms, m)
		}
		require.NoError(t, (&lobby.Notifier{Store: st}).MatchesFound(context.Background(), ms))
		for _, m := range ms {
			for _, p := range m.Players {
				c := clients[p.ID]
				state := c.Next("queue.state")
				assert.Equal(t, "t-"+p.ID, state.Obj("ticket").Str("ticketId"))
				assert.Equal(t, m.ID, state.Obj("ticket").Str("matchId"))
				assert.Equal(t, m.ID, c.Next("match.found").Str("matchId"), p.ID)
				c.Request("ping", nil)
				assert.Zero(t, c.Count("match.found"), "one match.found each")
			}
		}
	})
}

func TestMatchEventsReachPlayersOnEveryNode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		a, b := startNode(t, st, "node-a", nil), startNode(t, st, "node-b", nil)
		ca, _ := lobbytest.Connect(t, a.url, token(t, "p1"))
		cb, _ := lobbytest.Connect(t, b.url, token(t, "p2"))
		m := domain.Match{ID: "m-1", Queue: "default", Regions: []string{"WestUs"}, State: domain.MatchReady,
			Players: []domain.Player{{ID: "p1", Name: "P1", TicketID: "t1"}, {ID: "p2", Name: "P2", TicketID: "t2"}},
			PartyID: "m-1", NetworkDescriptor: "ZGVzYw==", InvitationID: "inv-1"}
		n := &lobby.Notifier{Store: st}
		ctx := context.Background()
		require.NoError(t, n.MatchesFound(ctx, []domain.Match{m}))
		require.NoError(t, n.MatchReady(ctx, m))
		require.NoError(t, n.MatchReady(ctx, m), "a repeated delivery (a re-run job) is harmless")
		for _, c := range []*lobbytest.Client{ca, cb} {
			state := c.Next("queue.state")
			assert.Equal(t, "matched", state.Obj("ticket").Str("status"))
			assert.Equal(t, "m-1", c.Next("match.found").Str("matchId"))
			ready := c.Next("match.ready")
			assert.Equal(t, "ZGVzYw==", ready.Str("networkDescriptor"))
			assert.Equal(t, "inv-1", ready.Str("invitationId"))
			c.Request("ping", nil)
			assert.Zero(t, c.Count("match.ready"), "once per connection")
		}
	})
}

// A result stored while its publish was lost (the node's subscription was
// reconnecting) still reaches the connected player, through the sweep.
func TestSweepRedeliversALostPublish(t *testing.T) {
	st := storetest.Embedded(t)
	a := startNode(t, st, "node-a", func(g *lobby.Gateway) { g.PresenceTTL = 300 * time.Millisecond })
	c, _ := lobbytest.Connect(t, a.url, token(t, "p1"))
	m := domain.Match{ID: "m-lost", Queue: "default", Players: []domain.Player{{ID: "p1", Name: "P1"}}}
	payload := json.RawMessage(`{"type":"match.ready","matchId":"m-lost","queue":"default"}`)
	require.NoError(t, st.DeliverMatch(context.Background(), m, payload)) // stored, never published
	assert.Equal(t, "m-lost", c.Next("match.ready").Str("matchId"))
	storetest.Eventually(t, 5*time.Second, func() bool {
		_, _, err := st.PendingMatch(context.Background(), "p1")
		return err == domain.ErrNotFound
	}, "the written result is acknowledged")
	c.Request("ping", nil)
	assert.Zero(t, c.Count("match.ready"))
}

// A slow consumer is closed with 4004, and the close is counted and logged
// once per connection, however many pushes found its queue full.
func TestSlowConsumerIsClosed4004(t *testing.T) {
	st := storetest.Embedded(t)
	reg, logs := prometheus.NewRegistry(), &testutil.SyncBuffer{}
	a := startNode(t, st, "node-a", func(g *lobby.Gateway) {
		g.SendQueue = 1
		g.Registerer, g.Logger = reg, slog.New(slog.NewTextHandler(logs, nil))
	})
	c, _ := lobbytest.Connect(t, a.url, token(t, "slow"))
	// 200 events in one node message: the hub queues them faster than any
	// socket drains them, and a queue of 1 overflows, many times over.
	burst := make([]domain.Addressed, 200)
	for i := range burst {
		burst[i] = domain.Addressed{To: []string{"slow"}, Event: json.RawMessage(`{"type":"queue.state","ticket":{}}`)}
	}
	require.NoError(t, st.SendToPlayers(context.Background(), burst))
	assert.Equal(t, lobby.CloseSlowConsumer, c.CloseCode())
	// Counted and logged before the close frame was sent: no wait needed.
	assert.EqualValues(t, 1, gathered(t, reg, "lobbyd_slow_consumer_disconnects_total", nil))
	assert.EqualValues(t, 1, gathered(t, reg, "lobbyd_abuse_disconnects_total", map[string]string{"reason": "slow_consumer"}))
	var warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "connection closed for abuse") {
			warnings = append(warnings, line)
		}
	}
	if assert.Len(t, warnings, 1, "one warning for the connection:\n%s", logs) {
		assert.Contains(t, warnings[0], "level=WARN")
		assert.Contains(t, warnings[0], "player=slow")
		assert.Contains(t, warnings[0], "reason=slow_consumer")
	}
}

// gathered is the value of reg's metric name of the series with labels
// (nil: every series); -1 when there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	if v, ok := testutil.Metric(t, reg, name, labels); ok {
		return v
	}
	return -1
}

// TestRequestWithFollowUpOnASmallQueue: a request whose reply and
// follow-up event do not fit in the send queue together still gets both,
// and the connection stays open: the request writes what it queued
// instead of waiting for room that only its own write would make.
func TestRequestWithFollowUpOnASmallQueue(t *testing.T) {
	st := storetest.Embedded(t)
	a := startNode(t, st, "node-a", func(g *lobby.Gateway) { g.SendQueue = 1 })
	c, _ := lobbytest.Connect(t, a.url, token(t, "p1"))
	require.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK())
	left := c.Request("queue.leave", nil) // its reply, then a queue.state (cancelled)
	require.True(t, left.OK(), "%v", left)
	assert.Equal(t, "cancelled", c.Next("queue.state").Obj("ticket").Str("status"))
	assert.True(t, c.Request("ping", nil).OK(), "the connection stays open")
}

func TestQueueStateWithoutCreationTimeOmitsIt(t *testing.T) {
	st := storetest.Embedded(t)
	a := startNode(t, st, "node-a", nil)
	c, _ := lobbytest.Connect(t, a.url, token(t, "p1"))
	m := domain.Match{ID: "m-1", Queue: "default", Players: []domain.Player{{ID: "p1", Name: "P1", TicketID: "t1"}}}
	require.NoError(t, (&lobby.Notifier{Store: st}).MatchesFound(context.Background(), []domain.Match{m}))
	ticket := c.Next("queue.state").Obj("ticket")
	assert.Equal(t, "t1", ticket.Str("ticketId"))
	_, present := ticket["createdAt"]
	assert.False(t, present, "an unknown time is omitted, never an empty string")
}

// A lobby queues with its members' mean skill.
func TestLobbyTicketSkillIsMembersMean(t *testing.T) {
	st := storetest.Embedded(t)
	a := startNode(t, st, "node-a", nil)
	owner, _ := lobbytest.Connect(t, a.url, token(t, "owner"))
	mate, _ := lobbytest.Connect(t, a.url, token(t, "mate"))
	created := owner.Request("lobby.create", map[string]any{"queue": "default", "skill": 1000})
	require.True(t, created.OK(), "%v", created)
	require.True(t, mate.Request("lobby.join", map[string]any{"code": created.Obj("data").Obj("lobby").Str("code"), "skill": 1400}).OK())
	require.True(t, owner.Request("lobby.ready", map[string]any{"ready": true, "skill": 1100}).OK(), "ready may update the skill")
	require.True(t, mate.Request("lobby.ready", map[string]any{"ready": true}).OK())
	assert.Equal(t, "bad_request", mate.Request("lobby.ready", map[string]any{"ready": true, "skill": "high"}).ErrorCode())
	require.True(t, owner.Request("queue.join", map[string]any{"queue": "default", "skill": 9999}).OK())
	ticket, err := st.PlayerTicket(context.Background(), "mate")
	require.NoError(t, err)
	assert.Equal(t, 1250.0, ticket.Skill, "mean of 1100 and 1400; the owner's queue.join skill is not the lobby's")
	assert.Len(t, ticket.Players, 2)
}

// A member leaves a queued lobby and Redis's reply to the leave is lost (so
// go-redis sends it again): the lobby's ticket is still cancelled and the
// leaver is free to queue alone.
func TestLobbyLeaveWithALostReply(t *testing.T) {
	l := storetest.StartLossyRedis(t)
	a := startNode(t, l.Store, "node-a", nil)
	alice, _ := lobbytest.Connect(t, a.url, token(t, "alice"))
	bob, _ := lobbytest.Connect(t, a.url, token(t, "bob"))
	code := alice.Request("lobby.create", map[string]any{"queue": "default"}).Obj("data").Obj("lobby").Str("code")
	require.True(t, bob.Request("lobby.join", map[string]any{"code": code}).OK())
	require.True(t, alice.Request("lobby.ready", map[string]any{"ready": true}).OK())
	require.True(t, bob.Request("lobby.ready", map[string]any{"ready": true}).OK())
	require.True(t, alice.Request("queue.join", map[string]any{"queue": "default"}).OK())

	// The leave is the first lobby write after the ticket's cancel.
	cas, err := os.ReadFile("../store/scripts/lobby_cas.lua")
	require.NoError(t, err)
	l.LoseReplyTo(fmt.Sprintf("%x", sha1.Sum(cas)))
	require.True(t, bob.Request("lobby.leave", nil).OK())
	require.Equal(t, 1, l.Lost())
	ctx := context.Background()
	_, err = l.Store.PlayerTicket(ctx, "bob")
	assert.ErrorIs(t, err, domain.ErrNotFound, "the lobby's ticket was cancelled")
	lobbyNow, err := l.Store.PlayerLobby(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, domain.LobbyOpen, lobbyNow.Status)
	assert.Equal(t, []string{"alice"}, lobbyNow.MemberIDs())
	assert.True(t, bob.Request("queue.join", map[string]any{"queue": "default"}).OK(), "bob may queue alone")
}
