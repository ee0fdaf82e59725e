package matchmaker

import (
	"context"
	"maps"
)

// The queues in force change at run time (a reloaded queue file): the
// Service holds them as one immutable queueSet, replaced whole by
// SetQueues. Every pass of a queue's formation loop reads its queue from
// the set in force, so a changed rule applies to the waiting tickets from
// the next pass.

// queueSet is one configuration of the queues.
type queueSet struct {
	version int // counts SetQueues calls
	list    []Queue
	byName  map[string]Queue
	// shards holds what the formation loops run: each queue's shards by
	// shard name (an unsharded queue is its own one shard), each a copy
	// of its queue under the shard's name.
	shards map[string]Queue
	// removed holds the shards an earlier configuration had and this one
	// drops: their leaders expire what still waits in them (reason
	// queue_removed), and they take no ticket.
	removed map[string]Queue
}

func newQueueSet(version int, queues []Queue, removed map[string]Queue) *queueSet {
	set := &queueSet{version: version, list: queues, byName: make(map[string]Queue, len(queues)),
		shards: make(map[string]Queue, len(queues)), removed: removed}
	for _, q := range queues {
		set.byName[q.Name] = q
		for _, name := range q.ShardNames() {
			shard := q
			shard.Name = name
			set.shards[name] = shard
			delete(set.removed, name) // back again
		}
	}
	return set
}

// queues returns the set in force.
func (s *Service) queues() *queueSet {
	s.init()
	return s.set.Load()
}

// SetQueues replaces the queues in force (already validated, as
// queuefile.Parse gives them). A queue that is no longer listed takes no
// more tickets, and its leader expires the ones waiting in it with reason
// queue_removed; a new queue gets a formation loop; a changed queue's rules
// apply from its next pass. retired names queues that earlier
// configurations dropped, which this node may never have run (it started
// later): they are handled as removed too.
func (s *Service) SetQueues(queues []Queue, retired ...string) {
	s.init()
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.set.Load()
	removed := maps.Clone(old.removed)
	if removed == nil {
		removed = make(map[string]Queue)
	}
	for name, q := range old.shards {
		removed[name] = q // unless listed again (newQueueSet)
	}
	for _, name := range retired {
		if _, known := removed[name]; !known {
			removed[name] = Queue{Name: name}
		}
	}
	s.set.Store(newQueueSet(old.version+1, queues, removed))
	select {
	case s.changed <- struct{}{}:
	default: // Run has a change to look at already
	}
}

// lookup returns the named shard (or unsharded queue) as the set in force
// has it, and whether it was removed; ok is false for one never
// configured.
func (set *queueSet) lookup(name string) (q Queue, removed, ok bool) {
	if q, ok := set.shards[name]; ok {
		return q, false, true
	}
	q, ok = set.removed[name]
	return q, true, ok
}

// removedReason is the queue.state reason of tickets whose queue was removed.
const removedReason = "queue_removed"

// removedBatch is how many waiting tickets of a removed queue its leader
// expires per pass.
const removedBatch = 500

// expireRemoved ends up to removedBatch waiting tickets of a removed queue,
// telling their players (queue.state expired, reason queue_removed), and
// empties its incoming list. It reports whether any was left.
func (s *Service) expireRemoved(ctx context.Context, q Queue) (more bool, err error) {
	s.dropPool(q.Name)
	for {
		in, err := s.Store.TakeIncoming(ctx, q.Name, s.NodeID, incomingBatch)
		if err != nil {
			return false, err
		}
		if len(in) < incomingBatch {
			break
		}
	}
	tickets, err := s.Store.SearchingTickets(ctx, q.Name, removedBatch)
	if err != nil {
		return false, err
	}
	for _, t := range tickets {
		t.EndReason = removedReason
		s.expireTicket(ctx, q, t)
	}
	return len(tickets) == removedBatch, nil
}
