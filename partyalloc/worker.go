package partyalloc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lobbyd/lobbyd/internal/batch"
	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/wait"
)

// Allocator creates the party network of one match. It is the workers' only
// view of PlayFab, so another provider can be plugged in here.
type Allocator interface {
	Allocate(ctx context.Context, m domain.Match) (Party, error)
}

// Notifier tells a match's players how its allocation ended.
type Notifier interface {
	MatchReady(ctx context.Context, m domain.Match) error
	// MatchFailed is told of a failed match; m.Requeued lists the tickets
	// put back in the queue.
	MatchFailed(ctx context.Context, m domain.Match) error
}

// FailReason is the match.failed reason of a match whose allocation failed.
const FailReason = "allocation_failed"

// Store is what the allocation workers need from Redis: the allocation
// jobs of each queue's stream and the match they allocate.
type Store interface {
	EnsureAllocationGroup(ctx context.Context, queue string) error
	ReadAllocationJobs(ctx context.Context, queue, consumer string, count int, block time.Duration) ([]domain.AllocationJob, error)
	ClaimStaleAllocationJobs(ctx context.Context, queue, consumer string, minIdle time.Duration, count int) ([]domain.AllocationJob, error)
	RenewAllocationJob(ctx context.Context, job domain.AllocationJob, consumer string, idleAtLeast time.Duration) (domain.AllocationJob, bool, error)
	AckAllocationJobs(ctx context.Context, jobs []domain.AllocationJob) error
	BeginAttempt(ctx context.Context, queue, matchID, nodeID string) (domain.Match, error)
	StoreParty(ctx context.Context, queue, matchID string, attempt int, partyID, descriptor, invitationID string) (domain.Match, error)
	FailMatch(ctx context.Context, m domain.Match, reason string, holdUntil time.Time) (domain.Match, error)
	NoteMatchError(ctx context.Context, queue, matchID, name string) error
}

// Worker consumes the allocation streams of the given queues: for each job
// it allocates a party once, stores it on the match with a compare-and-set,
// and only then has the result delivered. Jobs left pending by a dead node
// are claimed after ClaimIdle. Store, Allocator, Notifier, Queues and NodeID
// are required; other zero-value fields get the defaults documented on them.
type Worker struct {
	Store     Store
	Allocator Allocator
	Notifier  Notifier
	Queues    []string
	NodeID    string
	Logger    *slog.Logger // default slog.Default()
	// Registerer receives the worker's metrics; nil registers nowhere.
	Registerer prometheus.Registerer

	// Deadline bounds one match's allocation, retries included, counted
	// from when this node received the job; a match that has no party by
	// then fails and its tickets are requeued. Once PlayFab has answered,
	// storing and delivering the outcome get another Deadline: those writes
	// are retried with backoff while Redis is unavailable, so an outage
	// shorter than Deadline never costs a second party. Default 30s.
	Deadline time.Duration
	// ClaimIdle is how long a job may sit with another consumer before this
	// node takes it over (its node died). It must exceed 2 × Deadline, the
	// longest a live worker holds a job (allocating, then storing), so a
	// live allocator always finishes first. Default 2 × Deadline + 15s.
	ClaimIdle time.Duration
	// ClaimInterval is how often stale jobs are looked for. Default 5s.
	ClaimInterval time.Duration
	// Concurrency caps the jobs this node works on at once. Default 256.
	Concurrency int
	// RequeueHold keeps the tickets of a failed match out of formation for
	// this long, so a failing PlayFab (or a wrong secret key) is not hit by
	// the same players again at once. They keep their place. Default 5s.
	RequeueHold time.Duration

	metrics *workerMetrics

	qmu   sync.Mutex
	added []string      // queues added after start (AddQueues)
	wake  chan struct{} // AddQueues tells Run
}

// AddQueues has the worker consume the allocation streams of more queues
// (a reloaded queue file added them), from now on; a queue it consumes
// already is left as it is. A removed queue's stream is still consumed:
// its matches formed before the removal still get their party.
func (w *Worker) AddQueues(queues ...string) {
	w.qmu.Lock()
	for _, q := range queues {
		if !slices.Contains(w.Queues, q) && !slices.Contains(w.added, q) {
			w.added = append(w.added, q)
		}
	}
	wake := w.wakeLocked()
	w.qmu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// queuesAndWake returns every queue the worker is to consume, and the
// channel AddQueues signals.
func (w *Worker) queuesAndWake() ([]string, chan struct{}) {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	return append(slices.Clone(w.Queues), w.added...), w.wakeLocked()
}

// wakeLocked returns the channel AddQueues signals, made on first use:
// AddQueues may come before or after Run. w.qmu must be held.
func (w *Worker) wakeLocked() chan struct{} {
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	return w.wake
}

func (w *Worker) init() error {
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Deadline <= 0 {
		w.Deadline = 30 * time.Second
	}
	if w.ClaimIdle <= 0 {
		w.ClaimIdle = 2*w.Deadline + 15*time.Second
	}
	if w.ClaimIdle <= 2*w.Deadline {
		return fmt.Errorf("allocation claim idle %v must exceed twice the deadline %v (allocating, then storing)", w.ClaimIdle, w.Deadline)
	}
	if w.ClaimInterval <= 0 {
		w.ClaimInterval = 5 * time.Second
	}
	if w.Concurrency <= 0 {
		w.Concurrency = 256
	}
	if w.RequeueHold <= 0 {
		w.RequeueHold = 5 * time.Second
	}
	w.metrics = newWorkerMetrics(w.Registerer)
	return nil
}

// Run consumes jobs until ctx is done and returns once every job it started
// has ended. A job interrupted by shutdown stays pending and is claimed by
// another node (or this one, restarted) after ClaimIdle.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.init(); err != nil {
		return err
	}
	queues, wake := w.queuesAndWake()
	ensured := make(map[string]bool, len(queues))
	for _, q := range queues {
		if err := w.Store.EnsureAllocationGroup(ctx, q); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it started
			}
			return err
		}
		ensured[q] = true
	}
	acks := make(chan domain.AllocationJob, ackQueue)
	acked := make(chan struct{})
	go func() { defer close(acked); w.ackJobs(ctx, acks) }()
	slots := make(chan struct{}, w.Concurrency)
	var jobs sync.WaitGroup
	dispatch := func(ctx context.Context, batch []domain.AllocationJob) {
		for _, job := range batch {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return // stays pending; claimed later
			}
			jobs.Add(1)
			go func() {
				defer func() { <-slots; jobs.Done() }()
				w.handle(ctx, job, acks)
			}()
		}
	}
	var loops sync.WaitGroup
	consumed := map[string]bool{}
	for ctx.Err() == nil {
		for _, q := range queues {
			if consumed[q] {
				continue
			}
			if !ensured[q] {
				// A queue added at run time. On failure its loops
				// create the group when they find it missing (NOGROUP).
				if err := w.Store.EnsureAllocationGroup(ctx, q); err != nil {
					w.Logger.Warn("create allocation group", "queue", q, "err", err)
				}
			}
			consumed[q] = true
			loops.Add(2)
			go func() { defer loops.Done(); w.readLoop(ctx, q, dispatch) }()
			go func() { defer loops.Done(); w.claimLoop(ctx, q, dispatch) }()
		}
		select {
		case <-wake:
			queues, _ = w.queuesAndWake()
		case <-ctx.Done():
		}
	}
	loops.Wait()
	jobs.Wait()
	close(acks) // no job is left to finish: send the acks queued
	<-acked
	return nil
}

// ackQueue bounds the finished jobs waiting for their ack, and ackBatch the
// acks sent in one pipeline.
const (
	ackQueue = 1024
	ackBatch = 256
)

// ackJobs acknowledges finished jobs in batches until acks is closed and
// drained. A batch that fails while Redis is unavailable is sent again with
// backoff, until it goes through or the worker is stopping (ctx done). An
// ack that is never made leaves its job pending: it is claimed after
// ClaimIdle and found done (the match is ready or failed), which is safe.
func (w *Worker) ackJobs(ctx context.Context, acks <-chan domain.AllocationJob) {
	batch.Each(acks, ackBatch, func(batch []domain.AllocationJob) {
		for retry := 1; ; retry++ {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
			err := w.Store.AckAllocationJobs(actx, batch)
			cancel()
			if err == nil {
				return
			}
			if !errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil {
				w.Logger.Warn("ack allocation jobs", "jobs", len(batch), "err", err)
				return
			}
			w.metrics.writeRetries.Inc()
			if wait.Sleep(ctx, backoff(retry, writeRetryBase, writeRetryCeil, 0)) != nil {
				w.Logger.Warn("ack allocation jobs", "jobs", len(batch), "err", err)
				return
			}
		}
	})
}

// ackTimeout bounds one try of a batch of acks.
const ackTimeout = 5 * time.Second

// writeRetryBase and writeRetryCeil bound the backoff between tries of a
// write to Redis that failed because Redis was unavailable.
const (
	writeRetryBase = 50 * time.Millisecond
	writeRetryCeil = 2 * time.Second
)

func (w *Worker) readLoop(ctx context.Context, queue string, dispatch func(context.Context, []domain.AllocationJob)) {
	for ctx.Err() == nil {
		batch, err := w.Store.ReadAllocationJobs(ctx, queue, w.NodeID, 64, time.Second)
		if err != nil {
			if ctx.Err() == nil {
				w.Logger.Warn("read allocation jobs", "queue", queue, "err", err)
				_ = wait.Sleep(ctx, time.Second)
			}
			continue
		}
		dispatch(ctx, batch)
	}
}

func (w *Worker) claimLoop(ctx context.Context, queue string, dispatch func(context.Context, []domain.AllocationJob)) {
	wait.Every(ctx, w.ClaimInterval, func(time.Time) {
		batch, err := w.Store.ClaimStaleAllocationJobs(ctx, queue, w.NodeID, w.ClaimIdle, 64)
		if err != nil {
			if ctx.Err() == nil {
				w.Logger.Warn("claim stale allocation jobs", "queue", queue, "err", err)
			}
			return
		}
		if len(batch) > 0 {
			w.Logger.Info("claimed allocation jobs of a dead node", "queue", queue, "jobs", len(batch))
			w.metrics.claimed.Add(float64(len(batch)))
		}
		dispatch(ctx, batch)
	})
}

// handle runs one job to its end. The job is acknowledged only once the
// match's outcome is stored and announced; any earlier exit leaves it
// pending for a retry by whoever claims it.
func (w *Worker) handle(ctx context.Context, job domain.AllocationJob, acks chan<- domain.AllocationJob) {
	log := w.Logger.With("queue", job.Queue, "match", job.MatchID)
	done, err := w.allocate(ctx, job, log)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("allocation job", "err", err)
		}
		return
	}
	if done {
		acks <- job // ackJobs batches it with others
	}
}

// allocate runs one job: begin an attempt, call the allocator, store the
// outcome and have it delivered. It reports done once the job needs no
// more work; (false, nil) means the job stays pending and its trouble was
// already logged.
//
// Time is counted from when this node received the job, because that is
// when the stream started counting it idle: the attempt and the allocator
// get until received + Deadline; once the allocator has answered, the
// writes that follow (store the party or the failure, deliver it) get
// another Deadline from that answer, retried while Redis is unavailable.
// A live worker therefore holds a job for at most 2 × Deadline (plus one
// Redis round trip under way), which ClaimIdle exceeds.
func (w *Worker) allocate(ctx context.Context, job domain.AllocationJob, log *slog.Logger) (done bool, err error) {
	received := job.Received
	if received.IsZero() {
		received = time.Now()
	}
	if waited := time.Since(received); waited > w.Deadline/4 {
		// It waited for a free slot: restart its clock in the stream, so
		// it gets a whole deadline and is still not claimed by another
		// node while this one holds it. A job idle for less than it
		// waited was claimed by another node meanwhile: leave it.
		renewed, ours, err := w.Store.RenewAllocationJob(ctx, job, w.NodeID, waited-min(waited/2, time.Second))
		if err != nil || !ours {
			return false, err
		}
		received = renewed.Received
	}
	allocateBy := received.Add(w.Deadline)
	var m domain.Match
	err = w.persist(ctx, allocateBy, func(ctx context.Context) (err error) {
		m, err = w.Store.BeginAttempt(ctx, job.Queue, job.MatchID, w.NodeID)
		return err
	})
	if errors.Is(err, domain.ErrNotFound) {
		return true, nil // expired long ago: nothing left to do
	}
	if err != nil {
		return false, err
	}
	switch m.State {
	case domain.MatchReady: // stored earlier, delivery not confirmed: deliver again
		return true, w.persist(ctx, time.Now().Add(w.Deadline), func(ctx context.Context) error {
			return w.Notifier.MatchReady(ctx, m)
		})
	case domain.MatchFailed: // failed earlier, delivery not confirmed: deliver again
		return true, w.persist(ctx, time.Now().Add(w.Deadline), func(ctx context.Context) error {
			return w.Notifier.MatchFailed(ctx, m)
		})
	}

	w.metrics.inFlight.Inc()
	actx, cancel := context.WithDeadline(ctx, allocateBy)
	start := time.Now()
	party, err := w.Allocator.Allocate(actx, m)
	cancel()
	w.metrics.inFlight.Dec()
	writeBy := time.Now().Add(w.Deadline)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err() // shutting down: leave it for another node
		}
		log.Warn("allocation failed; requeueing the match's tickets", "err", err, "after", time.Since(start))
		// For the operator console; the failure itself is what counts.
		if nerr := w.Store.NoteMatchError(ctx, m.Queue, m.ID, ErrorName(err)); nerr != nil {
			log.Debug("note the allocation's error on its match", "err", nerr)
		}
		return w.fail(ctx, m, writeBy)
	}
	w.metrics.allocated.Observe(time.Since(start).Seconds())

	// The party exists and is paid for: from here on, giving up costs a
	// second party, so the writes are retried until writeBy.
	var stored domain.Match
	err = w.persist(ctx, writeBy, func(ctx context.Context) (err error) {
		stored, err = w.Store.StoreParty(ctx, job.Queue, job.MatchID, m.Attempt, party.PartyID,
			party.SerializedNetworkDescriptor, party.InvitationID)
		return err
	})
	switch {
	case errors.Is(err, domain.ErrStaleAttempt):
		w.orphaned(log, party, "a newer attempt owns the match, or it ended", "state", stored.State)
		if stored.State == domain.MatchReady {
			return true, w.persist(ctx, writeBy, func(ctx context.Context) error {
				return w.Notifier.MatchReady(ctx, stored)
			})
		}
		return true, nil
	case errors.Is(err, domain.ErrNotFound):
		w.orphaned(log, party, "the match's record is gone (Redis lost it)")
		return true, nil
	case err != nil && ctx.Err() != nil:
		w.orphaned(log, party, "shutting down before its result was stored", "err", err)
		return false, nil
	case err != nil:
		w.orphaned(log, party, "its result could not be stored before the deadline", "err", err)
		return false, nil
	}
	return true, w.persist(ctx, writeBy, func(ctx context.Context) error {
		return w.Notifier.MatchReady(ctx, stored)
	})
}

// fail marks the match failed, requeueing its tickets, and tells its
// players; the writes are retried until writeBy.
func (w *Worker) fail(ctx context.Context, m domain.Match, writeBy time.Time) (done bool, err error) {
	var failed domain.Match
	err = w.persist(ctx, writeBy, func(ctx context.Context) (err error) {
		failed, err = w.Store.FailMatch(ctx, m, FailReason, time.Now().Add(w.RequeueHold))
		return err
	})
	if errors.Is(err, domain.ErrStaleAttempt) {
		return true, nil // another attempt owns or ended the match
	}
	if err != nil {
		return false, err
	}
	w.metrics.failed.Inc()
	return true, w.persist(ctx, writeBy, func(ctx context.Context) error {
		return w.Notifier.MatchFailed(ctx, failed)
	})
}

// orphaned counts and logs, once, a party that PlayFab created and whose
// result is not stored on its match: nobody will ever be sent to it.
func (w *Worker) orphaned(log *slog.Logger, party Party, why string, attrs ...any) {
	w.metrics.orphans.Inc()
	log.Warn("party left orphaned: "+why, append([]any{"party", party.PartyID}, attrs...)...)
}

// persist runs write, and runs it again with backoff while it fails because
// Redis is unavailable, until the deadline by. A try under way when the
// worker is stopped runs to its end (bounded by by), so a write Redis can
// take still lands; no new try starts after that. Every write passed here
// must be safe to repeat.
func (w *Worker) persist(ctx context.Context, by time.Time, write func(context.Context) error) error {
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), by)
	defer cancel()
	for retry := 1; ; retry++ {
		err := write(wctx)
		if err == nil || !errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		delay := backoff(retry, writeRetryBase, writeRetryCeil, 0)
		if time.Until(by) < delay {
			return err
		}
		w.metrics.writeRetries.Inc()
		if wait.Sleep(ctx, delay) != nil {
			return err
		}
	}
}

type workerMetrics struct {
	inFlight     prometheus.Gauge
	allocated    prometheus.Histogram
	failed       prometheus.Counter
	orphans      prometheus.Counter
	claimed      prometheus.Counter
	writeRetries prometheus.Counter
}

func newWorkerMetrics(reg prometheus.Registerer) *workerMetrics {
	m := &workerMetrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobbyd_allocations_in_flight", Help: "Matches whose party is being requested on this node."}),
		allocated: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lobbyd_allocation_seconds", Help: "Time to get a party for a match, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_matches_failed_total", Help: "Matches whose allocation finally failed (tickets requeued)."}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_orphan_parties_total",
			Help: "Parties created whose result was never stored: allocated by a stale attempt, or abandoned (Redis unavailable until the deadline, shutdown, match record lost)."}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_allocation_jobs_claimed_total", Help: "Allocation jobs taken over from a dead node."}),
		writeRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobbyd_allocation_write_retries_total",
			Help: "Writes of an allocation's state or outcome (attempt, party, failure, delivery, ack) tried again because Redis was unavailable."}),
	}
	if reg != nil {
		reg.MustRegister(m.inFlight, m.allocated, m.failed, m.orphans, m.claimed, m.writeRetries)
	}
	return m
}
