package matchmaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors the gateway maps to protocol error codes.
var (
	// ErrUnknownQueue means queue.join named a queue that is not configured.
	ErrUnknownQueue = fmt.Errorf("unknown queue: %w", domain.ErrNotFound)
	// ErrBadRegion means none of the ticket's regions is served by the queue.
	ErrBadRegion = fmt.Errorf("no acceptable region in this queue: %w", domain.ErrInvalid)
	// ErrBadTicket means the ticket cannot be matched in this queue (more
	// players than MaxLobbyMembers, an invalid skill, attributes that are
	// not the queue's: see Queue.Resolve).
	ErrBadTicket = fmt.Errorf("ticket cannot be matched in this queue: %w", domain.ErrInvalid)
)

// Notifier tells players about what happens to their tickets. Its methods
// may be called concurrently (a new leader ends expired tickets while it
// announces matches).
type Notifier interface {
	// MatchesFound is called with the matches of each committed chunk
	// (up to commitChunk), once per match: one call announces them all.
	MatchesFound(ctx context.Context, ms []domain.Match) error
	// TicketExpired is called once per ticket that waited past its queue's
	// TicketTimeout.
	TicketExpired(ctx context.Context, t domain.Ticket) error
}

// Store is what the matchmaker needs from Redis: tickets, the queue's
// searching pool and lease, committing matches, and its figures.
type Store interface {
	CreateTicket(ctx context.Context, t domain.Ticket) error
	CancelPlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error)
	ExpireTicket(ctx context.Context, t domain.Ticket) error
	Tickets(ctx context.Context, queue string, ids []string) ([]domain.Ticket, error)
	SnapshotSearching(ctx context.Context, queue string, takeIncoming bool) ([]string, error)
	TakeIncoming(ctx context.Context, queue, holder string, max int) ([]domain.Ticket, error)
	CommitMatches(ctx context.Context, queue string, matches []domain.Match) ([]domain.CommitResult, error)
	AcquireLease(ctx context.Context, queue, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, queue, holder string) error
	QueueDepth(ctx context.Context, queue string) (int64, error)
	EstimatedWait(ctx context.Context, queue string) (time.Duration, error)
	SetEstimatedWait(ctx context.Context, queue string, wait time.Duration) error
	SetQueueSummary(ctx context.Context, queue string, summary []byte, ttl time.Duration) error
	QueueSummary(ctx context.Context, queue string) ([]byte, error)
	SetQueueFigures(ctx context.Context, queue string, figures []byte, ttl time.Duration) error
	QueueFigures(ctx context.Context, queue string) ([]byte, error)
	SearchingTickets(ctx context.Context, queue string, limit int) ([]domain.Ticket, error)
}

// Service accepts tickets and runs the formation loop of every queue whose
// lease this node holds. Zero-value fields get the defaults documented on
// them; Store, Queues, NodeID and Notifier are required.
type Service struct {
	Store Store
	// Queues are the queues at start; SetQueues replaces them.
	Queues   []Queue
	NodeID   string
	Notifier Notifier
	Logger   *slog.Logger // default slog.Default()

	// FormInterval is the pause between formation passes when the last pass
	// found nothing more to do. Default 50ms.
	FormInterval time.Duration
	// LeaseTTL is how long a queue's lease lasts without renewal; a dead
	// leader's queue is picked up by another node within it. Default 5s.
	LeaseTTL time.Duration
	// Now is the clock; default time.Now. Simulations drive it.
	Now func() time.Time
	// Registerer receives the per-queue metrics; nil registers nowhere.
	Registerer prometheus.Registerer

	initOnce sync.Once
	metrics  *metrics
	setMu    sync.Mutex // serialises SetQueues
	set      atomic.Pointer[queueSet]
	changed  chan struct{} // SetQueues tells Run

	mu        sync.Mutex
	waitEWMA  map[string]float64        // queue -> recent waits (ms), on the leader
	pools     map[string]*pool          // queue -> the leader's view; only its loop uses it
	waits     freshCache[time.Duration] // the estimated waits joins report
	summaries freshCache[*queueSummary] // the leaders' last summaries, for Why
	leading   map[string]bool           // queue -> this node holds its lease
	figures   map[string]*figures       // queue -> the leader's console figures
}

// poolOf returns the leader's view of the queue, creating it empty.
func (s *Service) poolOf(queue string) *pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[queue]
	if p == nil {
		p = newPool()
		s.pools[queue] = p
	}
	return p
}

// dropPool forgets the view of a queue this node no longer leads.
func (s *Service) dropPool(queue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pools, queue)
}

func (s *Service) init() {
	s.initOnce.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.FormInterval <= 0 {
			s.FormInterval = 50 * time.Millisecond
		}
		if s.LeaseTTL <= 0 {
			s.LeaseTTL = 5 * time.Second
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		s.set.Store(newQueueSet(0, s.Queues, make(map[string]Queue)))
		s.changed = make(chan struct{}, 1)
		s.metrics = newMetrics(s.Registerer)
		s.waitEWMA = make(map[string]float64)
		s.pools = make(map[string]*pool)
		s.leading = make(map[string]bool)
		s.figures = make(map[string]*figures)
		s.waits = freshCache[time.Duration]{fresh: waitFresh, timeout: waitReadTimeout}
		s.summaries = freshCache[*queueSummary]{fresh: summaryEvery, timeout: summaryReadTimeout}
	})
}

// MaxLobbyMembers returns the most members a lobby of the named queue may
// have (see Queue.MaxLobbyMembers).
func (s *Service) MaxLobbyMembers(name string) (int, bool) {
	q, ok := s.Queue(name)
	return q.MaxLobbyMembers(), ok
}

// SkillFromToken reports whether the named queue takes ratings from the
// players' tokens (skill.source: token), where a client may send none.
func (s *Service) SkillFromToken(name string) bool {
	q, ok := s.Queue(name)
	return ok && q.Skill.Source == SourceToken
}

// Resolve checks a queue.join against the named queue's rules and returns
// the ticket's skill and attributes (see Queue.Resolve); ErrUnknownQueue
// for a queue that does not exist.
func (s *Service) Resolve(queue string, in JoinInput) (float64, map[string]domain.AttrValue, error) {
	q, ok := s.Queue(queue)
	if !ok {
		return 0, nil, ErrUnknownQueue
	}
	return q.Resolve(in)
}

// QueueNames lists the queues in force.
func (s *Service) QueueNames() []string {
	set := s.queues()
	names := make([]string, len(set.list))
	for i, q := range set.list {
		names[i] = q.Name
	}
	return names
}

// Queue returns the configuration of the named queue in force.
func (s *Service) Queue(name string) (Queue, bool) {
	q, ok := s.queues().byName[name]
	return q, ok
}

// shard returns the configuration of the named shard in force (an
// unsharded queue is its own shard).
func (s *Service) shard(name string) (Queue, bool) {
	q, ok := s.queues().shards[name]
	return q, ok
}

// ShardNames lists every shard of the queues in force, by queue, shard 0
// first: what the allocation workers consume.
func (s *Service) ShardNames() []string {
	var names []string
	for _, q := range s.queues().list {
		names = append(names, q.ShardNames()...)
	}
	return names
}

// Join creates a searching ticket from t's Queue, Players, Skill, Regions,
// Latencies (acceptable regions: see acceptable) and Attributes (as
// Queue.Resolve gives them), with the queue's
// estimated wait. Regions and latencies of regions the queue does not serve
// are dropped (they could never count); a ticket left with no acceptable
// region is refused. It returns ErrUnknownQueue, ErrBadRegion, ErrBadTicket,
// domain.ErrTooLarge (see domain.Ticket.Validate), or domain.ErrConflict when a
// player already holds a ticket.
func (s *Service) Join(ctx context.Context, t domain.Ticket) (domain.Ticket, error) {
	q, ok := s.Queue(t.Queue)
	if !ok {
		return domain.Ticket{}, ErrUnknownQueue
	}
	if t.Size() == 0 || t.Size() > q.MaxLobbyMembers() || !finite(t.Skill) || !q.attributesFit(t.Attributes) {
		return domain.Ticket{}, ErrBadTicket
	}
	if len(acceptable(q, t)) == 0 {
		return domain.Ticket{}, ErrBadRegion
	}
	t.Regions, t.Latencies = servedRegions(q, t.Regions), servedLatencies(q, t.Latencies)
	t.ID, t.Status, t.MatchID = uuid.NewString(), domain.TicketSearching, ""
	t.CreatedAt = s.Now().UTC().Truncate(time.Millisecond)
	t.Queue = domain.ShardName(q.Name, q.Shard(t)) // the queue's own name unless it is split
	if err := s.Store.CreateTicket(ctx, t); err != nil {
		return domain.Ticket{}, err
	}
	t.EstimatedWait = s.estimatedWait(ctx, t.Queue)
	return t, nil
}

// servedRegions returns regions without those the queue does not serve, and
// without repeats, in their order: the rest never count (see acceptable),
// and a ticket stores only what counts.
func servedRegions(q Queue, regions []string) []string {
	var out []string
	for _, r := range regions {
		if slices.Contains(q.Regions, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// servedLatencies returns latencies without the regions the queue does not
// serve (nil when none is left).
func servedLatencies(q Queue, latencies map[string]int) map[string]int {
	var out map[string]int
	for r, ms := range latencies {
		if slices.Contains(q.Regions, r) {
			if out == nil {
				out = make(map[string]int, len(latencies))
			}
			out[r] = ms
		}
	}
	return out
}

// waitFresh is how long a node reuses the estimated wait it read: it moves
// slowly (an average over recent matches), and reading it on every join
// would cost a round trip each.
const waitFresh = time.Second

// waitReadTimeout bounds that read: a join does not wait longer for an
// estimate (it keeps the last one).
const waitReadTimeout = 250 * time.Millisecond

// estimatedWait returns the queue's estimated wait, read from Redis at most
// once per waitFresh (concurrent joins share one read, bounded by
// waitReadTimeout: the joins wait for it with their tickets already made).
// On a read error it keeps the last value.
func (s *Service) estimatedWait(ctx context.Context, queue string) time.Duration {
	wait, _ := s.waits.get(ctx, queue, func(ctx context.Context) (time.Duration, error) {
		return s.Store.EstimatedWait(ctx, queue)
	})
	return wait
}

// Leave cancels the player's searching ticket. It returns domain.ErrNotFound
// if they hold none, or domain.ErrConflict if it is already matched.
func (s *Service) Leave(ctx context.Context, playerID string) (domain.Ticket, error) {
	return s.Store.CancelPlayerTicket(ctx, playerID)
}

// Run runs a formation loop per queue until ctx is done, then releases the
// leases it holds and returns once every loop has exited.
func (s *Service) Run(ctx context.Context) error {
	s.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	// A queue's loop runs until ctx is done, also once its queue is
	// removed (its leader then expires what waits in it; a failed
	// allocation may requeue tickets there later) and while it is added
	// again.
	running := map[string]bool{}
	for {
		set := s.queues()
		names := make([]string, 0, len(set.shards)+len(set.removed))
		for name := range set.shards {
			names = append(names, name)
		}
		for name := range set.removed {
			names = append(names, name)
		}
		for _, name := range names {
			if !running[name] {
				running[name] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.runQueue(ctx, name)
				}()
			}
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// errorPause is the wait after a failed formation pass, and removedPause
// between the passes of a removed queue that found nothing to expire.
const (
	errorPause   = time.Second
	removedPause = time.Second
)

// runQueue leads the queue while it holds its lease: renews the lease every
// third of its TTL and forms matches every FormInterval, or at once again
// after a pass that filled a whole batch.
func (s *Service) runQueue(ctx context.Context, name string) {
	log := s.Logger.With("queue", name)
	leader := false
	var leaseRenewed time.Time
	// The summarizer writes the summaries of passes for queue.why, off this
	// loop; a summary due while it still works on the last is skipped.
	summaries := make(chan summaryJob, 1)
	var summarizer sync.WaitGroup
	summarizer.Add(1)
	go func() {
		defer summarizer.Done()
		for job := range summaries {
			s.writeSummary(ctx, job.queue, job)
		}
	}()
	defer summarizer.Wait()
	defer close(summaries)
	defer func() {
		s.setLeading(name, false)
		if leader {
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err := s.Store.ReleaseLease(release, name, s.NodeID); err != nil {
				log.Warn("release queue lease", "err", err)
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	version := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		set := s.queues()
		q, removed, _ := set.lookup(name)
		if set.version != version {
			if version >= 0 {
				log.Info("queue configuration changed", "removed", removed)
				s.poolOf(name).dirty = true // re-form under the new rules now
			}
			version = set.version
		}
		if time.Since(leaseRenewed) >= s.LeaseTTL/3 {
			held, err := s.Store.AcquireLease(ctx, q.Name, s.NodeID, s.LeaseTTL)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("acquire queue lease", "err", err)
				}
				// Stop forming: the lease may lapse while Redis is away.
				// (A stale leader would still be harmless: commits are atomic.)
				leader = false
				s.setLeading(q.Name, false)
				s.dropPool(q.Name)
				timer.Reset(errorPause)
				continue
			}
			if held != leader {
				log.Info("queue lease changed", "leading", held)
			}
			if !held {
				s.dropPool(q.Name) // rebuilt in full if this node leads again
			}
			leader, leaseRenewed = held, time.Now()
			s.setLeading(q.Name, held)
		}
		next := s.FormInterval
		if leader && removed {
			more, err := s.expireRemoved(ctx, q)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("expire the tickets of a removed queue", "err", err)
				next = errorPause
			case !more:
				next = removedPause
			}
		} else if leader {
			full, err := s.formOnce(ctx, q)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("form matches", "err", err)
				next = errorPause // Redis is struggling: do not hammer it, nor the log
			case full:
				next = 0
			}
			s.writeFigures(ctx, q.Name, s.Now())
			if job, ok := s.summaryDue(q, s.Now()); ok {
				select {
				case summaries <- job:
				default:
				}
			}
		}
		timer.Reset(next)
	}
}

// formOnce runs one formation pass on the leader's pool of the queue: take
// the tickets that arrived, expire those past the queue's timeout, group the
// rest, commit the groups, announce the committed matches. With nothing new
// it re-forms only every reformEvery, for skill windows that widened. Every
// reconcileEvery the pool is checked against Redis in full. A new leader's
// first pass reads the whole queue and groups and commits as it reads (see
// load). It reports whether more arrivals are waiting.
func (s *Service) formOnce(ctx context.Context, q Queue) (more bool, err error) {
	p := s.poolOf(q.Name)
	now := s.Now()
	var load []string // a new leader's whole queue, read during the pass
	loading := p.lastSync.IsZero()
	switch {
	case loading:
		if load, err = s.Store.SnapshotSearching(ctx, q.Name, true); err != nil {
			return false, err
		}
		p.reserve(len(load))
	case now.Sub(p.lastSync) >= reconcileEvery:
		if err := p.reconcile(ctx, s.Store, q.Name, now); err != nil {
			return false, err
		}
	}
	arrived, err := s.Store.TakeIncoming(ctx, q.Name, s.NodeID, incomingBatch)
	if errors.Is(err, domain.ErrNotLeader) {
		// The lease lapsed during this pass: stop here; runQueue finds out
		// at its next renewal, and the view is rebuilt if this node leads
		// again.
		s.dropPool(q.Name)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	p.add(arrived)
	more = len(arrived) == incomingBatch
	if !loading && len(arrived) == 0 && !p.dirty && now.Sub(p.lastForm) < reformEvery {
		return more, nil
	}
	// Arrivals taken during a first pass are grouped by the next one.
	p.dirty, p.lastForm = loading && len(arrived) > 0, now

	steps := make(chan step)
	var loadErr error
	if loading {
		go func() { // owned by commit, which drains steps until it is closed
			defer close(steps)
			loadErr = s.load(ctx, q, load, now, steps)
		}()
	} else {
		tickets := s.expire(ctx, q, p, now)
		s.metrics.depth.WithLabelValues(q.Name).Set(float64(len(tickets)))
		s.noteDepth(q.Name, tickets)
		avail := available(tickets, now) // a copy: announcing changes the pool meanwhile
		go func() {                      // owned by commit, which drains steps until it is closed
			defer close(steps)
			g := newGrouper(q, now, steps)
			g.knowSkills(avail)
			for _, t := range avail {
				g.add(t)
			}
			g.flush()
		}()
	}
	formed, err := s.commit(ctx, q, p, steps, now)
	if formed > 0 {
		s.publishWait(ctx, q.Name)
	}
	if loading {
		// (loadErr is read after commit saw steps closed.) A failed read
		// leaves the view incomplete: the next pass reads the queue again.
		// A failed commit does not: its tickets are still in the pool and
		// still searching, for the next pass to group again.
		if loadErr != nil {
			s.dropPool(q.Name)
			return false, loadErr
		}
		p.lastSync = now
	}
	return more, err
}

// step is what the grouping goroutine hands to commit: tickets it read for
// the pool (a first pass reads the queue as it goes), then matches to
// commit. The pool takes a step's tickets before its matches are announced.
type step struct {
	add     []domain.Ticket
	matches []domain.Match
}

// grouper feeds a former and hands its matches on in steps of commitChunk.
type grouper struct {
	former
	step  step
	steps chan<- step
}

func newGrouper(q Queue, now time.Time, steps chan<- step) *grouper {
	g := &grouper{steps: steps}
	g.former = newFormer(q, now, func(m domain.Match) {
		if g.step.matches = append(g.step.matches, m); len(g.step.matches) == commitChunk {
			g.flush()
		}
	})
	return g
}

// flush hands on what the current step holds.
func (g *grouper) flush() {
	if len(g.step.add) > 0 || len(g.step.matches) > 0 {
		g.steps <- g.step
		g.step = step{}
	}
}

// load reads a new leader's queue, oldest first, in chunks (see
// readTickets), and groups each chunk as it arrives, so that committing the
// first matches overlaps reading the rest. Expired tickets are ended at
// once; the others go to the pool, and those not held to grouping.
func (s *Service) load(ctx context.Context, q Queue, ids []string, now time.Time, steps chan<- step) error {
	g := newGrouper(q, now, steps)
	defer g.flush()
	depth := 0
	err := readTickets(ctx, s.Store, q.Name, ids, func(ts []domain.Ticket) error {
		for _, t := range ts {
			if expired(q, t, now) {
				s.expireTicket(ctx, q, t)
				continue
			}
			depth++
			g.step.add = append(g.step.add, t) // before any match holding it
			if !held(t, now) {
				g.add(t)
			}
		}
		return nil
	})
	s.metrics.depth.WithLabelValues(q.Name).Set(float64(depth))
	return err
}

// commit records the matches formed by the pass, step by step as grouping
// produces them, with up to commitParallelism scripts in flight so that
// Redis runs one while the next is formed, encoded and sent. It announces
// each step's committed matches, in order, as its reply arrives. A failed
// step does not stop the others; the first error is returned once every
// step has ended. It reports how many matches were committed.
func (s *Service) commit(ctx context.Context, q Queue, p *pool, steps <-chan step, now time.Time) (int, error) {
	var first error
	committed := 0
	inOrder(chanSeq(steps), commitParallelism,
		func(st step) ([]domain.CommitResult, error) {
			return s.Store.CommitMatches(ctx, q.Name, st.matches)
		},
		func(st step, results []domain.CommitResult, err error) {
			p.add(st.add)
			if err != nil {
				first = cmp.Or(first, err)
				return
			}
			committed += s.announce(ctx, q, p, st.matches, results, now)
		})
	return committed, first
}

// announce handles the outcome of a committed chunk: committed tickets leave
// the pool and their matches are announced; a ticket that made its match
// stale (it stopped searching behind the leader's back) leaves the pool too.
// It returns the number of matches committed.
func (s *Service) announce(ctx context.Context, q Queue, p *pool, matches []domain.Match, results []domain.CommitResult, now time.Time) int {
	obs := s.metrics.of(q.Name)
	found := make([]domain.Match, 0, len(results))
	for i, r := range results {
		m := matches[i]
		switch r.Outcome {
		case domain.CommitStale:
			p.remove(r.StaleTicket)
			p.dirty = true // its partners may form another match
			continue
		case domain.CommitExists:
			// Only this call can have created the match (its id is fresh):
			// go-redis re-sent the script after losing the first reply, so
			// nobody has announced it yet.
		}
		m.CreatedAt = now.UTC()
		s.observeMatch(q, obs, m, p.byID, now)
		p.remove(m.TicketIDs...)
		found = append(found, m)
	}
	if len(found) > 0 {
		if err := s.Notifier.MatchesFound(ctx, found); err != nil {
			// The matches are committed and allocation will announce them as ready.
			s.Logger.Warn("announce matches", "matches", len(found), "err", err)
		}
	}
	return len(found)
}

// expire ends the pool's tickets that waited past the queue's timeout and
// returns the others, oldest first.
func (s *Service) expire(ctx context.Context, q Queue, p *pool, now time.Time) []*domain.Ticket {
	tickets := p.tickets()
	n := 0
	for n < len(tickets) && expired(q, *tickets[n], now) {
		n++
	}
	for _, t := range slices.Clone(tickets[:n]) {
		p.remove(t.ID)
		s.expireTicket(ctx, q, *t)
	}
	return p.tickets()
}

// expired reports whether t has waited past the queue's TicketTimeout.
func expired(q Queue, t domain.Ticket, now time.Time) bool {
	return t.CreatedAt.Before(now.Add(-q.TicketTimeout.D()))
}

// expireTicket ends a ticket that waited too long and tells its players,
// unless it was matched or cancelled meanwhile.
func (s *Service) expireTicket(ctx context.Context, q Queue, t domain.Ticket) {
	if err := s.Store.ExpireTicket(ctx, t); err != nil {
		return // matched or cancelled meanwhile
	}
	t.Status = domain.TicketExpired
	s.metrics.expired.WithLabelValues(q.Name).Inc()
	s.noteExpired(q.Name, s.Now())
	if err := s.Notifier.TicketExpired(ctx, t); err != nil {
		s.Logger.Warn("announce expired ticket", "ticket", t.ID, "err", err)
	}
}

// waitSmoothing weights each new wait in the queue's estimated wait.
const waitSmoothing = 0.1

// observeMatch records a committed match's waits, skill spread, team
// imbalance and relaxed rules.
func (s *Service) observeMatch(q Queue, obs queueObservers, m domain.Match, byID map[string]*domain.Ticket, now time.Time) {
	obs.formed.Inc()
	lo, hi := math.Inf(1), math.Inf(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	waits := make([]time.Duration, 0, len(m.TicketIDs))
	defer func() { s.figuresOf(q.Name).matched(now, waits) }()
	for _, id := range m.TicketIDs {
		t := byID[id]
		lo, hi = math.Min(lo, t.Skill), math.Max(hi, t.Skill)
		wait := now.Sub(t.CreatedAt)
		waits = append(waits, wait)
		obs.wait.Observe(wait.Seconds())
		ms := float64(wait.Milliseconds())
		if old, ok := s.waitEWMA[q.Name]; ok {
			s.waitEWMA[q.Name] = old + waitSmoothing*(ms-old)
		} else {
			s.waitEWMA[q.Name] = ms
		}
	}
	obs.spread.Observe(hi - lo)
	if m.Quality != nil {
		if q.Teams.Enabled() {
			obs.imbalance.Observe(m.Quality.TeamImbalance)
		}
		for _, rule := range m.Quality.Relaxed {
			obs.relaxed(rule).Inc()
		}
	}
}

// publishWait stores the queue's estimated wait for every node to read.
func (s *Service) publishWait(ctx context.Context, queue string) {
	s.mu.Lock()
	ms, ok := s.waitEWMA[queue]
	s.mu.Unlock()
	if ok {
		if err := s.Store.SetEstimatedWait(ctx, queue, time.Duration(ms)*time.Millisecond); err != nil {
			s.Logger.Warn("store estimated wait", "queue", queue, "err", err)
		}
	}
}

// available drops tickets held out of formation.
func available(tickets []*domain.Ticket, now time.Time) []domain.Ticket {
	out := make([]domain.Ticket, 0, len(tickets))
	for _, t := range tickets {
		if !held(*t, now) {
			out = append(out, *t)
		}
	}
	return out
}

// held reports whether t is held out of formation (requeued after a failed
// allocation, for a short while).
func held(t domain.Ticket, now time.Time) bool { return t.HoldUntil.After(now) }

// QueueStatus is a queue's configuration, live depth and estimated wait.
type QueueStatus struct {
	Queue
	Depth           int64  `json:"depth"`
	EstimatedWaitMs *int64 `json:"estimatedWaitMs,omitempty"`
}

// Status lists every queue with its live depth and estimated wait, and
// refreshes the depth gauges.
func (s *Service) Status(ctx context.Context) ([]QueueStatus, error) {
	set := s.queues()
	out := make([]QueueStatus, 0, len(set.list))
	for _, q := range set.list {
		var d int64
		for _, shard := range q.ShardNames() {
			n, err := s.Store.QueueDepth(ctx, shard)
			if err != nil {
				return nil, fmt.Errorf("queue status: %w", err)
			}
			s.metrics.depth.WithLabelValues(shard).Set(float64(n))
			d += n
		}
		st := QueueStatus{Queue: q, Depth: d}
		if wait, err := s.Store.EstimatedWait(ctx, q.Name); err == nil && wait > 0 {
			ms := wait.Milliseconds()
			st.EstimatedWaitMs = &ms
		}
		out = append(out, st)
	}
	return out, nil
}
