package fakeplayfab_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// FuzzRequestPartyService sends an arbitrary GetEntityToken body, then an
// arbitrary RequestPartyService body with the token it got, to a fake
// without faults. Every reply must be PlayFab's envelope with an error
// name and number from the contract (/work/shared/spec/playfab.md), and a
// party request is answered 200 exactly when the contract, checked here
// from the document rather than through the fake's validator, says it is
// valid; the party then matches the request (PartyId echoed, invitation,
// descriptor naming the party and the first region), and asking again for
// the same PartyId returns the same party.
func FuzzRequestPartyService(f *testing.F) {
	valid := `{"PartyId":"0543645b-2e6c-4a4c-a6c1-8f3d2b1a0c9e","PreferredRegions":["WestUs","EastUs"],` +
		`"NetworkConfiguration":{"MaxUsers":4,"MaxDevices":4,"MaxUsersPerDevice":1,"MaxDevicesPerUser":1,"MaxEndpointsPerDevice":1,` +
		`"DirectPeerConnectivityOptions":"AnyPlatformType","PartyInvitationConfiguration":{"Identifier":"inv-1","Revocability":"Anyone",` +
		`"EntityKeys":[{"Id":"A1","Type":"title_player_account"}]}},"CustomTags":{"build":"42"},"PlayFabId":"P1"}`
	for _, body := range []string{
		valid,
		`{"PreferredRegions":["WestUs"],"NetworkConfiguration":{"MaxUsers":2,"MaxDevices":2,"MaxUsersPerDevice":1,"MaxDevicesPerUser":1}}`,
		`{"PreferredRegions":["WestUs"],"NetworkConfiguration":{"MaxUsers":2,"MaxDevices":129,"MaxUsersPerDevice":9,"MaxDevicesPerUser":0,"MaxEndpointsPerDevice":33}}`,
		`{"PartyId":"not-a-guid","PreferredRegions":[],"NetworkConfiguration":null}`,
		`{"PartyId":"{0543645B-2E6C-4A4C-A6C1-8F3D2B1A0C9E}","preferredregions":["westus"],"networkconfiguration":{"maxusers":1,"maxdevices":1,"maxusersperdevice":1,"maxdevicesperuser":1}}`,
		`{"PreferredRegions":[""],"NetworkConfiguration":{"MaxUsers":"4"}}`,
		`{"PreferredRegions":["WestUs"],"NetworkConfiguration":{"MaxUsers":1e3,"MaxDevices":1.0,"MaxUsersPerDevice":1,"MaxDevicesPerUser":1}}`,
		`{"PreferredRegions":["WestUs"],"NetworkConfiguration":{"MaxUsers":2,"MaxDevices":2,"MaxUsersPerDevice":1,"MaxDevicesPerUser":1,"PartyInvitationConfiguration":{"Revocability":"creator","EntityKeys":[{"Id":"x"}]}}}`,
		`[]`, `null`, ``, `{`, `"x"`,
	} {
		f.Add([]byte(`{}`), []byte(body))
	}
	f.Add([]byte(`{"Entity":{"Id":"P1","Type":"title_player_account"}}`), []byte(valid))
	f.Add([]byte(`{"Entity":{"Id":"GS","Type":"game_server"},"CustomTags":{"a":"b"}}`), []byte(valid))
	f.Add([]byte(`{"Entity":{"Id":""}}`), []byte(valid))
	f.Add([]byte(`not json`), []byte(valid))
	if sdk, err := os.ReadFile("testdata/nodesdk_requests.json"); err == nil {
		f.Add([]byte(``), sdk)
	}

	f.Fuzz(func(t *testing.T, tokenBody, partyBody []byte) {
		fake := fakeplayfab.New(fakeplayfab.Config{SecretKey: secret, Logger: slog.New(slog.DiscardHandler)})
		status, env := post(t, fake, "/Authentication/GetEntityToken", map[string]string{"X-SecretKey": secret}, tokenBody)
		token, entityType := "", ""
		if status == http.StatusOK {
			var data tokenData
			if err := json.Unmarshal(env.Data, &data); err != nil || data.EntityToken == "" || data.Entity.Type == "" {
				t.Fatalf("GetEntityToken data %s lacks EntityToken or Entity", env.Data)
			}
			token, entityType = data.EntityToken, data.Entity.Type
		}

		status, env = post(t, fake, "/Party/RequestPartyService", map[string]string{"X-EntityToken": token}, partyBody)
		problem := contractProblem(partyBody)
		switch {
		case token == "":
			wantError(t, status, env, "EntityTokenMissing")
			return
		case entityType != "title" && entityType != "game_server":
			wantError(t, status, env, "InvalidEntityType")
			return
		case problem != "" && status == http.StatusOK:
			t.Fatalf("accepted a request the contract refuses (%s): %s", problem, partyBody)
		case problem == "" && status != http.StatusOK:
			t.Fatalf("refused a valid request with %d %s %v: %s", status, env.Error, env.ErrorDetails, partyBody)
		case problem != "":
			if env.Error != "InvalidParams" && env.Error != "InvalidContentType" {
				t.Fatalf("an invalid request (%s) got %s", problem, env.Error)
			}
			return
		}
		if named := checkParty(t, env, partyBody); !named {
			return // each call without a PartyId is a new party
		}
		status, again := post(t, fake, "/Party/RequestPartyService", map[string]string{"X-EntityToken": token}, partyBody)
		if status != http.StatusOK || !bytes.Equal(again.Data, env.Data) {
			t.Fatalf("the same PartyId got another party: %s then %s", env.Data, again.Data)
		}
	})
}

// post calls the fake in process and checks the envelope every reply has.
func post(t *testing.T, fake *fakeplayfab.Server, path string, header map[string]string, body []byte) (int, envelope) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path+"?sdk=FuzzSDK-1.0", bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	fake.ServeHTTP(rec, req)
	// The fake spells the header as PlayFab does, outside Go's canonical form.
	if rec.Header().Get("Content-Type") != "application/json" || len(rec.Header()["X-RequestId"]) == 0 {
		t.Fatalf("reply headers %v lack the content type or X-RequestId", rec.Header())
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &members); err != nil {
		t.Fatalf("reply is not a JSON object: %q", rec.Body.Bytes())
	}
	var env envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("reply is not PlayFab's envelope: %v: %s", err, rec.Body.Bytes())
	}
	if env.Code != rec.Code || env.Status != strings.ReplaceAll(http.StatusText(rec.Code), " ", "") {
		t.Fatalf("HTTP %d with envelope code %d status %q", rec.Code, env.Code, env.Status)
	}
	_, hasData := members["data"]
	_, hasError := members["error"]
	if rec.Code == http.StatusOK {
		if !hasData || hasError || env.Status != "OK" {
			t.Fatalf("success without data, or with an error: %s", rec.Body.Bytes())
		}
		return rec.Code, env
	}
	code, known := contractErrors[env.Error]
	switch {
	case hasData || !hasError:
		t.Fatalf("failure with data, or without an error: %s", rec.Body.Bytes())
	case !known:
		t.Fatalf("error name %q is not in the contract", env.Error)
	case env.ErrorCode != code:
		t.Fatalf("error %s has errorCode %d, the contract says %d", env.Error, env.ErrorCode, code)
	case env.ErrorMessage == "":
		t.Fatalf("error without a message: %s", rec.Body.Bytes())
	}
	return rec.Code, env
}

// contractErrors are the PlayFab error names and numbers the fake may
// answer these two calls with (the contract's table, and PlayFab's numbers
// for a body too large).
var contractErrors = map[string]int{
	"InvalidParams": 1000, "InvalidRequest": 1071, "NotAuthenticated": 1074, "NotAuthorized": 1089,
	"InternalServerError": 1110, "ServiceUnavailable": 1123, "APIClientRequestRateLimitExceeded": 1199,
	"EntityTokenMissing": 1334, "EntityTokenInvalid": 1335, "EntityTokenExpired": 1336, "EntityTokenRevoked": 1337,
	"InvalidContentType": 1144, "InvalidEntityType": 1373, "BodyTooLarge": 1068,
}

func wantError(t *testing.T, status int, env envelope, name string) {
	t.Helper()
	if status == http.StatusOK || env.Error != name {
		t.Fatalf("want %s, got %d %s", name, status, env.Error)
	}
}

// checkParty checks a 200 reply against the request it answers, and
// reports whether the request named its PartyId.
func checkParty(t *testing.T, env envelope, body []byte) bool {
	t.Helper()
	var p partyData
	if err := json.Unmarshal(env.Data, &p); err != nil {
		t.Fatalf("party data: %v: %s", err, env.Data)
	}
	var req struct {
		PartyID              *string  `json:"PartyId"`
		PreferredRegions     []string `json:"PreferredRegions"`
		NetworkConfiguration struct {
			PartyInvitationConfiguration *struct {
				Identifier *string `json:"Identifier"`
			} `json:"PartyInvitationConfiguration"`
		} `json:"NetworkConfiguration"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("an accepted request does not decode: %v", err)
	}
	if req.PartyID != nil && *req.PartyID != "" && p.PartyID != *req.PartyID {
		t.Fatalf("PartyId %q came back as %q", *req.PartyID, p.PartyID)
	}
	party, err := uuid.Parse(p.PartyID)
	if err != nil {
		t.Fatalf("PartyId %q is not a GUID", p.PartyID)
	}
	inv := ""
	if pic := req.NetworkConfiguration.PartyInvitationConfiguration; pic != nil && pic.Identifier != nil {
		inv = *pic.Identifier
	}
	if inv != "" && p.InvitationID != inv {
		t.Fatalf("invitation %q came back as %q", inv, p.InvitationID)
	}
	if _, err := uuid.Parse(p.InvitationID); inv == "" && err != nil {
		t.Fatalf("generated InvitationId %q is not a GUID", p.InvitationID)
	}
	d := p.SerializedNetworkDescriptor
	if _, err := base64.StdEncoding.DecodeString(d); err != nil || len(d) > 448 {
		t.Fatalf("descriptor %q is not base64 of at most 448 characters", d)
	}
	info, err := fakeplayfab.DecodeDescriptor(d)
	if err != nil {
		t.Fatalf("descriptor: %v", err)
	}
	if info.PartyID != party.String() || info.Region != req.PreferredRegions[0] || info.RelayHost == "" {
		t.Fatalf("descriptor %+v does not name party %s in region %q", info, party, req.PreferredRegions[0])
	}
	return req.PartyID != nil && *req.PartyID != ""
}

// contractProblem says why body breaks the RequestPartyService contract,
// or "" when it keeps it. Field names match as the fake's JSON decoding
// matches them (case-insensitively, the last one winning); integers are
// JSON integers; null is a missing value.
func contractProblem(body []byte) string {
	if !json.Valid(body) {
		return "not JSON"
	}
	var req struct {
		PartyID              any             `json:"PartyId"`
		NetworkConfiguration json.RawMessage `json:"NetworkConfiguration"`
		PreferredRegions     any             `json:"PreferredRegions"`
		PlayFabID            any             `json:"PlayFabId"`
		CustomTags           any             `json:"CustomTags"`
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) || decode(body, &req) != nil {
		return "not an object"
	}
	if req.PartyID != nil {
		s, ok := req.PartyID.(string)
		if !ok {
			return "PartyId is not a string"
		}
		if _, err := uuid.Parse(s); s != "" && err != nil {
			return "PartyId is not a GUID"
		}
	}
	if _, ok := req.PlayFabID.(string); req.PlayFabID != nil && !ok {
		return "PlayFabId is not a string"
	}
	if req.CustomTags != nil {
		tags, ok := req.CustomTags.(map[string]any)
		if !ok {
			return "CustomTags is not an object"
		}
		for _, v := range tags {
			if _, ok := v.(string); v != nil && !ok {
				return "CustomTags holds a value that is not a string"
			}
		}
	}
	regions, ok := req.PreferredRegions.([]any)
	if !ok || len(regions) == 0 {
		return "PreferredRegions is required"
	}
	for _, r := range regions {
		s, ok := r.(string)
		if !ok || s == "" || len(s) > 64 { // 64: the fake's own bound (validate.go)
			return "a region is not a name"
		}
	}
	var nc struct {
		MaxUsers                      any             `json:"MaxUsers"`
		MaxDevices                    any             `json:"MaxDevices"`
		MaxUsersPerDevice             any             `json:"MaxUsersPerDevice"`
		MaxDevicesPerUser             any             `json:"MaxDevicesPerUser"`
		MaxEndpointsPerDevice         any             `json:"MaxEndpointsPerDevice"`
		DirectPeerConnectivityOptions any             `json:"DirectPeerConnectivityOptions"`
		PartyInvitationConfiguration  json.RawMessage `json:"PartyInvitationConfiguration"`
	}
	if isNull(req.NetworkConfiguration) {
		return "NetworkConfiguration is required"
	}
	if decode(req.NetworkConfiguration, &nc) != nil {
		return "NetworkConfiguration is not an object"
	}
	for _, r := range []struct {
		name     string
		v        any
		required bool
		lo, hi   int64
	}{
		{"MaxUsers", nc.MaxUsers, true, 1, math.MaxInt32},
		{"MaxDevices", nc.MaxDevices, true, 1, 128},
		{"MaxUsersPerDevice", nc.MaxUsersPerDevice, true, 1, 8},
		{"MaxDevicesPerUser", nc.MaxDevicesPerUser, true, 1, math.MaxInt32},
		{"MaxEndpointsPerDevice", nc.MaxEndpointsPerDevice, false, 0, 32},
	} {
		if r.v == nil {
			if r.required {
				return r.name + " is required"
			}
			continue
		}
		n, ok := r.v.(json.Number)
		if !ok {
			return r.name + " is not a number"
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || i < r.lo || i > r.hi {
			return r.name + " is out of range"
		}
	}
	if v := nc.DirectPeerConnectivityOptions; v != nil {
		s, ok := v.(string)
		if !ok || !slices.ContainsFunc(peerOptions, func(o string) bool { return strings.EqualFold(o, s) }) {
			return "DirectPeerConnectivityOptions is not an option"
		}
	}
	if isNull(nc.PartyInvitationConfiguration) {
		return ""
	}
	return invitationProblem(nc.PartyInvitationConfiguration)
}

// peerOptions are DirectPeerConnectivityOptions' values; like .NET's enum
// binding, the fake ignores their case.
var peerOptions = []string{"None", "SamePlatformType", "DifferentPlatformType", "AnyPlatformType",
	"SameEntityLoginProvider", "DifferentEntityLoginProvider", "AnyEntityLoginProvider",
	"AnyPlatformTypeAndEntityLoginProvider", "OnlyServers"}

func invitationProblem(raw json.RawMessage) string {
	var inv struct {
		Identifier   any               `json:"Identifier"`
		Revocability any               `json:"Revocability"`
		EntityKeys   []json.RawMessage `json:"EntityKeys"`
	}
	if decode(raw, &inv) != nil {
		return "PartyInvitationConfiguration is not an object with a list of EntityKeys"
	}
	if inv.Identifier != nil {
		s, ok := inv.Identifier.(string)
		if !ok || utf8.RuneCountInString(s) > 127 {
			return "Identifier is not a string of at most 127 characters"
		}
	}
	if inv.Revocability != nil {
		s, ok := inv.Revocability.(string)
		if !ok || !(strings.EqualFold(s, "Creator") || strings.EqualFold(s, "Anyone")) {
			return "Revocability is not Creator or Anyone"
		}
	}
	if len(inv.EntityKeys) > 1024 {
		return "more than 1024 EntityKeys"
	}
	for _, k := range inv.EntityKeys {
		var key struct {
			ID   any `json:"Id"`
			Type any `json:"Type"`
		}
		if isNull(k) || decode(k, &key) != nil {
			return "an entity key is not an object"
		}
		id, idOK := key.ID.(string)
		typ, typeOK := key.Type.(string)
		if !idOK || !typeOK || id == "" || typ == "" {
			return "an entity key lacks Id or Type"
		}
	}
	return ""
}

// decode decodes a JSON object into dst, numbers as json.Number.
func decode(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(dst)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}
