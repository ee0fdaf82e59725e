package fakeplayfab_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// TestSDKRequestShapes replays, over HTTPS, requests shaped exactly as
// PlayFab's own SDKs send them: the fake must accept what real clients send.
func TestSDKRequestShapes(t *testing.T) {
	raw, err := os.ReadFile("testdata/nodesdk_requests.json")
	require.NoError(t, err)
	var fixture struct {
		Requests []struct {
			Name, Path, Body string
			Headers          map[string]string
		}
	}
	require.NoError(t, json.Unmarshal(raw, &fixture))
	require.NotEmpty(t, fixture.Requests)

	fake := fakeplayfab.New(fakeplayfab.Config{TitleID: "SDKT", SecretKey: secret, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()

	token := ""
	for _, r := range fixture.Requests {
		t.Run(r.Name, func(t *testing.T) {
			subst := strings.NewReplacer("{{SECRET}}", secret, "{{TOKEN}}", token)
			req, err := http.NewRequest(http.MethodPost, srv.URL+r.Path, strings.NewReader(r.Body))
			require.NoError(t, err)
			for k, v := range r.Headers {
				req.Header[k] = []string{subst.Replace(v)} // exact spelling, as the SDK sends it
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var env envelope
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			require.Equal(t, http.StatusOK, resp.StatusCode, "%+v", env)
			assert.Equal(t, 200, env.Code)
			assert.Equal(t, "OK", env.Status)
			assert.Empty(t, env.Error)
			if strings.HasPrefix(r.Path, "/Authentication/GetEntityToken") {
				var data tokenData
				require.NoError(t, json.Unmarshal(env.Data, &data))
				token = data.EntityToken
				return
			}
			var party struct{ PartyId, SerializedNetworkDescriptor, InvitationId string }
			require.NoError(t, json.Unmarshal(env.Data, &party))
			assert.NotEmpty(t, party.PartyId)
			assert.NotEmpty(t, party.SerializedNetworkDescriptor)
			assert.NotEmpty(t, party.InvitationId)
			if strings.Contains(r.Body, "e95366d4-3b0a-4d2c-8a54-1f0f3b5a7d10") {
				assert.Equal(t, "e95366d4-3b0a-4d2c-8a54-1f0f3b5a7d10", party.InvitationId, "the supplied identifier is the invitation id")
				assert.Equal(t, "0543645b-7c05-4e5c-9f7b-6d1b8a8b3c21", party.PartyId)
			}
		})
	}
}
