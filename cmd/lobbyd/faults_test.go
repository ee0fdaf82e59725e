package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

var quietFake = slog.New(slog.DiscardHandler)

// queuePlayers connects n players (with PlayFab entities "pf-<name>") and
// queues them in the default queue; it returns them in joining order.
func queuePlayers(t *testing.T, srv *server, prefix string, n int) []*lobbytest.Client {
	t.Helper()
	clients := make([]*lobbytest.Client, n)
	for i := range clients {
		name := fmt.Sprintf("%s%03d", prefix, i)
		body := strings.NewReader(fmt.Sprintf(`{"name":%q,"pfEntity":"pf-%s"}`, name, name))
		resp, err := http.Post(srv.URL+"/v1/dev/token", "application/json", body)
		require.NoError(t, err)
		var tok struct{ Token string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
		resp.Body.Close()
		clients[i], _ = srv.connect(t, tok.Token)
	}
	for _, c := range clients {
		r := c.Request("queue.join", map[string]any{"queue": "default"})
		require.True(t, r.OK(), "queue.join: %v", r)
	}
	return clients
}

// TestFaultRun: 200 matches against a PlayFab answering 30 % 503, 10 % 429
// and 50 ms ± 25 ms late. Every player ends with match.ready or
// match.failed; no PartyId succeeds twice; every descriptor is its own
// party's; every invitation is restricted to exactly the match's players.
func TestFaultRun(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("800 sockets")
	}
	srv, fake := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake, Faults: fakeplayfab.Faults{
		ErrorRate: 0.3, ThrottleRate: 0.1, Latency: 50 * time.Millisecond, Jitter: 25 * time.Millisecond,
		RetryAfter: 100 * time.Millisecond,
	}}, map[string]string{"LOBBYD_LOG_LEVEL": "error"})
	const players = 800
	clients := queuePlayers(t, srv, "f", players)

	type result struct{ party, invitation, descriptor string }
	byMatch := map[string]map[string]result{}
	pfOf := map[string][]string{}
	failed := 0
	for _, c := range clients {
		// A match may take up to the 30s allocation deadline when PlayFab
		// keeps failing: retries back off exponentially.
		c.Wait = 40 * time.Second
		f := c.NextOf("match.ready", "match.failed")
		if f.Str("type") == "match.failed" {
			failed++
			continue
		}
		id := f.Str("matchId")
		if byMatch[id] == nil {
			byMatch[id] = map[string]result{}
			for _, p := range f["players"].([]any) {
				pfOf[id] = append(pfOf[id], "pf-"+p.(map[string]any)["name"].(string))
			}
		}
		byMatch[id][c.Conn.LocalAddr().String()] = result{f.Str("partyId"), f.Str("invitationId"), f.Str("networkDescriptor")}
	}
	t.Logf("%d matches ready, %d players told match.failed", len(byMatch), failed)

	stats := fake.Stats()
	for id, n := range stats.Successes {
		assert.LessOrEqual(t, n, 1, "PartyId %s succeeded %d times", id, n)
	}
	for id, members := range byMatch {
		var first result
		for _, r := range members {
			if first.party == "" {
				first = r
			}
			assert.Equal(t, first, r, "members of %s agree", id)
		}
		info, err := fakeplayfab.DecodeDescriptor(first.descriptor)
		require.NoError(t, err)
		assert.Equal(t, id, info.PartyID, "match %s carries its own party's descriptor", id)

		raw, ok := fake.LastRequest(id)
		require.True(t, ok)
		var req struct {
			NetworkConfiguration struct {
				MaxUsers                     int
				PartyInvitationConfiguration struct {
					Revocability string
					EntityKeys   []struct{ Id, Type string }
				}
			}
		}
		require.NoError(t, json.Unmarshal(raw, &req))
		assert.Equal(t, 4, req.NetworkConfiguration.MaxUsers)
		inv := req.NetworkConfiguration.PartyInvitationConfiguration
		assert.Equal(t, "Anyone", inv.Revocability, "the Party SDK needs the initial invitation revocable by Anyone")
		var keys []string
		for _, k := range inv.EntityKeys {
			assert.Equal(t, "title_player_account", k.Type)
			keys = append(keys, k.Id)
		}
		assert.ElementsMatch(t, pfOf[id], keys, "the invitation admits exactly the match's players")
	}
	assert.Equal(t, players, 4*len(byMatch)+failed, "every player heard how their match ended")
	assert.Positive(t, stats.Throttled+stats.Errors, "faults were injected")

	// What an operator sees on /metrics matches what PlayFab saw.
	ok := srv.metric(t, `lobbyd_playfab_calls_total{api="RequestPartyService",outcome="ok"}`)
	assert.EqualValues(t, len(stats.Successes), ok, "successful calls")
	assert.EqualValues(t, stats.Errors,
		srv.counter(t, `lobbyd_playfab_calls_total{api="RequestPartyService",outcome="ServiceUnavailable"}`)+
			srv.counter(t, `lobbyd_playfab_calls_total{api="RequestPartyService",outcome="InternalServerError"}`),
		"5xx answers, by PlayFab's error name")
	assert.EqualValues(t, stats.Throttled, srv.counter(t, `lobbyd_playfab_calls_total{api="RequestPartyService",outcome="APIClientRequestRateLimitExceeded"}`))
	assert.EqualValues(t, stats.Errors+stats.Throttled, srv.metric(t, `lobbyd_playfab_retries_total{api="RequestPartyService"}`), "every fault was retried")
	assert.EqualValues(t, stats.RequestPartyService, srv.metric(t, `lobbyd_playfab_call_seconds_count{api="RequestPartyService"}`))
	assert.EqualValues(t, 1, srv.metric(t, `lobbyd_playfab_calls_total{api="GetEntityToken",outcome="ok"}`))
	assert.EqualValues(t, failed/4, srv.metric(t, "lobbyd_matches_failed_total"))
	assert.EqualValues(t, 0, srv.metric(t, "lobbyd_allocations_in_flight"), "nothing left in flight")
}

// A player who leaves while their match allocates is not requeued when the
// allocation fails, and hears nothing more of that match; the others are
// requeued and told so.
func TestLeaverIsNotRequeued(t *testing.T) {
	t.Parallel()
	srv, _ := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake, Faults: fakeplayfab.Faults{ErrorRate: 1}},
		map[string]string{"LOBBYD_ALLOCATION_DEADLINE": "1500ms", "LOBBYD_LOG_LEVEL": "error"})
	clients := queuePlayers(t, srv, "l", 4)
	var matchID string
	for _, c := range clients {
		matchID = c.Next("match.found").Str("matchId")
		matched := c.Next("queue.state").Obj("ticket")
		assert.Equal(t, "matched", matched.Str("status"))
		assert.Equal(t, matchID, matched.Str("matchId"))
	}
	leaver := clients[3]
	r := leaver.Request("queue.leave", nil)
	require.True(t, r.OK(), "leaving while the match allocates: %v", r)
	cancelled := leaver.Next("queue.state").Obj("ticket")
	assert.Equal(t, "cancelled", cancelled.Str("status"))
	assert.Equal(t, matchID, cancelled.Str("matchId"), "the cancelled ticket names the match its player left")

	for _, c := range clients[:3] {
		f := c.Next("match.failed")
		assert.Equal(t, true, f["requeued"])
		requeued := c.Next("queue.state").Obj("ticket")
		assert.Equal(t, "searching", requeued.Str("status"))
		assert.Empty(t, requeued.Str("matchId"), "a requeued ticket is in no match")
	}
	leaver.Request("ping", nil)
	assert.Zero(t, leaver.Count("match.failed"), "the leaver hears nothing more of that match")
	resp, err := http.Get(srv.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var qs struct{ Queues []struct{ Depth int } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&qs))
	assert.Equal(t, 3, qs.Queues[0].Depth, "three requeued, the leaver not")
	assert.EqualValues(t, 1, srv.metric(t, "lobbyd_matches_failed_total"))
}

// Tokens that expire every 2 seconds during a stream of matches: no match
// fails, and token fetches stay near one per lifetime. Two lifetimes prove
// it through lobbyd on the real clock; partyalloc's
// TestRequestPartyAcrossTokenExpiries proves it over many on a fake one.
func TestEntityTokenExpiryDuringMatches(t *testing.T) {
	t.Parallel()
	const lifetime = 2 * time.Second
	srv, fake := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake, TokenLifetime: lifetime}, nil)
	start := time.Now()
	var matches int
	for round := 0; time.Since(start) < 2*lifetime; round++ {
		for _, c := range queuePlayers(t, srv, fmt.Sprintf("r%02d-", round), 4) {
			f := c.NextOf("match.ready", "match.failed")
			require.Equal(t, "match.ready", f.Str("type"), "no match fails across token expiries: %v", f)
		}
		matches++
	}
	elapsed := time.Since(start)
	fetches := fake.Stats().GetEntityToken
	t.Logf("%d matches over %v with %d token fetches", matches, elapsed, fetches)
	assert.GreaterOrEqual(t, fetches, 2, "tokens did expire and were replaced")
	maxFetches := int(elapsed/(lifetime*4/5)) + 2
	assert.LessOrEqual(t, fetches, maxFetches, "about one fetch per lifetime")
}

// The title secret key and the JWT secret never appear in anything lobbyd
// writes or answers, through successes, PlayFab failures and a wrong key.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const titleSecret = "TITLE-SECRET-c0ffee-9a7b3d"
	const jwtSecret = "JWT-SECRET-deadbeef-0123456789abcdef"
	fake := fakeplayfab.New(fakeplayfab.Config{TitleID: "LEAK", SecretKey: "the-right-key", Logger: quietFake,
		Faults: fakeplayfab.Faults{ErrorRate: 0.5, RetryAfter: 50 * time.Millisecond}})
	fsrv := newFakeServer(t, fake)
	srv := startServer(t, map[string]string{
		"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": jwtSecret, "LOBBYD_LOG_LEVEL": "debug",
		"LOBBYD_PLAYFAB_TITLE_ID": "LEAK", "LOBBYD_PLAYFAB_SECRET_KEY": titleSecret, "LOBBYD_PLAYFAB_BASE_URL": fsrv,
		"LOBBYD_ALLOCATION_DEADLINE": "2s",
	})
	var seen strings.Builder
	// The fake refuses lobbyd's key: every allocation fails (401 NotAuthenticated).
	for _, c := range queuePlayers(t, srv, "s", 8) {
		f := c.NextOf("match.ready", "match.failed")
		assert.Equal(t, "match.failed", f.Str("type"))
		raw, _ := json.Marshal(f)
		seen.Write(raw)
		seen.WriteString(fmt.Sprint(c.Request("queue.leave", nil)))
	}
	for _, path := range []string{"/metrics", "/v1/queues", "/readyz", "/healthz", "/v1/ws"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.Write(body)
	}
	srv.shutdown(t)
	output := seen.String() + srv.stdout.String() + srv.stderr.String()
	require.Contains(t, srv.stderr.String(), "NotAuthenticated", "the failure was logged")
	for _, secret := range []string{titleSecret, jwtSecret} {
		assert.NotContains(t, output, secret)
	}
}

// newFakeServer serves fake on a loopback port until the test ends.
func newFakeServer(t *testing.T, fake *fakeplayfab.Server) string {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return srv.URL
}

// PlayFab creates the party but the reply is lost, in both of the fake's
// modes: deduplicating on PartyId, or a new party per call (PlayFab does not
// promise PartyId is an idempotency key). Either way each player gets one
// match.ready and a match's members agree on one party.
func TestDroppedRepliesInBothModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []fakeplayfab.Mode{fakeplayfab.ModeDedupe, fakeplayfab.ModeNewParty} {
		t.Run(mode.String(), func(t *testing.T) {
			srv, fake := startWithFakeConfig(t, fakeplayfab.Config{Mode: mode, Logger: quietFake,
				Faults: fakeplayfab.Faults{DropResponseRate: 0.6}}, map[string]string{"LOBBYD_LOG_LEVEL": "error"})
			clients := queuePlayers(t, srv, "d", 40)
			descriptors := map[string]string{}
			for _, c := range clients {
				// Dropped replies are retried with back-off: a match may take
				// up to the 30s allocation deadline.
				c.Wait = 40 * time.Second
				ready := c.Next("match.ready")
				id := ready.Str("matchId")
				if d, ok := descriptors[id]; ok {
					assert.Equal(t, d, ready.Str("networkDescriptor"), "members of %s share one party", id)
				}
				descriptors[id] = ready.Str("networkDescriptor")
				c.Request("ping", nil)
				assert.Zero(t, c.Count("match.ready"), "one match.ready per player")
			}
			require.Len(t, descriptors, 10)
			stats := fake.Stats()
			assert.Positive(t, stats.Dropped, "replies were dropped")
			t.Logf("%s: %d dropped replies, %d parties created for 10 matches", mode, stats.Dropped, stats.PartiesCreated)
			if mode == fakeplayfab.ModeDedupe {
				assert.Equal(t, 10, stats.PartiesCreated)
			}
		})
	}
}
