package store

import (
	"context"
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

// newClusterClient is the client of a Redis Cluster, with the reloads
// above.
func newClusterClient(opts *redis.UniversalOptions) *redis.ClusterClient {
	copts := opts.Cluster()
	copts.ClusterStateReloadInterval = clusterStateReload
	cc := redis.NewClusterClient(copts)
	cc.AddHook(reloadOnUnreachable{cc})
	return cc
}

// reloadOnUnreachable asks the cluster client to reload its slot map when
// a command or pipeline fails because a node could not be reached or
// served it (see isUnavailable): a primary that died, whose slots another
// node serves now. go-redis runs one reload at a time in the background.
type reloadOnUnreachable struct{ cc *redis.ClusterClient }

func (reloadOnUnreachable) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnUnreachable) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isUnavailable(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

func (h reloadOnUnreachable) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if isUnavailable(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}
