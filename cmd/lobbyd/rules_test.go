package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// rulesQueues are the queues of the matchmaking-rules tests: teams with
// ratings from the token, a duel whose platform (from the token) relaxes
// to any after 8 s and whose maps must intersect, and a queue with a
// required client attribute and a required token attribute.
const rulesQueues = `queues:
  - name: teams
    maxUsers: 4
    regions: [WestUs]
    playfab: {maxDevices: 4, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
    skill: {source: token}
    teams: {count: 2, size: 2}
  - name: duel
    maxUsers: 2
    regions: [WestUs]
    playfab: {maxDevices: 2, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
    attributes:
      - name: platform
        type: string
        rule: equal
        source: token
        relax: [{after: 8s, rule: any}]
      - name: maps
        type: strings
        rule: intersect
  - name: ranked
    maxUsers: 2
    regions: [WestUs]
    playfab: {maxDevices: 2, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
    skill: {source: token}
    attributes:
      - {name: mode, type: string, rule: equal, required: true, values: [ctf, tdm]}
      - {name: tier, type: string, rule: equal, source: token, required: true}
`

func startRulesServer(t *testing.T) *server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(path, []byte(rulesQueues), 0o600))
	return startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_CONFIG": path})
}

// claimed connects a player whose token carries the claims skill and attrs.
func (s *server) claimed(t *testing.T, name string, skill any, attrs map[string]any) *player {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "skill": skill, "attrs": attrs})
	resp, err := http.Post(s.URL+"/v1/dev/token", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct{ Token, PlayerID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	c, _ := s.connect(t, out.Token)
	return &player{Client: c, id: out.PlayerID, name: name, token: out.Token}
}

// teamsOf reads match.found's or match.ready's teams, each sorted.
func teamsOf(t *testing.T, f lobbytest.Frame) [][]string {
	t.Helper()
	raw, ok := f["teams"].([]any)
	require.True(t, ok, "teams in %v", f)
	var teams [][]string
	for _, team := range raw {
		var ids []string
		for _, id := range team.([]any) {
			ids = append(ids, id.(string))
		}
		slices.Sort(ids)
		teams = append(teams, ids)
	}
	return teams
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// Four solo players whose ratings come from their tokens are split into
// the two teams whose means differ least: 1000+2000 against 1100+1900,
// not the arrival order; match.ready says the same, and so does the
// welcome of a player who was away when it came.
func TestTeamsAreBalancedBySkill(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	var ps []*player
	for i, skill := range []float64{1000, 1100, 1900, 2000} {
		p := srv.claimed(t, "p"+string(rune('a'+i)), skill, nil)
		ps = append(ps, p)
	}
	ps[3].ok(t, "queue.join", map[string]any{"queue": "teams"})
	ps[3].Conn.Close()
	storetest.Eventually(t, 10*time.Second, func() bool { return srv.metric(t, "lobbyd_connections") == 3 },
		"the server saw the disconnect")
	for _, p := range ps[:3] {
		p.ok(t, "queue.join", map[string]any{"queue": "teams"})
	}
	found := ps[0].Next("match.found")
	teams := teamsOf(t, found)
	assert.ElementsMatch(t, [][]string{sorted(ps[0].id, ps[3].id), sorted(ps[1].id, ps[2].id)}, teams)
	quality := found.Obj("quality")
	assert.Equal(t, 0.0, quality["teamImbalance"], "1500 against 1500")
	assert.Equal(t, 1000.0, quality["skillSpread"])
	ready := ps[2].Next("match.ready")
	assert.ElementsMatch(t, teams, teamsOf(t, ready), "match.ready carries the same teams")
	assert.Equal(t, quality, ready.Obj("quality"))
	_, w := srv.connect(t, ps[3].token)
	match := w.Obj("state").Obj("match")
	require.NotNil(t, match, "welcome carries the undelivered match.ready")
	assert.ElementsMatch(t, teams, teamsOf(t, match), "welcome.state.match carries the teams")
	assert.Equal(t, quality, match.Obj("quality"))
}

// A lobby is never split across teams, even when splitting it would
// balance them better; and a lobby in a queue with teams holds at most a
// team.
func TestLobbyStaysOnOneTeam(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	owner := srv.claimed(t, "owner", 1000, nil)
	mate := srv.claimed(t, "mate", 1100, nil)
	owner.fails(t, "bad_request", "lobby.create", map[string]any{"queue": "teams", "maxMembers": 3})
	code := owner.ok(t, "lobby.create", map[string]any{"queue": "teams"}).Obj("lobby").Str("code")
	mate.ok(t, "lobby.join", map[string]any{"code": code})
	owner.ok(t, "lobby.ready", map[string]any{"ready": true})
	mate.ok(t, "lobby.ready", map[string]any{"ready": true})
	owner.ok(t, "queue.join", map[string]any{"queue": "teams"})

	solos := []*player{srv.claimed(t, "s1", 1900, nil), srv.claimed(t, "s2", 2000, nil)}
	for _, p := range solos {
		p.ok(t, "queue.join", map[string]any{"queue": "teams"})
	}
	found := solos[0].Next("match.found")
	assert.ElementsMatch(t, [][]string{sorted(owner.id, mate.id), sorted(solos[0].id, solos[1].id)}, teamsOf(t, found))
	assert.Equal(t, 900.0, found.Obj("quality")["teamImbalance"], "1050 against 1950: the best split that keeps the lobby whole")
}

// Values the token gives cannot come from the client: a client-sent skill
// or token attribute is forbidden, as is a token without a required token
// attribute; bad client attributes are bad requests naming the attribute.
// The socket stays open through all of it, and nothing is queued.
func TestTokenFieldsAreRefusedFromTheClient(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	gold := srv.claimed(t, "gold", 1500, map[string]any{"tier": "gold"})
	plain := srv.claimed(t, "plain", 1500, nil)

	for _, tc := range []struct {
		p      *player
		fields map[string]any
		code   string
		names  string
	}{
		{gold, map[string]any{"queue": "ranked", "skill": 3000, "attributes": map[string]any{"mode": "ctf"}}, "forbidden", "skill"},
		{gold, map[string]any{"queue": "ranked", "attributes": map[string]any{"mode": "ctf", "tier": "diamond"}}, "forbidden", "tier"},
		{plain, map[string]any{"queue": "ranked", "attributes": map[string]any{"mode": "ctf"}}, "forbidden", "tier"},
		{gold, map[string]any{"queue": "ranked"}, "bad_request", "mode"},
		{gold, map[string]any{"queue": "ranked", "attributes": map[string]any{"mode": "koth"}}, "bad_request", "mode"},
		{gold, map[string]any{"queue": "ranked", "attributes": map[string]any{"mode": 5}}, "bad_request", "mode"},
		{gold, map[string]any{"queue": "ranked", "attributes": map[string]any{"mode": "ctf", "color": "red"}}, "bad_request", "color"},
	} {
		r := tc.p.Request("queue.join", tc.fields)
		require.False(t, r.OK(), "%v", tc.fields)
		assert.Equal(t, tc.code, r.ErrorCode(), "%v: %v", tc.fields, r)
		assert.Contains(t, r.Obj("error").Str("message"), tc.names, "%v", tc.fields)
	}
	assert.Equal(t, 0, queueDepthOf(t, srv, "ranked"), "nothing was queued")
	assert.True(t, plain.Request("ping", nil).OK(), "the socket stays open")
	joined := gold.ok(t, "queue.join", map[string]any{"queue": "ranked", "attributes": map[string]any{"mode": "ctf"}})
	assert.Equal(t, "searching", joined.Obj("ticket").Str("status"))
}

// An equal rule binds until its relax step and not before: two players on
// different platforms are not matched, queue.why names platform as the
// rule that blocks them, and once the oldest has waited 8 s they are
// matched with platform relaxed.
func TestEqualRuleRelaxesAtItsStep(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	pc := srv.claimed(t, "pc", nil, map[string]any{"platform": "pc"})
	xbox := srv.claimed(t, "xbox", nil, map[string]any{"platform": "xbox"})
	pc.fails(t, "not_found", "queue.why", nil)
	pc.ok(t, "queue.join", map[string]any{"queue": "duel"})
	xbox.ok(t, "queue.join", map[string]any{"queue": "duel"})

	var why lobbytest.Frame
	storetest.Eventually(t, 6*time.Second, func() bool {
		r := pc.Request("queue.why", nil)
		if !r.OK() {
			require.Equal(t, "unavailable", r.ErrorCode(), "before the leader's first summary: %v", r)
			return false
		}
		why = r.Obj("data")
		return why.Str("blockedBy") == "platform"
	}, "queue.why names platform before it relaxes")
	var platform map[string]any
	for _, r := range why["rules"].([]any) {
		if r := r.(map[string]any); r["rule"] == "platform" {
			platform = r
		}
	}
	require.NotNil(t, platform, "%v", why)
	assert.Equal(t, 0.0, platform["compatible"])
	assert.Greater(t, platform["relaxesInMs"], 0.0)
	assert.Equal(t, 0, pc.Count("match.found"), "not matched before the step")

	found := pc.Next("match.found")
	quality := found.Obj("quality")
	assert.Equal(t, []any{"platform"}, quality["relaxed"])
	assert.GreaterOrEqual(t, quality["waitMs"], 8000.0, "formed only once the oldest ticket waited the step's 8 s")
	_, has := found.Obj("attributes")["platform"]
	assert.False(t, has, "a rule relaxed to any has no value")
}

// intersect reports the values every ticket shares; equal reports the
// common value.
func TestIntersectReportsSharedValues(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	a := srv.claimed(t, "a", nil, map[string]any{"platform": "pc"})
	b := srv.claimed(t, "b", nil, map[string]any{"platform": "pc"})
	a.ok(t, "queue.join", map[string]any{"queue": "duel", "attributes": map[string]any{"maps": []string{"dust", "harbor", "mill"}}})
	b.ok(t, "queue.join", map[string]any{"queue": "duel", "attributes": map[string]any{"maps": []string{"mill", "harbor", "yard"}}})
	found := b.Next("match.found")
	attrs := found.Obj("attributes")
	assert.Equal(t, []any{"harbor", "mill"}, attrs["maps"], "shared, sorted")
	assert.Equal(t, "pc", attrs["platform"])
	assert.Empty(t, found.Obj("quality")["relaxed"])
	ready := a.Next("match.ready")
	assert.Equal(t, attrs, ready.Obj("attributes"))
}

// queueDepthOf is a queue's depth from GET /v1/queues.
func queueDepthOf(t *testing.T, srv *server, queue string) int {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var qs struct {
		Queues []struct {
			Name  string
			Depth int
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&qs))
	for _, q := range qs.Queues {
		if strings.EqualFold(q.Name, queue) {
			return q.Depth
		}
	}
	t.Fatalf("no queue %q", queue)
	return 0
}

// A token's claims of the wrong shape are refused at the handshake, and
// its rating is held to the skill range a client's is, and a
// token's numbers to domain.MaxAttrNumber: tokens beyond them are refused
// at the handshake, naming the claim, and the dev token endpoint does not
// issue them, so that no ticket's sums or distances can overflow (a lobby
// of two 1e308 ratings once made its mean +Inf, and a match of ±1.7e308 a
// spread that could not be stored).
func TestOutOfRangeTokenClaimsAreRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(path, []byte(rulesQueues), 0o600))
	srv := startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_CONFIG": path, "LOBBYD_JWT_SECRET": testJWTSecret})
	token := func(skill any, attrs map[string]any) string {
		claims := jwt.MapClaims{"sub": "far", "exp": time.Now().Add(time.Hour).Unix(), "skill": skill}
		if attrs != nil {
			claims["attrs"] = attrs
		}
		return sign(t, claims)
	}
	for _, tc := range []struct {
		skill any
		attrs map[string]any
		names string
	}{
		{1.7e308, nil, "skill"},
		{-1.7e308, nil, "skill"},
		{1000001, nil, "skill"},
		{1500, map[string]any{"level": 1e300}, "attrs.level"},
		{"high", nil, "skill"},
		{1500, map[string]any{"platform": map[string]any{"nested": true}}, "attrs"},
	} {
		h := dial(t, srv.wsURL(), bearer(token(tc.skill, tc.attrs)))
		assert.Equal(t, http.StatusUnauthorized, h.status, "skill %v attrs %v", tc.skill, tc.attrs)
		assert.Equal(t, "unauthorized", h.code)
		assert.Contains(t, h.msg, tc.names)

		body, _ := json.Marshal(map[string]any{"name": "far", "skill": tc.skill, "attrs": tc.attrs})
		resp, err := http.Post(srv.URL+"/v1/dev/token", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "the dev endpoint issues no such token")
	}
	edge := dial(t, srv.wsURL(), bearer(token(-1000000, map[string]any{"level": -1e15})))
	assert.Equal(t, http.StatusSwitchingProtocols, edge.status, "the bounds themselves are allowed")
}

// In a queue whose ratings come from the tokens, a skill sent with
// lobby.create, lobby.join or lobby.ready is refused as queue.join refuses
// it (it would be shown as the member's skill and never used), and
// nothing changes; without it each request works.
func TestLobbySkillIsRefusedWhereTokensRate(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	owner := srv.claimed(t, "owner", 1500, nil)
	guest := srv.claimed(t, "guest", 1600, nil)

	owner.fails(t, "forbidden", "lobby.create", map[string]any{"queue": "teams", "skill": 3000})
	owner.fails(t, "not_found", "lobby.leave", nil) // no lobby was made
	created := owner.ok(t, "lobby.create", map[string]any{"queue": "teams"})
	id := created.Obj("lobby").Str("lobbyId")
	guest.fails(t, "forbidden", "lobby.join", map[string]any{"lobbyId": id, "skill": 3000})
	guest.ok(t, "lobby.join", map[string]any{"lobbyId": id})
	guest.fails(t, "forbidden", "lobby.ready", map[string]any{"ready": true, "skill": 3000})
	guest.ok(t, "lobby.ready", map[string]any{"ready": true})
	for ready := false; !ready; { // the lobby.state that shows the guest ready
		for _, m := range guest.state(t)["members"].([]any) {
			member := m.(map[string]any)
			_, hasSkill := member["skill"]
			assert.False(t, hasSkill, "no client skill stored for %v", member["name"])
			ready = ready || member["playerId"] == guest.id && member["ready"] == true
		}
	}
}

// A lobby's ticket takes its token attributes from every member's token:
// a lobby of a pc and an xbox player in duel (platform from the token,
// equal, relaxed to any after 8 s; two players a match) is one ticket of
// mixed platforms, which matches nobody, itself included, until the rule
// relaxes; then it is a match of its own, with platform relaxed.
func TestMixedLobbyMatchesOnlyOnceRelaxed(t *testing.T) {
	t.Parallel()
	srv := startRulesServer(t)
	pc := srv.claimed(t, "pc", nil, map[string]any{"platform": "pc"})
	xbox := srv.claimed(t, "xbox", nil, map[string]any{"platform": "xbox"})
	code := pc.ok(t, "lobby.create", map[string]any{"queue": "duel", "visibility": "private"}).Obj("lobby").Str("code")
	xbox.ok(t, "lobby.join", map[string]any{"code": code})
	pc.ok(t, "lobby.ready", map[string]any{"ready": true})
	xbox.ok(t, "lobby.ready", map[string]any{"ready": true})
	pc.ok(t, "queue.join", map[string]any{"queue": "duel", "attributes": map[string]any{"maps": []string{"dust"}}})

	found := xbox.Next("match.found")
	quality := found.Obj("quality")
	assert.Equal(t, []any{"platform"}, quality["relaxed"], "matched by relaxing platform")
	assert.GreaterOrEqual(t, quality["waitMs"], 8000.0, "not before the step: the lobby's mixed platforms matched nobody")
	assert.Equal(t, foundPlayerIDs(found), sorted(pc.id, xbox.id))
}

// foundPlayerIDs lists a match.found's players' ids, sorted.
func foundPlayerIDs(f lobbytest.Frame) []string {
	var ids []string
	for _, p := range f["players"].([]any) {
		ids = append(ids, p.(map[string]any)["playerId"].(string))
	}
	return sorted(ids...)
}
