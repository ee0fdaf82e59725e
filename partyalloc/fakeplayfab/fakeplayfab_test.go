package fakeplayfab_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

const secret = "test-secret-key"

// envelope is PlayFab's reply wrapper as a client sees it.
type envelope struct {
	Code              int                 `json:"code"`
	Status            string              `json:"status"`
	Data              json.RawMessage     `json:"data"`
	Error             string              `json:"error"`
	ErrorCode         int                 `json:"errorCode"`
	ErrorMessage      string              `json:"errorMessage"`
	ErrorDetails      map[string][]string `json:"errorDetails"`
	RetryAfterSeconds *float64            `json:"retryAfterSeconds"`
}

type partyData struct {
	PartyID                     string `json:"PartyId"`
	SerializedNetworkDescriptor string `json:"SerializedNetworkDescriptor"`
	InvitationID                string `json:"InvitationId"`
}

type tokenData struct {
	EntityToken     string `json:"EntityToken"`
	TokenExpiration string `json:"TokenExpiration"`
	Entity          struct {
		ID         string `json:"Id"`
		Type       string `json:"Type"`
		TypeString string `json:"TypeString"`
	} `json:"Entity"`
}

// start serves a fake configured by cfg, with the test's secret key.
func start(t *testing.T, cfg fakeplayfab.Config) (*fakeplayfab.Server, *httptest.Server) {
	t.Helper()
	if cfg.SecretKey == "" {
		cfg.SecretKey = secret
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fake := fakeplayfab.New(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// call sends one request and decodes the reply as an envelope, checking
// the headers every reply carries.
func call(t *testing.T, srv *httptest.Server, method, path string, header map[string]string, body string) (int, http.Header, envelope) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.NotEmpty(t, resp.Header.Get("X-RequestId"))
	var env envelope
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	return resp.StatusCode, resp.Header, env
}

// getToken fetches an entity token with the secret key.
func getToken(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	status, _, env := call(t, srv, http.MethodPost, "/Authentication/GetEntityToken", map[string]string{"X-SecretKey": secret}, "")
	require.Equal(t, http.StatusOK, status)
	var data tokenData
	require.NoError(t, json.Unmarshal(env.Data, &data))
	return data.EntityToken
}

// validRequest is a RequestPartyService body that passes validation.
func validRequest(partyID string) map[string]any {
	req := map[string]any{
		"NetworkConfiguration": map[string]any{
			"MaxUsers":              8,
			"MaxDevices":            8,
			"MaxUsersPerDevice":     1,
			"MaxDevicesPerUser":     1,
			"MaxEndpointsPerDevice": 1,
		},
		"PreferredRegions": []any{"WestUs", "EastUs"},
	}
	if partyID != "" {
		req["PartyId"] = partyID
	}
	return req
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// requestParty calls RequestPartyService with tok and body.
func requestParty(t *testing.T, srv *httptest.Server, tok string, body any) (int, http.Header, envelope) {
	t.Helper()
	return call(t, srv, http.MethodPost, "/Party/RequestPartyService", map[string]string{"X-EntityToken": tok}, mustJSON(t, body))
}

// requireParty checks a success envelope and returns its data.
func requireParty(t *testing.T, status int, env envelope) partyData {
	t.Helper()
	require.Equal(t, http.StatusOK, status, "error %s: %s %v", env.Error, env.ErrorMessage, env.ErrorDetails)
	assert.Equal(t, 200, env.Code)
	assert.Equal(t, "OK", env.Status)
	assert.Empty(t, env.Error)
	var p partyData
	require.NoError(t, json.Unmarshal(env.Data, &p))
	return p
}

// assertError checks a failure envelope.
func assertError(t *testing.T, status int, env envelope, wantStatus int, wantName string, wantCode int) {
	t.Helper()
	assert.Equal(t, wantStatus, status)
	assert.Equal(t, wantStatus, env.Code)
	assert.Equal(t, strings.ReplaceAll(http.StatusText(wantStatus), " ", ""), env.Status)
	assert.Equal(t, wantName, env.Error)
	assert.Equal(t, wantCode, env.ErrorCode)
	assert.NotEmpty(t, env.ErrorMessage)
	assert.Empty(t, env.Data)
}

func TestGetEntityToken(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	_, srv := start(t, fakeplayfab.Config{TitleID: "ABCD", Now: func() time.Time { return now }})

	tests := []struct {
		name     string
		header   map[string]string
		body     string
		wantCode int
		wantName string
		wantErr  int
	}{
		{name: "no body", header: map[string]string{"X-SecretKey": secret}, wantCode: 200},
		{name: "empty object", header: map[string]string{"X-SecretKey": secret}, body: "{}", wantCode: 200},
		{name: "entity and tags", header: map[string]string{"X-SecretKey": secret},
			body: `{"Entity":{"Id":"ABCD","Type":"title"},"CustomTags":{"build":"42"}}`, wantCode: 200},
		{name: "no key", body: "{}", wantCode: 401, wantName: "NotAuthenticated", wantErr: 1074},
		{name: "wrong key", header: map[string]string{"X-SecretKey": "nope"}, wantCode: 401, wantName: "NotAuthenticated", wantErr: 1074},
		{name: "not JSON", header: map[string]string{"X-SecretKey": secret}, body: "{", wantCode: 400, wantName: "InvalidContentType", wantErr: 1144},
		{name: "bad entity", header: map[string]string{"X-SecretKey": secret}, body: `{"Entity":{}}`, wantCode: 400, wantName: "InvalidParams", wantErr: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, env := call(t, srv, http.MethodPost, "/Authentication/GetEntityToken?sdk=JavaScriptSDK-2.187.251205", tt.header, tt.body)
			if tt.wantCode != http.StatusOK {
				assertError(t, status, env, tt.wantCode, tt.wantName, tt.wantErr)
				return
			}
			require.Equal(t, http.StatusOK, status)
			var data tokenData
			require.NoError(t, json.Unmarshal(env.Data, &data))
			assert.NotEmpty(t, data.EntityToken)
			assert.Equal(t, "2026-05-02T12:00:00.000Z", data.TokenExpiration)
			assert.Equal(t, "ABCD", data.Entity.ID)
			assert.Equal(t, "title", data.Entity.Type)
			assert.Equal(t, "title", data.Entity.TypeString)
		})
	}
}

func TestGetEntityTokenRefreshWithEntityToken(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	first := getToken(t, srv)

	status, _, env := call(t, srv, http.MethodPost, "/Authentication/GetEntityToken", map[string]string{"X-EntityToken": first}, "{}")
	require.Equal(t, http.StatusOK, status)
	var data tokenData
	require.NoError(t, json.Unmarshal(env.Data, &data))
	assert.NotEqual(t, first, data.EntityToken)

	// Getting a new token does not invalidate the old one.
	for _, tok := range []string{first, data.EntityToken} {
		status, _, env := requestParty(t, srv, tok, validRequest(uuid.NewString()))
		requireParty(t, status, env)
	}
}

func TestRequestPartyServiceAuth(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, srv := start(t, fakeplayfab.Config{Now: clock, TokenLifetime: time.Hour})

	expired := getToken(t, srv)
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	valid := getToken(t, srv)

	status, _, env := call(t, srv, http.MethodPost, "/Authentication/GetEntityToken", map[string]string{"X-SecretKey": secret},
		`{"Entity":{"Id":"ABC123","Type":"title_player_account"}}`)
	require.Equal(t, http.StatusOK, status)
	var player tokenData
	require.NoError(t, json.Unmarshal(env.Data, &player))
	require.Equal(t, "title_player_account", player.Entity.Type)

	tests := []struct {
		name     string
		header   map[string]string
		wantCode int
		wantName string
		wantErr  int
	}{
		{"missing", nil, 401, "EntityTokenMissing", 1334},
		{"secret key is not a token", map[string]string{"X-SecretKey": secret}, 401, "EntityTokenMissing", 1334},
		{"unknown", map[string]string{"X-EntityToken": "bogus"}, 401, "EntityTokenInvalid", 1335},
		{"expired", map[string]string{"X-EntityToken": expired}, 401, "EntityTokenExpired", 1336},
		{"player token", map[string]string{"X-EntityToken": player.EntityToken}, 403, "InvalidEntityType", 1373},
		{"valid", map[string]string{"X-EntityToken": valid}, 200, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, env := call(t, srv, http.MethodPost, "/Party/RequestPartyService", tt.header, mustJSON(t, validRequest(uuid.NewString())))
			if tt.wantCode == http.StatusOK {
				requireParty(t, status, env)
				return
			}
			assertError(t, status, env, tt.wantCode, tt.wantName, tt.wantErr)
		})
	}
}

func TestRequestPartyServiceValidation(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	tok := getToken(t, srv)

	netConf := func(req map[string]any) map[string]any { return req["NetworkConfiguration"].(map[string]any) }
	set := func(field string, v any) func(map[string]any) {
		return func(req map[string]any) { netConf(req)[field] = v }
	}
	unset := func(field string) func(map[string]any) {
		return func(req map[string]any) { delete(netConf(req), field) }
	}
	invitation := func(inv map[string]any) func(map[string]any) {
		return func(req map[string]any) { netConf(req)["PartyInvitationConfiguration"] = inv }
	}
	keys := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"Id": uuid.NewString(), "Type": "title_player_account"}
		}
		return out
	}

	tests := []struct {
		name       string
		mutate     func(map[string]any)
		wantFields []string // nil: valid
	}{
		{"valid", func(map[string]any) {}, nil},
		{"no NetworkConfiguration", func(r map[string]any) { delete(r, "NetworkConfiguration") }, []string{"NetworkConfiguration"}},
		{"MaxUsers 0", set("MaxUsers", 0), []string{"MaxUsers"}},
		{"MaxUsers missing", unset("MaxUsers"), []string{"MaxUsers"}},
		{"MaxUsers not a number", set("MaxUsers", "eight"), []string{"MaxUsers"}},
		{"MaxDevices 0", set("MaxDevices", 0), []string{"MaxDevices"}},
		{"MaxDevices 129", set("MaxDevices", 129), []string{"MaxDevices"}},
		{"MaxDevices 128", set("MaxDevices", 128), nil},
		{"MaxDevices missing", unset("MaxDevices"), []string{"MaxDevices"}},
		{"MaxUsersPerDevice 0", set("MaxUsersPerDevice", 0), []string{"MaxUsersPerDevice"}},
		{"MaxUsersPerDevice 9", set("MaxUsersPerDevice", 9), []string{"MaxUsersPerDevice"}},
		{"MaxUsersPerDevice 8", set("MaxUsersPerDevice", 8), nil},
		{"MaxDevicesPerUser 0", set("MaxDevicesPerUser", 0), []string{"MaxDevicesPerUser"}},
		{"MaxDevicesPerUser missing", unset("MaxDevicesPerUser"), []string{"MaxDevicesPerUser"}},
		{"MaxEndpointsPerDevice -1", set("MaxEndpointsPerDevice", -1), []string{"MaxEndpointsPerDevice"}},
		{"MaxEndpointsPerDevice 33", set("MaxEndpointsPerDevice", 33), []string{"MaxEndpointsPerDevice"}},
		{"MaxEndpointsPerDevice 32", set("MaxEndpointsPerDevice", 32), nil},
		{"MaxEndpointsPerDevice missing", unset("MaxEndpointsPerDevice"), nil},
		{"DirectPeerConnectivityOptions valid", set("DirectPeerConnectivityOptions", "AnyPlatformType"), nil},
		{"DirectPeerConnectivityOptions OnlyServers", set("DirectPeerConnectivityOptions", "OnlyServers"), nil},
		{"DirectPeerConnectivityOptions unknown", set("DirectPeerConnectivityOptions", "Everyone"), []string{"DirectPeerConnectivityOptions"}},
		{"PreferredRegions missing", func(r map[string]any) { delete(r, "PreferredRegions") }, []string{"PreferredRegions"}},
		{"PreferredRegions empty", func(r map[string]any) { r["PreferredRegions"] = []any{} }, []string{"PreferredRegions"}},
		{"PreferredRegions blank entry", func(r map[string]any) { r["PreferredRegions"] = []any{""} }, []string{"PreferredRegions"}},
		{"PartyId not a GUID", func(r map[string]any) { r["PartyId"] = "match-1" }, []string{"PartyId"}},
		{"PartyId absent", func(r map[string]any) { delete(r, "PartyId") }, nil},
		{"Identifier 127", invitation(map[string]any{"Identifier": strings.Repeat("x", 127)}), nil},
		{"Identifier 128", invitation(map[string]any{"Identifier": strings.Repeat("x", 128)}), []string{"Identifier"}},
		{"Revocability Anyone", invitation(map[string]any{"Revocability": "Anyone"}), nil},
		{"Revocability Creator", invitation(map[string]any{"Revocability": "Creator"}), nil},
		{"Revocability unknown", invitation(map[string]any{"Revocability": "Nobody"}), []string{"Revocability"}},
		{"EntityKeys 1024", invitation(map[string]any{"EntityKeys": keys(1024)}), nil},
		{"EntityKeys 1025", invitation(map[string]any{"EntityKeys": keys(1025)}), []string{"EntityKeys"}},
		{"EntityKeys entry without Id", invitation(map[string]any{"EntityKeys": []any{map[string]any{"Type": "title_player_account"}}}), []string{"EntityKeys"}},
		{"every error collected", func(r map[string]any) {
			set("MaxDevices", 0)(r)
			set("MaxUsersPerDevice", 9)(r)
			r["PreferredRegions"] = []any{}
		}, []string{"MaxDevices", "MaxUsersPerDevice", "PreferredRegions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(uuid.NewString())
			tt.mutate(req)
			status, _, env := requestParty(t, srv, tok, req)
			if tt.wantFields == nil {
				requireParty(t, status, env)
				return
			}
			assertError(t, status, env, http.StatusBadRequest, "InvalidParams", 1000)
			assert.Equal(t, "Invalid input parameters", env.ErrorMessage)
			var fields []string
			for f, msgs := range env.ErrorDetails {
				fields = append(fields, f)
				require.NotEmpty(t, msgs)
				assert.Contains(t, msgs[0], f, "a message names its field")
			}
			assert.ElementsMatch(t, tt.wantFields, fields)
		})
	}
}

func TestRequestPartyServiceRangeMessage(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	req := validRequest(uuid.NewString())
	req["NetworkConfiguration"].(map[string]any)["MaxDevices"] = 129
	status, _, env := requestParty(t, srv, getToken(t, srv), req)
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, map[string][]string{"MaxDevices": {"The field MaxDevices must be between 1 and 128."}}, env.ErrorDetails)
}

func TestRequestPartyServiceBodyErrors(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	tok := getToken(t, srv)
	tests := []struct {
		name     string
		body     string
		wantName string
		wantCode int
	}{
		{"not JSON", "PartyId=1", "InvalidContentType", 1144},
		{"empty", "", "InvalidParams", 1000},
		{"not an object", "[1,2]", "InvalidParams", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, env := call(t, srv, http.MethodPost, "/Party/RequestPartyService", map[string]string{"X-EntityToken": tok}, tt.body)
			assertError(t, status, env, http.StatusBadRequest, tt.wantName, tt.wantCode)
		})
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		mode        fakeplayfab.Mode
		wantSame    bool
		wantCreated int
	}{
		{fakeplayfab.ModeDedupe, true, 1},
		{fakeplayfab.ModeNewParty, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			fake, srv := start(t, fakeplayfab.Config{Mode: tt.mode})
			tok := getToken(t, srv)
			partyID := uuid.NewString()

			first := mustParty(t, srv, tok, validRequest(partyID))
			second := mustParty(t, srv, tok, validRequest(partyID))

			assert.Equal(t, partyID, first.PartyID)
			assert.Equal(t, partyID, second.PartyID)
			assert.Equal(t, tt.wantSame, first == second)
			info1, err := fakeplayfab.DecodeDescriptor(first.SerializedNetworkDescriptor)
			require.NoError(t, err)
			info2, err := fakeplayfab.DecodeDescriptor(second.SerializedNetworkDescriptor)
			require.NoError(t, err)
			assert.Equal(t, partyID, info1.PartyID)
			assert.Equal(t, partyID, info2.PartyID)
			assert.Equal(t, tt.wantSame, info1.NetworkID == info2.NetworkID)
			_, err = uuid.Parse(first.InvitationID)
			assert.NoError(t, err, "a generated invitation id is a GUID")

			stats := fake.Stats()
			assert.Equal(t, 2, stats.Parties[partyID])
			assert.Equal(t, 2, stats.Successes[partyID])
			assert.Equal(t, tt.wantCreated, stats.PartiesCreated)
			assert.Equal(t, 2, stats.RequestPartyService)
			assert.Equal(t, 1, stats.GetEntityToken)

			desc, ok := fake.Descriptor(partyID)
			require.True(t, ok)
			assert.Equal(t, second.SerializedNetworkDescriptor, desc)
		})
	}
}

// mustParty calls RequestPartyService and requires a party back.
func mustParty(t *testing.T, srv *httptest.Server, tok string, body any) partyData {
	t.Helper()
	status, _, env := requestParty(t, srv, tok, body)
	return requireParty(t, status, env)
}

func TestConcurrentDedupe(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{})
	tok := getToken(t, srv)
	partyID := uuid.NewString()
	body := mustJSON(t, validRequest(partyID))

	const n = 50
	descs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/Party/RequestPartyService", strings.NewReader(body))
			if !assert.NoError(t, err) {
				return
			}
			req.Header.Set("X-EntityToken", tok)
			resp, err := srv.Client().Do(req)
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			var env struct{ Data partyData }
			assert.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			descs[i] = env.Data.SerializedNetworkDescriptor
		})
	}
	wg.Wait()
	for _, d := range descs {
		assert.Equal(t, descs[0], d)
	}
	stats := fake.Stats()
	assert.Equal(t, 1, stats.PartiesCreated)
	assert.Equal(t, n, stats.Parties[partyID])
	assert.Equal(t, n, stats.Successes[partyID])
}

func TestPartyWithoutID(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{})
	p := mustParty(t, srv, getToken(t, srv), validRequest(""))
	_, err := uuid.Parse(p.PartyID)
	require.NoError(t, err, "a generated PartyId is a GUID")
	stats := fake.Stats()
	assert.Empty(t, stats.Parties, "only calls carrying a PartyId are counted per party")
	assert.Equal(t, map[string]int{p.PartyID: 1}, stats.Successes)
}

func TestInvitationIdentifierEchoed(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	req := validRequest(uuid.NewString())
	req["NetworkConfiguration"].(map[string]any)["PartyInvitationConfiguration"] = map[string]any{
		"Identifier":   "match-invite-1",
		"Revocability": "Anyone",
		"EntityKeys":   []any{map[string]any{"Id": "P1", "Type": "title_player_account"}},
	}
	p := mustParty(t, srv, getToken(t, srv), req)
	assert.Equal(t, "match-invite-1", p.InvitationID)
}

func TestDescriptor(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	partyID := uuid.NewString()
	req := validRequest(partyID)
	req["PreferredRegions"] = []any{"NorthCentralUs", "WestUs"}
	p := mustParty(t, srv, getToken(t, srv), req)

	assert.LessOrEqual(t, len(p.SerializedNetworkDescriptor), 448)
	info, err := fakeplayfab.DecodeDescriptor(p.SerializedNetworkDescriptor)
	require.NoError(t, err)
	assert.Equal(t, partyID, info.PartyID)
	assert.Equal(t, "NorthCentralUs", info.Region)
	assert.Equal(t, "relay-northcentralus.fake.playfab", info.RelayHost)

	long := validRequest(uuid.NewString())
	long["PreferredRegions"] = []any{strings.Repeat("R", 64)}
	p = mustParty(t, srv, getToken(t, srv), long)
	assert.LessOrEqual(t, len(p.SerializedNetworkDescriptor), 448, "the longest region still fits")

	for _, bad := range []string{"", "!!!", "aGVsbG8gd29ybGQ=", p.SerializedNetworkDescriptor[:20]} {
		_, err := fakeplayfab.DecodeDescriptor(bad)
		assert.Error(t, err, "descriptor %q", bad)
	}
}

func TestUnknownQueryParametersIgnored(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	tok := getToken(t, srv)
	status, _, env := call(t, srv, http.MethodPost, "/Party/RequestPartyService?sdk=JavaScriptSDK-2.187.251205&x=1",
		map[string]string{"X-EntityToken": tok}, mustJSON(t, validRequest(uuid.NewString())))
	requireParty(t, status, env)
}

func TestUnknownRouteAndMethod(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{})
	status, _, env := call(t, srv, http.MethodPost, "/Client/LoginWithCustomID", nil, "{}")
	assertError(t, status, env, http.StatusNotFound, "InvalidAPIEndpoint", 1131)

	status, header, env := call(t, srv, http.MethodGet, "/Party/RequestPartyService", nil, "")
	assertError(t, status, env, http.StatusMethodNotAllowed, "InvalidRequest", 1071)
	assert.Equal(t, http.MethodPost, header.Get("Allow"))
}

func TestFaultThrottle(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ThrottleRate: 1, RetryAfter: 50 * time.Millisecond}})
	partyID := uuid.NewString()
	status, header, env := requestParty(t, srv, getToken(t, srv), validRequest(partyID))
	assertError(t, status, env, http.StatusTooManyRequests, "APIClientRequestRateLimitExceeded", 1199)
	require.NotNil(t, env.RetryAfterSeconds)
	assert.InDelta(t, 0.05, *env.RetryAfterSeconds, 1e-9)
	assert.Equal(t, "1", header.Get("Retry-After"), "the header counts whole seconds, rounded up")

	stats := fake.Stats()
	assert.Equal(t, 1, stats.Parties[partyID])
	assert.Zero(t, stats.Successes[partyID])
	assert.Equal(t, 1, stats.Throttled)
	assert.Equal(t, map[string]int{partyID: 1}, stats.ThrottledByParty)
}

func TestFaultErrorsAlternate(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ErrorRate: 1}})
	tok := getToken(t, srv)
	first := uuid.NewString()
	status, _, env := requestParty(t, srv, tok, validRequest(first))
	assertError(t, status, env, http.StatusServiceUnavailable, "ServiceUnavailable", 1123)
	status, _, env = requestParty(t, srv, tok, validRequest(first))
	assertError(t, status, env, http.StatusInternalServerError, "InternalServerError", 1110)
	assert.Equal(t, 2, fake.Stats().Errors)
	assert.Equal(t, map[string]int{first: 2}, fake.Stats().ErrorsByParty)

	fake.SetFaults(fakeplayfab.Faults{})
	mustParty(t, srv, tok, validRequest(uuid.NewString()))
}

func TestFaultsApplyAfterValidation(t *testing.T) {
	_, srv := start(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ErrorRate: 1}})
	req := validRequest(uuid.NewString())
	delete(req, "PreferredRegions")
	status, _, env := requestParty(t, srv, getToken(t, srv), req)
	assertError(t, status, env, http.StatusBadRequest, "InvalidParams", 1000)
	status, _, env = requestParty(t, srv, "bogus", validRequest(uuid.NewString()))
	assertError(t, status, env, http.StatusUnauthorized, "EntityTokenInvalid", 1335)
}

func TestFaultDropResponse(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{DropResponseRate: 1}})
	tok := getToken(t, srv)
	partyID := uuid.NewString()

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/Party/RequestPartyService", strings.NewReader(mustJSON(t, validRequest(partyID))))
	require.NoError(t, err)
	req.Header.Set("X-EntityToken", tok)
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the client gets no reply")

	stats := fake.Stats()
	assert.Equal(t, 1, stats.Parties[partyID])
	assert.Equal(t, 1, stats.Successes[partyID], "the party was created even though the reply was lost")
	assert.Equal(t, 1, stats.Dropped)
	assert.Equal(t, map[string]int{partyID: 1}, stats.DroppedByParty)

	// In ModeDedupe the retry gets the party the lost reply carried.
	dropped, ok := fake.Descriptor(partyID)
	require.True(t, ok)
	fake.SetFaults(fakeplayfab.Faults{})
	p := mustParty(t, srv, tok, validRequest(partyID))
	assert.Equal(t, dropped, p.SerializedNetworkDescriptor)
}

func TestFaultLatencyHonoursClientCancel(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{Latency: time.Hour}})
	tok := getToken(t, srv)
	partyID := uuid.NewString()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/Party/RequestPartyService", strings.NewReader(mustJSON(t, validRequest(partyID))))
	require.NoError(t, err)
	req.Header.Set("X-EntityToken", tok)
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// srv.Close in Cleanup waits for the handler: it returns only because
	// the handler stopped waiting when the client went away.
	srv.Close()
	stats := fake.Stats()
	assert.Equal(t, 1, stats.Parties[partyID])
	assert.Zero(t, stats.Successes[partyID])
}

func TestFaultsEndpoint(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{})

	post := func(body string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/_fake/faults", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var raw json.RawMessage
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
		return resp.StatusCode, string(raw)
	}

	status, _ := post(`{"latency":"50ms","errorRate":0.5}`)
	require.Equal(t, http.StatusOK, status)
	status, body := post(`{"throttleRate":0.25,"retryAfter":0.05,"jitter":"10ms"}`)
	require.Equal(t, http.StatusOK, status)
	want := fakeplayfab.Faults{
		Latency:      50 * time.Millisecond,
		Jitter:       10 * time.Millisecond,
		ErrorRate:    0.5,
		ThrottleRate: 0.25,
		RetryAfter:   50 * time.Millisecond,
	}
	assert.Equal(t, want, fake.Faults(), "a POST updates only the fields it names")
	assert.JSONEq(t, `{"latency":"50ms","jitter":"10ms","errorRate":0.5,"throttleRate":0.25,"retryAfter":"50ms","dropResponseRate":0}`, body)

	resp, err := srv.Client().Get(srv.URL + "/_fake/faults")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got fakeplayfab.Faults
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, want, got)

	for _, tt := range []struct{ body, field string }{
		{`{"errorRate":2}`, "errorRate"},
		{`{"dropResponseRate":-0.1}`, "dropResponseRate"},
		{`{"latency":"-1s"}`, "latency"},
		{`{"throttleRate":"lots"}`, "throttleRate"},
		{`{"latency":"soon"}`, "request"},
	} {
		status, _, env := call(t, srv, http.MethodPost, "/_fake/faults", nil, tt.body)
		assertError(t, status, env, http.StatusBadRequest, "InvalidParams", 1000)
		assert.Contains(t, env.ErrorDetails, tt.field, "body %s", tt.body)
	}
	assert.Equal(t, want, fake.Faults(), "a refused POST changes nothing")
}

func TestStatsAndResetEndpoints(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{})
	tok := getToken(t, srv)
	partyID := uuid.NewString()
	mustParty(t, srv, tok, validRequest(partyID))

	resp, err := srv.Client().Get(srv.URL + "/_fake/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	var stats fakeplayfab.Stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stats))
	assert.Equal(t, fake.Stats(), stats)
	assert.Equal(t, 1, stats.GetEntityToken)
	assert.Equal(t, 1, stats.RequestPartyService)
	assert.Equal(t, map[string]int{partyID: 1}, stats.Parties)

	resp2, err := srv.Client().Post(srv.URL+"/_fake/reset", "application/json", nil)
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, http.StatusOK, resp2.StatusCode)
	stats = fake.Stats()
	assert.Zero(t, stats.GetEntityToken)
	assert.Empty(t, stats.Parties)

	// Tokens survive a reset.
	mustParty(t, srv, tok, validRequest(uuid.NewString()))
}

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    fakeplayfab.Mode
		wantErr bool
	}{
		{"dedupe", fakeplayfab.ModeDedupe, false},
		{"new", fakeplayfab.ModeNewParty, false},
		{"NEW", fakeplayfab.ModeNewParty, false},
		{"both", 0, true},
	} {
		got, err := fakeplayfab.ParseMode(tt.in)
		if tt.wantErr {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
		assert.Equal(t, strings.ToLower(tt.in), got.String())
	}
}
