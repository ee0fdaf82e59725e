package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/queuefile"
	"github.com/lobbyd/lobbyd/internal/wait"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/store"
)

// Queue changes without a restart. The queue configuration in force is the
// last one stored in Redis, with a version: a reload (SIGHUP, or the admin
// action) reads this node's queue file, validates it, and stores it; a node
// starting with a file stores it the same way. Every node polls the version
// every configPoll and applies a newer configuration to its matchmaker,
// allocator and routes. A file that does not validate is refused with the
// reason, and the configuration in force stays.

// configPoll is how often a node looks for a newer queue configuration:
// every node runs a change within about this long.
const configPoll = 2 * time.Second

// queueConfig keeps this node's queues in step with the stored
// configuration.
type queueConfig struct {
	path string // LOBBYD_CONFIG; empty: the built-in default
	// keepStored: at start, a stored configuration wins over the file
	// (LOBBYD_QUEUES_AT_START=stored).
	keepStored bool
	nodeID     string
	st         *store.Store
	mm         *matchmaker.Service
	alloc      *partyalloc.PlayFabAllocator
	worker     *partyalloc.Worker
	log        *slog.Logger

	mu      sync.Mutex // one reload or apply at a time
	sha     string     // the stored configuration this node runs; "" before any
	skip    string     // a stored configuration this node cannot read, not tried again
	version int64      // its version
	ever    []string   // every queue this node has run or retired, in order
	current atomic.Pointer[queuefile.File]
}

func newQueueConfig(path, nodeID string, f queuefile.File, st *store.Store, mm *matchmaker.Service,
	alloc *partyalloc.PlayFabAllocator, worker *partyalloc.Worker, log *slog.Logger) *queueConfig {
	c := &queueConfig{path: path, nodeID: nodeID, st: st, mm: mm, alloc: alloc, worker: worker, log: log}
	c.current.Store(&f)
	c.ever = shardNames(f)
	return c
}

// File returns the queue file in force on this node.
func (c *queueConfig) File() queuefile.File { return *c.current.Load() }

// Version returns the version of the stored configuration this node runs
// (0: none stored yet, the node runs its own file or the built-in default).
func (c *queueConfig) Version() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// everConfigured lists every queue this node has run or retired since it
// started.
func (c *queueConfig) everConfigured() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ever)
}

// errNoQueueFile is a reload on a node started without a queue file, and
// errBadQueueFile a queue file that cannot be read or does not validate.
var (
	errNoQueueFile  = errors.New("this node has no queue file (LOBBYD_CONFIG) to reload: it runs the built-in default queue")
	errBadQueueFile = errors.New("queue file refused")
)

// Reload reads and validates the queue file, stores it for every node and
// runs it here. A file that cannot be read or does not validate returns
// errBadQueueFile with the reason (which names the file, queue and field)
// and changes nothing.
func (c *queueConfig) Reload(ctx context.Context) (version int64, changed bool, err error) {
	return c.reload(ctx, true)
}

// reloadTries bounds the tries of a reload that finds another reload
// stored a configuration meanwhile.
const reloadTries = 3

// reload is Reload; with announce, a configuration it runs is logged.
func (c *queueConfig) reload(ctx context.Context, announce bool) (version int64, changed bool, err error) {
	if c.path == "" {
		return 0, false, errNoQueueFile
	}
	raw, err := os.ReadFile(c.path)
	if err != nil {
		return 0, false, fmt.Errorf("%w: read %s: %w", errBadQueueFile, c.path, err)
	}
	f, err := queuefile.Parse(raw)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %s: %w", errBadQueueFile, c.path, err)
	}
	for try := 1; ; try++ {
		prev, err := c.st.StoredQueueConfig(ctx)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return 0, false, err
		}
		retired := retiredAfter(prev, f)
		version, stored, err := c.st.StoreQueueConfig(ctx, raw, c.nodeID, retired, prev.Sha)
		if errors.Is(err, domain.ErrConflict) && try < reloadTries {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if sha := store.ContentSum(raw); sha != c.sha {
			if !stored {
				// The same file was stored by another node: its retired
				// list is the one in force.
				retired = prev.Retired
			}
			c.apply(version, sha, f, retired, announce && stored)
		}
		return version, stored, nil
	}
}

// shardNames lists the shards of f's queues (an unsharded queue is its own
// one shard): what the formation loops and allocation workers run.
func shardNames(f queuefile.File) []string {
	var names []string
	for _, q := range f.Queues {
		names = append(names, q.ShardNames()...)
	}
	return names
}

// retiredAfter returns the shards a configuration f retires after prev:
// those prev ran or had retired, that f does not run (a queue removed, or
// split into fewer shards).
func retiredAfter(prev store.QueueConfig, f queuefile.File) []string {
	names := slices.Clone(prev.Retired)
	if before, err := queuefile.Parse(prev.Content); err == nil && len(prev.Content) > 0 {
		names = append(names, shardNames(before)...)
	}
	running := shardNames(f)
	var out []string
	for _, name := range names {
		if !slices.Contains(running, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// start runs at start-up: a node with a queue file stores it (unless it is
// the one in force: a restart with an edited file applies it, as before
// reloads existed), and any node runs the configuration in force. With
// keepStored, a node with a file stores it only when none is stored: a
// node restarted with an older file (a crash loop, a stale volume) does
// not undo an operator's reload for every node.
func (c *queueConfig) start(ctx context.Context) error {
	if c.path == "" {
		c.poll(ctx)
		return nil
	}
	if c.keepStored {
		stored, err := c.st.StoredQueueConfig(ctx)
		switch {
		case err == nil:
			c.poll(ctx)
			if raw, rerr := os.ReadFile(c.path); rerr == nil && store.ContentSum(raw) != stored.Sha {
				c.log.Warn("this node's queue file is not the configuration in force, which it runs (LOBBYD_QUEUES_AT_START=stored); reload to apply the file",
					"file", c.path, "version", stored.Version, "by", stored.By)
			}
			return nil
		case !errors.Is(err, domain.ErrNotFound):
			return fmt.Errorf("read the queue configuration in force: %w", err)
		}
	}
	if _, _, err := c.reload(ctx, false); err != nil { // run logs the file at start
		return fmt.Errorf("store the queue configuration: %w", err)
	}
	return nil
}

// watch polls for a changed configuration until ctx is done.
func (c *queueConfig) watch(ctx context.Context) error {
	wait.Every(ctx, configPoll, func(time.Time) { c.poll(ctx) })
	return nil
}

// poll runs the stored configuration if it is not the one this node runs
// (by its contents' SHA-256, so a stored version that went backwards, after
// Redis lost a write, is still picked up). One that this node cannot read
// (written by a newer lobbyd with fields this one does not know) is logged
// once and skipped: the node keeps the configuration it runs.
func (c *queueConfig) poll(ctx context.Context) {
	sha, err := c.st.QueueConfigSum(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("look for a new queue configuration", "err", err)
		}
		return
	}
	c.mu.Lock()
	same := sha == "" || sha == c.sha || sha == c.skip
	c.mu.Unlock()
	if same {
		return
	}
	stored, err := c.st.StoredQueueConfig(ctx)
	if errors.Is(err, domain.ErrNotFound) {
		return
	}
	if err != nil {
		c.log.Warn("read the new queue configuration", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if stored.Sha == c.sha {
		return
	}
	f, err := queuefile.Parse(stored.Content)
	if err != nil {
		c.log.Error("the stored queue configuration does not validate here: keeping the one in force",
			"version", stored.Version, "by", stored.By, "err", err)
		c.skip = stored.Sha
		return
	}
	c.apply(stored.Version, stored.Sha, f, stored.Retired, true)
}

// apply runs f on this node, with the queues retired before it. c.mu is
// held.
func (c *queueConfig) apply(version int64, sha string, f queuefile.File, retired []string, announce bool) {
	before := c.File()
	c.version, c.sha = version, sha
	c.current.Store(&f)
	c.mm.SetQueues(f.Matchmaking(), retired...)
	c.alloc.SetNetworks(f.Networks())
	names := make([]string, len(f.Queues))
	for i, q := range f.Queues {
		names[i] = q.Name
	}
	// Every shard's matches have a stream of their own, and a retired
	// queue's matches formed before it was retired still get their party,
	// from any node: those streams are consumed too.
	consumed := append(shardNames(f), retired...)
	c.worker.AddQueues(consumed...)
	for _, name := range consumed {
		if !slices.Contains(c.ever, name) {
			c.ever = append(c.ever, name)
		}
	}
	if announce {
		var removed []string
		for _, q := range before.Queues {
			if !slices.Contains(names, q.Name) {
				removed = append(removed, q.Name)
			}
		}
		c.log.Info("queue configuration applied", "version", version, "queues", names, "removed", removed)
		if w := f.Warning(); w != "" {
			c.log.Warn(w)
		}
	}
}
