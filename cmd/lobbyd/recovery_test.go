package main

import (
	"crypto/sha1"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// heldPlayFab is the fake PlayFab behind a gate: RequestPartyService is
// answered by the fake at once (the party exists, and is counted), but the
// reply reaches lobbyd only when the test opens the gate.
type heldPlayFab struct {
	fake *fakeplayfab.Server
	URL  string
	gate chan struct{}
	once sync.Once
}

func startHeldPlayFab(t *testing.T) *heldPlayFab {
	t.Helper()
	h := &heldPlayFab{gate: make(chan struct{}),
		fake: fakeplayfab.New(fakeplayfab.Config{TitleID: "E2E", SecretKey: "e2e-title-secret", Logger: quietFake})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/RequestPartyService") {
			h.fake.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.fake.ServeHTTP(rec, r)
		select {
		case <-h.gate:
		case <-r.Context().Done():
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.open) // before srv.Close: no handler stays blocked
	h.URL = srv.URL
	return h
}

func (h *heldPlayFab) open() { h.once.Do(func() { close(h.gate) }) }

// createdParty waits until PlayFab has created exactly one party and
// returns its PartyId (the match id).
func (h *heldPlayFab) createdParty(t *testing.T) string {
	t.Helper()
	var id string
	storetest.Eventually(t, 15*time.Second, func() bool {
		for pid := range h.fake.Stats().Successes {
			id = pid
		}
		return id != ""
	}, "PlayFab created the match's party")
	require.Len(t, h.fake.Stats().Successes, 1)
	return id
}

func startOnRedis(t *testing.T, redisURL, playFabURL string, env map[string]string) *server {
	t.Helper()
	full := map[string]string{
		"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": redisURL,
		"LOBBYD_PLAYFAB_TITLE_ID": "E2E", "LOBBYD_PLAYFAB_SECRET_KEY": "e2e-title-secret", "LOBBYD_PLAYFAB_BASE_URL": playFabURL,
	}
	for k, v := range env {
		full[k] = v
	}
	return startServer(t, full)
}

// Redis restarts (keeping its data) just after PlayFab created a match's
// party: storing the result fails while Redis is away and is retried, so
// once Redis is back every player gets that party. Exactly one
// RequestPartyService for the match, no orphan.
func TestPartyStoredAcrossRedisRestart(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	pf := startHeldPlayFab(t)
	srv := startOnRedis(t, r.URL, pf.URL, nil)
	clients := queuePlayers(t, srv, "r", 4)
	matchID := pf.createdParty(t)

	require.NoError(t, r.StopKeepingData())
	pf.open() // PlayFab answers while Redis is down
	storetest.Eventually(t, 20*time.Second, func() bool {
		return srv.metric(t, "lobbyd_allocation_write_retries_total") >= 1
	}, "storing the party failed and was retried")
	require.NoError(t, r.Start())

	descriptor, _ := pf.fake.Descriptor(matchID)
	for _, c := range clients {
		c.Wait = 40 * time.Second // the publish may be lost while lobbyd resubscribes: then the sweep delivers
		ready := c.Next("match.ready")
		assert.Equal(t, matchID, ready.Str("matchId"))
		assert.Equal(t, descriptor, ready.Str("networkDescriptor"), "the party PlayFab created during the outage")
	}
	assert.Equal(t, 1, pf.fake.Stats().Parties[matchID], "one RequestPartyService for the match")
	assert.EqualValues(t, 0, srv.metric(t, "lobbyd_orphan_parties_total"))
}

// Redis stays away past the deadline after PlayFab created a party: the
// party is counted as an orphan and logged once, at warn, with its PartyId.
func TestPartyOrphanedWhenRedisStaysDown(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	pf := startHeldPlayFab(t)
	srv := startOnRedis(t, r.URL, pf.URL, map[string]string{"LOBBYD_ALLOCATION_DEADLINE": "2s"})
	queuePlayers(t, srv, "o", 4)
	matchID := pf.createdParty(t)

	r.Stop()
	pf.open()
	storetest.Eventually(t, 20*time.Second, func() bool {
		return srv.metric(t, "lobbyd_orphan_parties_total") == 1
	}, "the party whose result could not be stored was counted")
	require.NoError(t, r.Start())
	srv.shutdown(t)

	var lines []string
	for _, line := range strings.Split(srv.stderr.String(), "\n") {
		if strings.Contains(line, "party left orphaned") {
			lines = append(lines, line)
		}
	}
	require.Len(t, lines, 1, "logged once")
	assert.Contains(t, lines[0], "level=WARN")
	assert.Contains(t, lines[0], "party="+matchID)
}

// A player's match.ready is written to their socket but its
// acknowledgement never reaches Redis. The copy left behind is the
// player's latest match until they queue again; after that, no connection
// of theirs is welcomed with it, and a later match replaces it.
func TestNoEarlierRoundInWelcomeAfterALostAck(t *testing.T) {
	t.Parallel()
	l := storetest.StartLossyRedis(t)
	srv, _ := startWithFake(t, l.URL)
	src, err := os.ReadFile(filepath.Join("..", "..", "store", "scripts", "ack_pending_match.lua"))
	require.NoError(t, err)
	l.RefuseCommandsWith(fmt.Sprintf("%x", sha1.Sum(src))) // every ack fails

	tokens := make([]string, 4)
	clients := make([]*lobbytest.Client, 4)
	for i := range clients {
		tokens[i], _ = srv.devToken(t, fmt.Sprint("round-", i), "")
		clients[i], _ = srv.connect(t, tokens[i])
	}
	queueAll := func() string {
		t.Helper()
		for _, c := range clients {
			require.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK())
		}
		var id string
		for _, c := range clients {
			id = c.Next("match.ready").Str("matchId")
		}
		return id
	}
	reconnect := func() lobbytest.Frame {
		t.Helper()
		c, welcome := srv.connect(t, tokens[0])
		clients[0] = c
		return welcome.Obj("state")
	}

	first := queueAll()
	storetest.Eventually(t, 10*time.Second, func() bool { return l.Refused() > 0 }, "the acks were refused")
	assert.Equal(t, first, reconnect().Obj("match").Str("matchId"), "unacknowledged: shown again until the player queues")

	require.True(t, clients[0].Request("queue.join", map[string]any{"queue": "default"}).OK())
	state := reconnect()
	assert.Nil(t, state["match"], "an earlier round's match is never in welcome.state.match: %v", state)
	assert.Equal(t, "searching", state.Obj("ticket").Str("status"))

	require.True(t, clients[0].Request("queue.leave", nil).OK())
	assert.Nil(t, reconnect()["match"], "nor after the new ticket is cancelled")

	second := queueAll()
	require.NotEqual(t, first, second)
	assert.Equal(t, second, reconnect().Obj("match").Str("matchId"), "the latest match, not an earlier one")
}
