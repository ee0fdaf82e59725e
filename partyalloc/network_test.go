package partyalloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetworkValidate(t *testing.T) {
	ok := Network{MaxDevices: 4, MaxDevicesPerUser: 1, MaxUsersPerDevice: 1, MaxEndpointsPerDevice: 1}
	require.NoError(t, ok.Validate(4))
	for _, tc := range []struct {
		mutate   func(*Network)
		maxUsers int
		want     string
	}{
		{func(n *Network) { n.MaxDevices = 129 }, 4, "maxDevices"},
		{func(n *Network) { n.MaxUsersPerDevice = 9 }, 4, "maxUsersPerDevice"},
		{func(n *Network) { n.MaxDevicesPerUser = 0 }, 4, "maxDevicesPerUser"},
		{func(n *Network) { n.MaxEndpointsPerDevice = 33 }, 4, "maxEndpointsPerDevice"},
		{func(n *Network) { n.DirectPeerConnectivity = "Sometimes" }, 4, "directPeerConnectivity"},
		{func(n *Network) {}, 8, "more than maxDevices"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			n := ok
			tc.mutate(&n)
			err := n.Validate(tc.maxUsers)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNetworkConfiguration(t *testing.T) {
	n := Network{MaxDevices: 8, MaxDevicesPerUser: 1, MaxUsersPerDevice: 2, MaxEndpointsPerDevice: 2, DirectPeerConnectivity: "None"}
	assert.Equal(t, NetworkConfiguration{MaxUsers: 16, MaxDevices: 8, MaxUsersPerDevice: 2, MaxDevicesPerUser: 1,
		MaxEndpointsPerDevice: 2, DirectPeerConnectivityOptions: "None"}, n.Configuration(16))
}
