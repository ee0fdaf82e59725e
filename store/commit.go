package store

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lobbyd/lobbyd/internal/batch"
	"github.com/redis/go-redis/v9"
)

// Group commit: many sessions' small Redis writes share one pipeline. A
// node serving a burst of players used to send one or two pipelines per
// player, each costing a write and a read on both sides of the socket
// (docs/benchmarks.md, issue 14); batched, a pipeline carries what every
// waiting session queued meanwhile. The batch takes only what is already
// waiting, with no timer, so a lone request leaves at once and a quiet
// server pays no latency for it.

// commitWorkers is how many pipelines a committer has in flight at once:
// while one waits for Redis the next batch gathers.
const commitWorkers = 2

// commitMax bounds the operations in one pipeline.
const commitMax = 256

// commitOp is one caller's part of a shared pipeline.
type commitOp struct {
	ctx  context.Context
	fill func(pipe redis.Pipeliner)
	// slot groups operations whose commands must share a transaction's
	// hash slot (see committer.tx); empty for plain pipelines.
	slot string
	err  error
	done chan struct{}
}

// committer batches operations into pipelines: plain ones, or with tx one
// MULTI/EXEC per hash slot (a transaction in Redis Cluster may not span
// slots), so every operation is applied whole or not at all.
type committer struct {
	rdb     redis.UniversalClient
	tx      bool
	cluster bool
	in      chan *commitOp
	stop    chan struct{}
	wg      sync.WaitGroup
	ops     sync.Pool // of *commitOp, each with its reusable done channel
}

func newCommitter(rdb redis.UniversalClient, tx bool) *committer {
	_, cluster := rdb.(*redis.ClusterClient)
	c := &committer{rdb: rdb, tx: tx, cluster: cluster, in: make(chan *commitOp), stop: make(chan struct{})}
	c.ops.New = func() any { return &commitOp{done: make(chan struct{}, 1)} }
	c.wg.Add(commitWorkers)
	for range commitWorkers {
		go c.work()
	}
	return c
}

// close stops the workers once they have flushed what they hold; later
// operations fail with errClosed.
func (c *committer) close() {
	close(c.stop)
	c.wg.Wait()
}

var errClosed = errors.New("store closed")

// do queues fill's commands into a shared pipeline and waits until it has
// run. Its error is the first of fill's own commands (redis.Nil aside);
// fill's commands hold their replies, as after pipe.Exec. An operation
// whose context ends before its batch is sent is not sent.
func (c *committer) do(ctx context.Context, slot string, fill func(pipe redis.Pipeliner)) error {
	op := c.ops.Get().(*commitOp)
	op.ctx, op.fill, op.slot, op.err = ctx, fill, slot, nil
	select {
	case c.in <- op:
	case <-ctx.Done():
		c.ops.Put(op)
		return ctxErr(ctx)
	case <-c.stop:
		c.ops.Put(op)
		return errClosed
	}
	select {
	case <-op.done:
		err := op.err
		op.ctx, op.fill = nil, nil
		c.ops.Put(op)
		return err
	case <-ctx.Done():
		// The batch may still run fill's commands, as a pipeline of our own
		// may after its context ended; fill's results are not to be read.
		// The worker's answer lands in done's buffer and op is dropped.
		return ctxErr(ctx)
	}
}

// ctxErr is the error of a caller whose context ended while it waited
// for Redis: a deadline is marked unavailable, as go-redis's would be
// (a cancellation is not).
func ctxErr(ctx context.Context) error {
	err, _ := markUnavailable(ctx.Err())
	return err
}

func (c *committer) work() {
	defer c.wg.Done()
	batch.EachUntil(c.in, c.stop, commitMax, c.flush)
}

func (c *committer) flush(batch []*commitOp) {
	live := batch[:0] // filtered in place
	for _, op := range batch {
		if op.ctx.Err() != nil {
			op.answer(ctxErr(op.ctx))
			continue
		}
		live = append(live, op)
	}
	if !c.tx || !c.cluster {
		c.exec(live)
		return
	}
	bySlot := make(map[string][]*commitOp)
	for _, op := range live {
		bySlot[op.slot] = append(bySlot[op.slot], op)
	}
	if len(bySlot) == 1 {
		c.exec(live)
		return
	}
	var wg sync.WaitGroup
	for _, ops := range bySlot {
		wg.Go(func() { c.exec(ops) })
	}
	wg.Wait()
}

// exec runs ops in one pipeline (one transaction with tx) and answers each.
func (c *committer) exec(ops []*commitOp) {
	if len(ops) == 0 {
		return
	}
	var pipe redis.Pipeliner
	if c.tx {
		pipe = c.rdb.TxPipeline()
	} else {
		pipe = c.rdb.Pipeline()
	}
	ends := make([]int, len(ops))
	for i, op := range ops {
		op.fill(pipe)
		ends[i] = pipe.Len()
	}
	// No caller's context cancels the batch (each was checked above, and
	// one leaving must not fail the others), but it ends with the last of
	// their deadlines: go-redis stops retrying an unreachable Redis then,
	// as it would for each caller's own pipeline.
	ctx, cancel := batchContext(ops)
	defer cancel()
	cmds, err := pipe.Exec(ctx)
	// An error go-redis did not stamp on any command (it does on most)
	// concerns the whole batch.
	whole := err
	if errors.Is(err, redis.Nil) || firstErr(cmds) != nil {
		whole = nil
	}
	start := 0
	for i, op := range ops {
		op.answer(cmp.Or(firstErr(cmds[start:ends[i]]), whole))
		start = ends[i]
	}
}

// firstErr is the first error of cmds but redis.Nil.
func firstErr(cmds []redis.Cmder) error {
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) {
			return e
		}
	}
	return nil
}

// batchContext is a context without cancellation that ends at the latest
// of the ops' deadlines, or never if one of them has none.
func batchContext(ops []*commitOp) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, op := range ops {
		d, ok := op.ctx.Deadline()
		if !ok {
			return context.Background(), func() {}
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.Background(), last)
}

func (op *commitOp) answer(err error) {
	op.err = err
	op.done <- struct{}{}
}
