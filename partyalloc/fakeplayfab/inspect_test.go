package fakeplayfab_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

func TestPartyInspection(t *testing.T) {
	fake, srv := start(t, fakeplayfab.Config{})
	tok := getToken(t, srv)
	id := uuid.NewString()
	body := validRequest(id)
	body["NetworkConfiguration"].(map[string]any)["PartyInvitationConfiguration"] = map[string]any{
		"Revocability": "Anyone", "EntityKeys": []any{map[string]any{"Id": "E1", "Type": "title_player_account"}},
	}
	status, _, _ := call(t, srv, http.MethodPost, "/Party/RequestPartyService", map[string]string{"X-EntityToken": tok}, mustJSON(t, body))
	require.Equal(t, http.StatusOK, status)

	raw, ok := fake.LastRequest(id)
	require.True(t, ok)
	var got struct {
		NetworkConfiguration struct {
			MaxUsers                     int
			PartyInvitationConfiguration struct {
				Revocability string
				EntityKeys   []struct{ Id, Type string }
			}
		}
		PreferredRegions []string
	}
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, 8, got.NetworkConfiguration.MaxUsers)
	assert.Equal(t, []string{"WestUs", "EastUs"}, got.PreferredRegions)
	assert.Equal(t, "Anyone", got.NetworkConfiguration.PartyInvitationConfiguration.Revocability)
	assert.Equal(t, "E1", got.NetworkConfiguration.PartyInvitationConfiguration.EntityKeys[0].Id)

	resp, err := http.Get(srv.URL + "/_fake/parties/" + id)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var view struct {
		Party   struct{ PartyId, SerializedNetworkDescriptor string }
		Request json.RawMessage
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&view))
	assert.Equal(t, id, view.Party.PartyId)
	assert.JSONEq(t, string(raw), string(view.Request))

	resp, err = http.Get(srv.URL + "/_fake/parties/" + uuid.NewString())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
