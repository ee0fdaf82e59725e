// Package matchmaker holds queues and tickets and forms matches of exactly a
// queue's MaxUsers players. Formation runs on the node holding the queue's
// lease; every match is committed by one atomic script in store, so a ticket
// is never in two matches even if two nodes believe they lead.
package matchmaker

import (
	"errors"
	"fmt"
	"slices"

	"github.com/lobbyd/lobbyd/store"
)

// Queue configures one matchmaking queue.
type Queue struct {
	// Name identifies the queue in queue.join and in Redis keys.
	Name string `json:"name"`
	// MaxUsers is the exact number of players in every match, and PlayFab's
	// NetworkConfiguration.MaxUsers.
	MaxUsers int `json:"maxUsers"`
	// Regions lists the PlayFab regions this queue may use, most preferred
	// first. A ticket's own regions must be among them.
	Regions []string `json:"regions"`

	// PlayFab Party network settings (PartyNetworkConfiguration).
	MaxDevices             int    `json:"maxDevices"`
	MaxDevicesPerUser      int    `json:"maxDevicesPerUser"`
	MaxUsersPerDevice      int    `json:"maxUsersPerDevice"`
	MaxEndpointsPerDevice  int    `json:"maxEndpointsPerDevice"`
	DirectPeerConnectivity string `json:"directPeerConnectivity,omitempty"`
}

// DefaultQueues is the configuration used when none is given: one queue,
// "default", of four players, one device each.
func DefaultQueues() []Queue {
	return []Queue{{
		Name:                  "default",
		MaxUsers:              4,
		Regions:               []string{"EastUs", "WestUs", "NorthEurope", "WestEurope"},
		MaxDevices:            4,
		MaxDevicesPerUser:     1,
		MaxUsersPerDevice:     1,
		MaxEndpointsPerDevice: 1,
	}}
}

// directPeerOptions are PlayFab's DirectPeerConnectivityOptions values.
var directPeerOptions = []string{
	"None", "SamePlatformType", "DifferentPlatformType", "AnyPlatformType",
	"SameEntityLoginProvider", "DifferentEntityLoginProvider", "AnyEntityLoginProvider",
	"AnyPlatformTypeAndEntityLoginProvider", "OnlyServers",
}

// Validate checks the queue against lobbyd's and PlayFab's rules, so a bad
// configuration stops start-up instead of failing every allocation.
func (q Queue) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(store.ValidName(q.Name), "name %q: use 1 to 64 letters, digits, '_', '.' or '-'", q.Name)
	check(q.MaxUsers >= 2 && q.MaxUsers <= 128*8, "maxUsers %d: must be between 2 and 1024", q.MaxUsers)
	check(q.MaxDevices >= 1 && q.MaxDevices <= 128, "maxDevices %d: must be between 1 and 128", q.MaxDevices)
	check(q.MaxUsersPerDevice >= 1 && q.MaxUsersPerDevice <= 8, "maxUsersPerDevice %d: must be between 1 and 8", q.MaxUsersPerDevice)
	check(q.MaxDevicesPerUser >= 1, "maxDevicesPerUser %d: must be at least 1", q.MaxDevicesPerUser)
	check(q.MaxEndpointsPerDevice >= 0 && q.MaxEndpointsPerDevice <= 32, "maxEndpointsPerDevice %d: must be between 0 and 32", q.MaxEndpointsPerDevice)
	check(q.MaxUsers <= q.MaxDevices*q.MaxUsersPerDevice,
		"maxUsers %d: more than maxDevices × maxUsersPerDevice (%d) could join", q.MaxUsers, q.MaxDevices*q.MaxUsersPerDevice)
	check(q.DirectPeerConnectivity == "" || slices.Contains(directPeerOptions, q.DirectPeerConnectivity),
		"directPeerConnectivity %q: must be one of %v", q.DirectPeerConnectivity, directPeerOptions)
	check(len(q.Regions) > 0, "regions: at least one region is required (PlayFab needs PreferredRegions)")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("queue %q: %w", q.Name, err)
	}
	return nil
}

// ValidateQueues checks every queue and that names are unique.
func ValidateQueues(queues []Queue) error {
	if len(queues) == 0 {
		return errors.New("no queues configured")
	}
	seen := make(map[string]bool)
	var errs []error
	for _, q := range queues {
		if seen[q.Name] {
			errs = append(errs, fmt.Errorf("queue %q: defined twice", q.Name))
		}
		seen[q.Name] = true
		errs = append(errs, q.Validate())
	}
	return errors.Join(errs...)
}
