package matchmaker

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/lobbyd/lobbyd/store"
)

// Tuning of the leader's view of a queue.
const (
	// reconcileEvery is how often the leader compares its pool with the
	// queue's searching set: it drops tickets cancelled behind its back and
	// picks up any the incoming list lost.
	reconcileEvery = 30 * time.Second
	// reformEvery is how often a pass runs with nothing new: skill windows
	// widen with time, so waiting tickets may have become compatible.
	reformEvery = time.Second
	// incomingBatch bounds the arrivals one pass takes.
	incomingBatch = 10000
	// readChunk bounds one pipeline of ticket reads.
	readChunk = 5000
	// commitChunk bounds the matches one commit script handles, so a single
	// script never blocks Redis for long.
	commitChunk = 256
)

// pool is the queue leader's view of its searching tickets. It is built
// once when the node becomes leader (one full read), then kept current from
// the queue's incoming list, so a pass reads only what changed instead of
// rescanning Redis. Only the queue's formation loop touches it.
type pool struct {
	byID     map[string]store.Ticket
	sorted   []store.Ticket // by creation time; rebuilt when stale
	stale    bool
	lastSync time.Time // last reconciliation with Redis (zero: never)
	lastForm time.Time
	dirty    bool // something arrived since the last pass
}

func newPool() *pool { return &pool{byID: map[string]store.Ticket{}} }

func (p *pool) add(ts []store.Ticket) {
	for _, t := range ts {
		p.byID[t.ID] = t
	}
	if len(ts) > 0 {
		p.stale, p.dirty = true, true
	}
}

func (p *pool) remove(ids ...string) {
	for _, id := range ids {
		if _, ok := p.byID[id]; ok {
			delete(p.byID, id)
			p.stale = true
		}
	}
}

// tickets returns the pool oldest first.
func (p *pool) tickets() []store.Ticket {
	if p.stale {
		p.sorted = p.sorted[:0]
		for _, t := range p.byID {
			p.sorted = append(p.sorted, t)
		}
		slices.SortFunc(p.sorted, func(a, b store.Ticket) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		p.stale = false
	}
	return p.sorted
}

// reconcile makes the pool match the queue's searching set: tickets no
// longer searching leave it, searching tickets it lacks are read.
func (p *pool) reconcile(ctx context.Context, st *store.Store, queue string, now time.Time) error {
	ids, err := st.SearchingIDs(ctx, queue)
	if err != nil {
		return err
	}
	live := make(map[string]bool, len(ids))
	var missing []string
	for _, id := range ids {
		live[id] = true
		if _, ok := p.byID[id]; !ok {
			missing = append(missing, id)
		}
	}
	for id := range p.byID {
		if !live[id] {
			p.remove(id)
		}
	}
	for chunk := range slices.Chunk(missing, readChunk) {
		ts, err := st.Tickets(ctx, queue, chunk)
		if err != nil {
			return err
		}
		p.add(ts)
	}
	p.lastSync, p.dirty = now, true
	return nil
}
