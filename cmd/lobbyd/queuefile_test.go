package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// A queue file in the old flat form and the same file with a playfab:
// block make the same RequestPartyService body and the same GET /v1/queues;
// the old form is warned about once at start-up, the block never.
func TestPlayFabBlockAndOldFlatForm(t *testing.T) {
	forms := map[string]string{
		"old": "queues:\n  - name: duo\n    maxUsers: 2\n    regions: [NorthEurope, EastUs]\n" +
			"    maxDevices: 2\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    maxEndpointsPerDevice: 3\n    directPeerConnectivity: AnyPlatformType\n",
		"block": "queues:\n  - name: duo\n    maxUsers: 2\n    regions: [NorthEurope, EastUs]\n    playfab:\n" +
			"      maxDevices: 2\n      maxDevicesPerUser: 1\n      maxUsersPerDevice: 1\n      maxEndpointsPerDevice: 3\n      directPeerConnectivity: AnyPlatformType\n",
	}
	bodies := map[string]map[string]any{}
	listed := map[string]map[string]any{}
	for form, yaml := range forms {
		path := filepath.Join(t.TempDir(), form+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
		srv, fake := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake}, map[string]string{"LOBBYD_CONFIG": path})

		matchID := ""
		for i := range 2 {
			name := fmt.Sprintf("%s%d", form, i)
			resp, err := http.Post(srv.URL+"/v1/dev/token", "application/json",
				strings.NewReader(fmt.Sprintf(`{"name":%q,"pfEntity":"pf-%s"}`, name, name)))
			require.NoError(t, err)
			var tok struct{ Token string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
			resp.Body.Close()
			c, _ := srv.connect(t, tok.Token)
			require.True(t, c.Request("queue.join", map[string]any{"queue": "duo"}).OK())
			if i == 1 {
				matchID = c.Next("match.ready").Str("matchId")
			}
		}
		raw, ok := fake.LastRequest(matchID)
		require.True(t, ok, "the fake recorded the request of match %s", matchID)
		var body map[string]any
		require.NoError(t, json.Unmarshal(raw, &body))
		// The match's own parts differ between the two runs.
		delete(body, "PartyId")
		delete(body["NetworkConfiguration"].(map[string]any), "PartyInvitationConfiguration")
		bodies[form] = body

		resp, err := http.Get(srv.URL + "/v1/queues")
		require.NoError(t, err)
		var qs struct{ Queues []map[string]any }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&qs))
		resp.Body.Close()
		require.Len(t, qs.Queues, 1)
		delete(qs.Queues[0], "depth")
		delete(qs.Queues[0], "estimatedWaitMs")
		listed[form] = qs.Queues[0]

		srv.shutdown(t)
		warnings := strings.Count(srv.stderr.String(), "move them, unchanged, into a playfab: block")
		if form == "old" {
			assert.Equal(t, 1, warnings, "one warning for the old form")
			assert.Contains(t, srv.stderr.String(), `queue \"duo\" (maxDevices, maxDevicesPerUser, maxUsersPerDevice, maxEndpointsPerDevice, directPeerConnectivity)`)
		} else {
			assert.Zero(t, warnings, "no warning for the block")
		}
	}
	assert.Equal(t, map[string]any{
		"MaxUsers": 2.0, "MaxDevices": 2.0, "MaxDevicesPerUser": 1.0, "MaxUsersPerDevice": 1.0,
		"MaxEndpointsPerDevice": 3.0, "DirectPeerConnectivityOptions": "AnyPlatformType",
	}, bodies["block"]["NetworkConfiguration"])
	assert.Equal(t, bodies["block"], bodies["old"], "the same RequestPartyService body")
	assert.Equal(t, listed["block"], listed["old"], "the same GET /v1/queues")
	for key, want := range map[string]any{"maxDevices": 2.0, "maxDevicesPerUser": 1.0, "maxUsersPerDevice": 1.0,
		"maxEndpointsPerDevice": 3.0, "directPeerConnectivity": "AnyPlatformType", "maxUsers": 2.0, "ticketTimeout": (10 * time.Minute).String()} {
		assert.Equal(t, want, listed["block"][key], "GET /v1/queues still serves %s", key)
	}
}
