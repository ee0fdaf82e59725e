package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Lua scripts, one file each in scripts/. Every script is safe to run twice:
// go-redis re-sends a command whose reply was lost.
var (
	//go:embed scripts/commit_matches.lua
	commitMatchesLua    string
	commitMatchesScript = redis.NewScript(commitMatchesLua)

	//go:embed scripts/begin_attempt.lua
	beginAttemptLua    string
	beginAttemptScript = redis.NewScript(beginAttemptLua)

	//go:embed scripts/store_party.lua
	storePartyLua    string
	storePartyScript = redis.NewScript(storePartyLua)

	//go:embed scripts/fail_match.lua
	failMatchLua    string
	failMatchScript = redis.NewScript(failMatchLua)

	//go:embed scripts/cancel_ticket.lua
	cancelTicketLua    string
	cancelTicketScript = redis.NewScript(cancelTicketLua)

	//go:embed scripts/compare_delete.lua
	compareDeleteLua    string
	compareDeleteScript = redis.NewScript(compareDeleteLua)

	//go:embed scripts/acquire_lease.lua
	acquireLeaseLua    string
	acquireLeaseScript = redis.NewScript(acquireLeaseLua)

	//go:embed scripts/replace_claim.lua
	replaceClaimLua    string
	replaceClaimScript = redis.NewScript(replaceClaimLua)
)

var (
	//go:embed scripts/store_pending_match.lua
	storePendingMatchLua    string
	storePendingMatchScript = redis.NewScript(storePendingMatchLua)

	//go:embed scripts/ack_pending_match.lua
	ackPendingMatchLua    string
	ackPendingMatchScript = redis.NewScript(ackPendingMatchLua)

	//go:embed scripts/supersede_pending_match.lua
	supersedePendingMatchLua    string
	supersedePendingMatchScript = redis.NewScript(supersedePendingMatchLua)
)

var (
	//go:embed scripts/lobby_mutate.lua
	lobbyMutateLua    string
	lobbyMutateScript = redis.NewScript(lobbyMutateLua)

	//go:embed scripts/pop_due.lua
	popDueLua    string
	popDueScript = redis.NewScript(popDueLua)

	//go:embed scripts/prune_searching_data.lua
	pruneSearchingDataLua    string
	pruneSearchingDataScript = redis.NewScript(pruneSearchingDataLua)

	//go:embed scripts/remove_if_score.lua
	removeIfScoreLua    string
	removeIfScoreScript = redis.NewScript(removeIfScoreLua)
)

var allScripts = []*redis.Script{
	commitMatchesScript, beginAttemptScript, storePartyScript, failMatchScript,
	cancelTicketScript, compareDeleteScript, acquireLeaseScript,
	replaceClaimScript, storePendingMatchScript, ackPendingMatchScript, supersedePendingMatchScript, lobbyMutateScript, popDueScript, removeIfScoreScript,
	pruneSearchingDataScript,
}

// LoadScripts loads every script into Redis (every primary of a cluster).
// It is optional: scripts are loaded on first use anyway.
func (s *Store) LoadScripts(ctx context.Context) error { return s.loadScripts(ctx) }

// loadScripts loads every script into Redis (every primary of a cluster), so
// pipelines can send EVALSHA, which has no fallback to EVAL inside a pipeline.
func (s *Store) loadScripts(ctx context.Context) error {
	load := func(ctx context.Context, c redis.Scripter) error {
		for _, sc := range allScripts {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("load lua script: %w", err)
			}
		}
		return nil
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return load(ctx, c) })
	}
	return load(ctx, s.rdb)
}

// execScripted runs a pipeline that calls scripts. Redis forgets scripts on
// restart or failover; on NOSCRIPT the scripts are loaded again and the
// pipeline, whose commands must all be idempotent, is sent once more.
func (s *Store) execScripted(ctx context.Context, fill func(pipe redis.Pipeliner)) error {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		fill(pipe)
		_, err := pipe.Exec(ctx)
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		if err == nil || attempt > 0 || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
		if lerr := s.loadScripts(ctx); lerr != nil {
			return lerr
		}
	}
}
