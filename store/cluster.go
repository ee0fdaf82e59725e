package store

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// On a Redis Cluster, go-redis learns which primary serves which slot from
// CLUSTER SLOTS, and reloads that map only when a node answers MOVED, ASK
// or READONLY, or every ClusterStateReloadInterval (60 s by default). A
// primary killed outright answers nothing: after its replica has taken
// over, every command for its slots would still go to the dead address
// until the next periodic reload, up to a minute of unavailable queues and
// players (measured: 56 s). So the map is reloaded every
// clusterStateReload, and at once when a command fails because its node
// could not be reached.

// clusterStateReload is how old the slot map may get before go-redis
// reloads it (one CLUSTER SLOTS per node every 2 s: nothing).
const clusterStateReload = 2 * time.Second

// newClusterClient is the client of a Redis Cluster, with its slot map
// reloaded every clusterStateReload; Open has it reloaded at once too when
// a command fails because its node could not be reached or served it
// (unavailableHook.onUnavailable). go-redis runs one reload at a time, in
// the background.
func newClusterClient(opts *redis.UniversalOptions) *redis.ClusterClient {
	copts := opts.Cluster()
	copts.ClusterStateReloadInterval = clusterStateReload
	return redis.NewClusterClient(copts)
}
