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
	path   string // LOBBYD_CONFIG; empty: the built-in default
	nodeID string
	st     *store.Store
	mm     *matchmaker.Service
	alloc  *partyalloc.PlayFabAllocator
	worker *partyalloc.Worker
	log    *slog.Logger

	mu      sync.Mutex // one reload or apply at a time
	version int64      // the stored version applied; 0 before any
	ever    []string   // every queue this node has run, in order
	current atomic.Pointer[queuefile.File]
}

// everConfigured lists every queue this node has run since it started.
func (c *queueConfig) everConfigured() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ever)
}

func newQueueConfig(path, nodeID string, f queuefile.File, st *store.Store, mm *matchmaker.Service,
	alloc *partyalloc.PlayFabAllocator, worker *partyalloc.Worker, log *slog.Logger) *queueConfig {
	c := &queueConfig{path: path, nodeID: nodeID, st: st, mm: mm, alloc: alloc, worker: worker, log: log}
	c.current.Store(&f)
	for _, q := range f.Queues {
		c.ever = append(c.ever, q.Name)
	}
	return c
}

// File returns the queue file in force on this node.
func (c *queueConfig) File() queuefile.File { return *c.current.Load() }

// Version returns the stored configuration's version this node runs (0:
// none stored yet, the node runs its own file or the built-in default).
func (c *queueConfig) Version() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// errNoQueueFile is a reload on a node started without a queue file.
var errNoQueueFile = errors.New("this node has no queue file (LOBBYD_CONFIG) to reload: it runs the built-in default queue")

// Reload reads and validates the queue file, stores it for every node and
// runs it here. A file that does not validate returns the reason (which
// names the file, queue and field) and changes nothing.
func (c *queueConfig) Reload(ctx context.Context) (version int64, changed bool, err error) {
	return c.reload(ctx, true)
}

// reload is Reload; with announce, a configuration it runs is logged.
func (c *queueConfig) reload(ctx context.Context, announce bool) (version int64, changed bool, err error) {
	if c.path == "" {
		return 0, false, errNoQueueFile
	}
	raw, err := os.ReadFile(c.path)
	if err != nil {
		return 0, false, fmt.Errorf("read queue configuration: %w", err)
	}
	f, err := queuefile.Parse(raw)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", c.path, err)
	}
	version, stored, err := c.st.StoreQueueConfig(ctx, raw, c.nodeID)
	if err != nil {
		return 0, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version > c.version {
		c.apply(version, f, announce && stored)
	}
	return version, stored, nil
}

// start runs at start-up: a node with a queue file stores it (unless it is
// the one in force), and any node runs the configuration in force.
func (c *queueConfig) start(ctx context.Context) error {
	if c.path != "" {
		if _, _, err := c.reload(ctx, false); err != nil { // run logs the file at start
			return fmt.Errorf("store the queue configuration: %w", err)
		}
		return nil
	}
	c.poll(ctx)
	return nil
}

// watch polls for a newer configuration until ctx is done.
func (c *queueConfig) watch(ctx context.Context) error {
	tick := time.NewTicker(configPoll)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.poll(ctx)
		case <-ctx.Done():
			return nil
		}
	}
}

// poll applies the stored configuration if it is newer than the one this
// node runs. One that this node cannot read (written by a newer lobbyd
// with fields this one does not know) is logged and skipped: the node
// keeps the configuration it runs.
func (c *queueConfig) poll(ctx context.Context) {
	v, err := c.st.QueueConfigVersion(ctx)
	if err != nil || v <= c.Version() {
		if err != nil && ctx.Err() == nil {
			c.log.Warn("look for a new queue configuration", "err", err)
		}
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
	if stored.Version <= c.version {
		return
	}
	f, err := queuefile.Parse(stored.Content)
	if err != nil {
		c.log.Error("the stored queue configuration does not validate here: keeping the one in force",
			"version", stored.Version, "by", stored.By, "err", err)
		c.version = stored.Version // not again every poll
		return
	}
	c.apply(stored.Version, f, true)
}

// apply runs f on this node. c.mu is held.
func (c *queueConfig) apply(version int64, f queuefile.File, announce bool) {
	before := c.File()
	c.version = version
	c.current.Store(&f)
	c.mm.SetQueues(f.Matchmaking())
	c.alloc.SetNetworks(f.Networks())
	names := make([]string, len(f.Queues))
	for i, q := range f.Queues {
		names[i] = q.Name
		if !slices.Contains(c.ever, q.Name) {
			c.ever = append(c.ever, q.Name)
		}
	}
	c.worker.AddQueues(names...)
	if announce {
		var removed []string
		for _, q := range before.Queues {
			if _, ok := c.mm.Queue(q.Name); !ok {
				removed = append(removed, q.Name)
			}
		}
		c.log.Info("queue configuration applied", "version", version, "queues", names, "removed", removed)
	}
	if w := f.Warning(); w != "" && announce {
		c.log.Warn(w)
	}
}
