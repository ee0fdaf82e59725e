package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scriptFS holds the Lua scripts, one file each in scripts/. Every script is
// safe to run twice: go-redis re-sends a command whose reply was lost.
//
//go:embed scripts/*.lua
var scriptFS embed.FS

// scripts is every script in scriptFS, by file name without ".lua". It is
// built from the directory itself, so loadScripts (which Redis needs after a
// restart or failover, see execScripted) cannot miss a script.
var scripts = readScripts(scriptFS)

// The scripts the store calls. script panics at start-up if one has no file.
var (
	commitMatchesScript         = script("commit_matches")
	beginAttemptScript          = script("begin_attempt")
	storePartyScript            = script("store_party")
	failMatchScript             = script("fail_match")
	cancelTicketScript          = script("cancel_ticket")
	compareDeleteScript         = script("compare_delete")
	acquireLeaseScript          = script("acquire_lease")
	replaceClaimScript          = script("replace_claim")
	storePendingMatchScript     = script("store_pending_match")
	ackPendingMatchScript       = script("ack_pending_match")
	supersedePendingMatchScript = script("supersede_pending_match")
	lobbyCASScript              = script("lobby_cas")
	popDueScript                = script("pop_due")
	pruneSearchingDataScript    = script("prune_searching_data")
	removeIfScoreScript         = script("remove_if_score")
	noteMatchErrorScript        = script("note_match_error")
	storeQueueConfigScript      = script("store_queue_config")
	markTicketLostScript        = script("mark_ticket_lost")
)

func readScripts(fsys fs.FS) map[string]*redis.Script {
	files, err := fs.Glob(fsys, "scripts/*.lua")
	if err != nil {
		panic(fmt.Sprintf("list lua scripts: %v", err))
	}
	out := make(map[string]*redis.Script, len(files))
	for _, f := range files {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			panic(fmt.Sprintf("read lua script %s: %v", f, err))
		}
		out[strings.TrimSuffix(path.Base(f), ".lua")] = redis.NewScript(string(src))
	}
	return out
}

func script(name string) *redis.Script {
	sc, ok := scripts[name]
	if !ok {
		panic("store: no lua script scripts/" + name + ".lua")
	}
	return sc
}

// scriptNames returns the names of every script, sorted.
func scriptNames() []string {
	names := make([]string, 0, len(scripts))
	for name := range scripts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// LoadScripts loads every script into Redis (every primary of a cluster).
// It is optional: scripts are loaded on first use anyway.
func (s *Store) LoadScripts(ctx context.Context) error { return s.loadScripts(ctx) }

// loadScripts loads every script into Redis (every primary of a cluster), so
// pipelines can send EVALSHA, which has no fallback to EVAL inside a pipeline.
func (s *Store) loadScripts(ctx context.Context) error {
	load := func(ctx context.Context, c redis.Scripter) error {
		for _, name := range scriptNames() {
			if err := scripts[name].Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("load lua script %s: %w", name, err)
			}
		}
		return nil
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return load(ctx, c) })
	}
	return load(ctx, s.rdb)
}

// execScripted runs commands that call scripts, in a pipeline shared with
// other callers (see commit.go). Redis forgets scripts on restart or
// failover; on NOSCRIPT the scripts are loaded again and fill's commands,
// which must all be idempotent, are sent once more. Its error is the first
// of fill's commands, redis.Nil aside.
func (s *Store) execScripted(ctx context.Context, fill func(pipe redis.Pipeliner)) error {
	for attempt := 0; ; attempt++ {
		err := s.batch.do(ctx, "", fill)
		if err == nil || attempt > 0 || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
		if lerr := s.loadScripts(ctx); lerr != nil {
			return lerr
		}
	}
}

// runScript runs one script as sc.Run does, in a shared pipeline: on
// NOSCRIPT (which means it did not run) the scripts are loaded again and
// it is sent once more.
func (s *Store) runScript(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	err := s.execScripted(ctx, func(pipe redis.Pipeliner) { cmd = sc.EvalSha(ctx, pipe, keys, args...) })
	if err != nil { // cmd is not to be read: the caller may have left before it ran
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	return cmd
}
