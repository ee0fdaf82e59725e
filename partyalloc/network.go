package partyalloc

import (
	"errors"
	"fmt"
	"slices"
)

// Network is a queue's PlayFab Party network settings, written in the
// queue's playfab: block of the queue file. With the queue's match size it
// makes the NetworkConfiguration of every RequestPartyService for the
// queue (see Configuration). The JSON names are those GET /v1/queues
// serves.
type Network struct {
	// MaxDevices is PlayFab's MaxDevices, 1 to 128.
	MaxDevices int `json:"maxDevices" yaml:"maxDevices"`
	// MaxDevicesPerUser is PlayFab's MaxDevicesPerUser, at least 1.
	MaxDevicesPerUser int `json:"maxDevicesPerUser" yaml:"maxDevicesPerUser"`
	// MaxUsersPerDevice is PlayFab's MaxUsersPerDevice, 1 to 8.
	MaxUsersPerDevice int `json:"maxUsersPerDevice" yaml:"maxUsersPerDevice"`
	// MaxEndpointsPerDevice is PlayFab's MaxEndpointsPerDevice, 0 to 32.
	MaxEndpointsPerDevice int `json:"maxEndpointsPerDevice" yaml:"maxEndpointsPerDevice"`
	// DirectPeerConnectivity is PlayFab's DirectPeerConnectivityOptions,
	// one of DirectPeerOptions; empty leaves it out of the request.
	DirectPeerConnectivity string `json:"directPeerConnectivity,omitempty" yaml:"directPeerConnectivity"`
}

// DirectPeerOptions are PlayFab's DirectPeerConnectivityOptions values.
var DirectPeerOptions = []string{
	"None", "SamePlatformType", "DifferentPlatformType", "AnyPlatformType",
	"SameEntityLoginProvider", "DifferentEntityLoginProvider", "AnyEntityLoginProvider",
	"AnyPlatformTypeAndEntityLoginProvider", "OnlyServers",
}

// Validate checks the settings against PlayFab's rules for a network of
// maxUsers players, so a bad queue file stops start-up instead of failing
// every allocation. Each error names the field as the queue file spells it.
func (n Network) Validate(maxUsers int) error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(n.MaxDevices >= 1 && n.MaxDevices <= 128, "maxDevices %d: must be between 1 and 128", n.MaxDevices)
	check(n.MaxUsersPerDevice >= 1 && n.MaxUsersPerDevice <= 8, "maxUsersPerDevice %d: must be between 1 and 8", n.MaxUsersPerDevice)
	check(n.MaxDevicesPerUser >= 1, "maxDevicesPerUser %d: must be at least 1", n.MaxDevicesPerUser)
	check(n.MaxEndpointsPerDevice >= 0 && n.MaxEndpointsPerDevice <= 32, "maxEndpointsPerDevice %d: must be between 0 and 32", n.MaxEndpointsPerDevice)
	check(maxUsers <= n.MaxDevices*n.MaxUsersPerDevice,
		"maxUsers %d: more than maxDevices × maxUsersPerDevice (%d) could join", maxUsers, n.MaxDevices*n.MaxUsersPerDevice)
	check(n.DirectPeerConnectivity == "" || slices.Contains(DirectPeerOptions, n.DirectPeerConnectivity),
		"directPeerConnectivity %q: must be one of %v", n.DirectPeerConnectivity, DirectPeerOptions)
	return errors.Join(errs...)
}

// Configuration is the NetworkConfiguration of a party of maxUsers players
// with these settings (no invitation: the allocator adds the match's).
func (n Network) Configuration(maxUsers int) NetworkConfiguration {
	return NetworkConfiguration{
		MaxUsers: maxUsers, MaxDevices: n.MaxDevices, MaxUsersPerDevice: n.MaxUsersPerDevice,
		MaxDevicesPerUser: n.MaxDevicesPerUser, MaxEndpointsPerDevice: n.MaxEndpointsPerDevice,
		DirectPeerConnectivityOptions: n.DirectPeerConnectivity,
	}
}
