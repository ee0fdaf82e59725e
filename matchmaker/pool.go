package matchmaker

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
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
	// readChunk bounds one pipeline of ticket reads, and readParallelism
	// the pipelines in flight at once.
	readChunk       = 2000
	readParallelism = 4
	// commitChunk bounds the matches one commit script handles, so a single
	// script never blocks Redis for long.
	commitChunk = 256
	// commitParallelism bounds the commit scripts in flight at once.
	commitParallelism = 3
)

// pool is the queue leader's view of its searching tickets. It is built
// once when the node becomes leader (one full read, formed and committed as
// it arrives), then kept current from the queue's incoming list, so a pass
// reads only what changed instead of rescanning Redis. Only the queue's
// formation loop touches it.
//
// order keeps the tickets oldest first without re-sorting the pool on every
// pass: arrivals are appended (they come in creation order; only a requeued
// ticket, which keeps its original time, makes order unsorted), removals are
// compacted away in one linear pass.
type pool struct {
	byID     map[string]*domain.Ticket
	order    []*domain.Ticket // oldest first once sorted; may hold removed tickets
	removed  int              // entries of order no longer in byID
	unsorted bool
	lastSync time.Time // last reconciliation with Redis (zero: never)
	lastForm time.Time
	dirty    bool // something arrived since the last pass
	// lastSummary is when the last summary for queue.why was taken.
	lastSummary time.Time
}

func newPool() *pool { return &pool{byID: map[string]*domain.Ticket{}} }

func older(a, b *domain.Ticket) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

func (p *pool) add(ts []domain.Ticket) {
	for i := range ts {
		t := &ts[i]
		if old := p.byID[t.ID]; old != nil {
			*old = *t // read again (a requeued ticket's hold changed): same place
			continue
		}
		p.byID[t.ID] = t
		if n := len(p.order); n > 0 && older(t, p.order[n-1]) < 0 {
			p.unsorted = true
		}
		p.order = append(p.order, t)
	}
}

// reserve makes room for n more tickets, so a new leader's pool does not
// grow its map step by step while it reads the queue.
func (p *pool) reserve(n int) {
	if len(p.byID) == 0 {
		p.byID = make(map[string]*domain.Ticket, n)
	}
	p.order = slices.Grow(p.order, n)
}

func (p *pool) remove(ids ...string) {
	for _, id := range ids {
		if _, ok := p.byID[id]; ok {
			delete(p.byID, id)
			p.removed++
		}
	}
}

// tickets returns the pool oldest first. The slice is the pool's own: it is
// valid until the next add or remove.
func (p *pool) tickets() []*domain.Ticket {
	if p.removed > 0 {
		p.order = slices.DeleteFunc(p.order, func(t *domain.Ticket) bool { return p.byID[t.ID] != t })
		p.removed = 0
	}
	if p.unsorted {
		slices.SortFunc(p.order, older)
		p.unsorted = false
	}
	return p.order
}

// reconcile makes the pool match the queue's searching set: tickets no
// longer searching leave it, searching tickets it lacks are read.
func (p *pool) reconcile(ctx context.Context, st Store, queue string, now time.Time) error {
	ids, err := st.SnapshotSearching(ctx, queue, false)
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
	err = readTickets(ctx, st, queue, missing, func(ts []domain.Ticket) error {
		p.add(ts)
		return nil
	})
	if err != nil {
		return err
	}
	p.lastSync, p.dirty = now, true
	return nil
}

// readTickets reads the given searching tickets in chunks of readChunk,
// readParallelism chunks at once (so that decoding one overlaps Redis
// serving the next), and hands each chunk to done, in the order of ids, on
// the caller's goroutine. After an error, its own or done's, it reads no
// more and returns that error.
func readTickets(ctx context.Context, st Store, queue string, ids []string, done func([]domain.Ticket) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var first error
	inOrder(slices.Chunk(ids, readChunk), readParallelism,
		func(chunk []string) ([]domain.Ticket, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return st.Tickets(ctx, queue, chunk)
		},
		func(_ []string, ts []domain.Ticket, err error) {
			if first != nil {
				return
			}
			if err == nil {
				err = done(ts)
			}
			if err != nil {
				first = err
				cancel()
			}
		})
	return first
}
