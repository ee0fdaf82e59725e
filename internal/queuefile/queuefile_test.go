package queuefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc"
)

func TestExampleConfigLoads(t *testing.T) {
	f, err := Load("../../lobbyd.example.yaml")
	require.NoError(t, err)
	require.Len(t, f.Queues, 3)
	assert.Empty(t, f.Deprecated, "the example uses playfab: blocks")
	duel := f.Queues[0]
	assert.Equal(t, "duel", duel.Name)
	assert.Equal(t, 2, duel.MaxUsers)
	assert.Equal(t, 5*time.Minute, duel.TicketTimeout.D())
	assert.Equal(t, 400.0, duel.Skill.MaxWindow)
	assert.Equal(t, 120, duel.MaxLatencyMs)
	assert.Equal(t, partyalloc.Network{MaxDevices: 2, MaxDevicesPerUser: 1, MaxUsersPerDevice: 1, MaxEndpointsPerDevice: 1,
		DirectPeerConnectivity: "AnyPlatformType"}, duel.PlayFab)
	assert.Equal(t, 45*time.Second, f.Queues[2].MaxWait.D())
	assert.Equal(t, 2, f.Queues[2].PlayFab.MaxUsersPerDevice)
}

func TestConfigDefaults(t *testing.T) {
	f, err := Parse([]byte(`
queues:
  - name: q
    maxUsers: 2
    regions: [WestUs]
    playfab:
      maxDevices: 2
      maxDevicesPerUser: 1
      maxUsersPerDevice: 1
`))
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, f.Queues[0].TicketTimeout.D())
	assert.Equal(t, 90*time.Second, f.Queues[0].MaxWait.D())
	assert.False(t, f.Queues[0].Skill.Enabled())
	assert.Zero(t, f.Queues[0].PlayFab.MaxEndpointsPerDevice)
	assert.Empty(t, f.Queues[0].PlayFab.DirectPeerConnectivity)
}

// The old flat form and the playfab: block load to the same queue and
// network; the old form is listed once per queue, with the fields written.
func TestOldFlatFormLoadsAsTheBlock(t *testing.T) {
	old := "queues:\n" +
		"  - name: duel\n    maxUsers: 2\n    regions: [EastUs]\n    maxDevices: 2\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    maxEndpointsPerDevice: 1\n    directPeerConnectivity: AnyPlatformType\n" +
		"  - name: squad\n    maxUsers: 4\n    regions: [EastUs]\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n"
	block := "queues:\n" +
		"  - name: duel\n    maxUsers: 2\n    regions: [EastUs]\n    playfab:\n      maxDevices: 2\n      maxDevicesPerUser: 1\n      maxUsersPerDevice: 1\n      maxEndpointsPerDevice: 1\n      directPeerConnectivity: AnyPlatformType\n" +
		"  - name: squad\n    maxUsers: 4\n    regions: [EastUs]\n    playfab: {maxDevices: 4, maxDevicesPerUser: 1, maxUsersPerDevice: 1}\n"
	fromOld, err := Parse([]byte(old))
	require.NoError(t, err)
	fromBlock, err := Parse([]byte(block))
	require.NoError(t, err)
	assert.Equal(t, fromBlock.Queues, fromOld.Queues)
	assert.Equal(t, fromBlock.Networks(), fromOld.Networks())
	assert.Equal(t, partyalloc.NetworkConfiguration{MaxUsers: 2, MaxDevices: 2, MaxUsersPerDevice: 1, MaxDevicesPerUser: 1,
		MaxEndpointsPerDevice: 1, DirectPeerConnectivityOptions: "AnyPlatformType"}, fromOld.Networks()["duel"])

	assert.Empty(t, fromBlock.Deprecated)
	assert.Empty(t, fromBlock.Warning())
	assert.Equal(t, []Deprecated{
		{"duel", []string{"maxDevices", "maxDevicesPerUser", "maxUsersPerDevice", "maxEndpointsPerDevice", "directPeerConnectivity"}},
		{"squad", []string{"maxDevices", "maxDevicesPerUser", "maxUsersPerDevice"}},
	}, fromOld.Deprecated)
	w := fromOld.Warning()
	for _, want := range []string{`"duel" (maxDevices, maxDevicesPerUser, maxUsersPerDevice, maxEndpointsPerDevice, directPeerConnectivity)`,
		`"squad" (maxDevices, maxDevicesPerUser, maxUsersPerDevice)`, "playfab: block"} {
		assert.Contains(t, w, want)
	}
	assert.Equal(t, 1, strings.Count(w, "\n")+1, "one line")
}

func TestDefaultIsTheBuiltInQueue(t *testing.T) {
	f := Default()
	require.Len(t, f.Queues, 1)
	assert.Equal(t, "default", f.Queues[0].Name)
	assert.Equal(t, partyalloc.NetworkConfiguration{MaxUsers: 4, MaxDevices: 4, MaxUsersPerDevice: 1, MaxDevicesPerUser: 1,
		MaxEndpointsPerDevice: 1}, f.Networks()["default"], "as before the playfab: block")
	require.NoError(t, f.Queues[0].Validate())
}

func TestConfigErrorsNameFileQueueAndField(t *testing.T) {
	base := "queues:\n  - name: squad\n    maxUsers: 4\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    regions: [WestUs]\n"
	block := "queues:\n  - name: squad\n    maxUsers: 4\n    regions: [WestUs]\n    playfab:\n      maxDevices: 4\n      maxDevicesPerUser: 1\n      maxUsersPerDevice: 1\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"typo in a field", base + "    maxWiat: 30s\n", []string{"maxWiat", "line 8"}},
		{"out of PlayFab's range", strings.Replace(base, "maxDevices: 4", "maxDevices: 200", 1), []string{"queues[0]", `"squad"`, "maxDevices 200", "between 1 and 128"}},
		{"bad duration", base + "    ticketTimeout: soon\n", []string{"ticketTimeout", "line 8", "not a duration"}},
		{"maxWait past the timeout", base + "    ticketTimeout: 1m\n    maxWait: 2m\n", []string{"maxWait", "ticketTimeout"}},
		{"skill without maxWindow", base + "    skill:\n      initialWindow: 100\n", []string{"skill", "maxWindow"}},
		{"skill maxWindow below initial", base + "    skill:\n      initialWindow: 100\n      maxWindow: 50\n", []string{"skill.maxWindow"}},
		{"unknown peer option", base + "    directPeerConnectivity: Sometimes\n", []string{"directPeerConnectivity"}},
		{"no regions", strings.Replace(base, "    regions: [WestUs]\n", "", 1), []string{"regions"}},
		{"duplicate names", base + strings.Replace(base, "queues:\n", "", 1), []string{"defined twice"}},
		{"empty file", "", []string{"empty"}},
		{"no queues", "queues: []\n", []string{"no queues"}},
		{"no network", "queues:\n  - name: squad\n    maxUsers: 4\n    regions: [WestUs]\n", []string{`"squad"`, "maxDevices 0"}},
		{"block out of range", strings.Replace(block, "maxDevices: 4", "maxDevices: 200", 1), []string{"queues[0]", `"squad"`, "playfab: maxDevices 200"}},
		{"block too small for maxUsers", strings.Replace(block, "maxDevices: 4", "maxDevices: 2", 1), []string{"playfab: maxUsers 4", "more than maxDevices"}},
		{"typo in the block", block + "      maxDevice: 4\n", []string{"maxDevice", "line 9"}},
		{"block and flat fields", block + "    maxEndpointsPerDevice: 1\n    directPeerConnectivity: None\n",
			[]string{`"squad"`, "maxEndpointsPerDevice, directPeerConnectivity written beside a playfab: block", "in the block only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lobbyd.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			_, err := Load(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path, "the error names the file")
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
