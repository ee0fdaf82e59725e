package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRedis answers pipelines in a hook, without a connection: SET on the
// key "bad" fails, every other SET is OK. Each pipeline's commands are
// recorded; while gate is set, a pipeline waits on it before answering.
type fakeRedis struct {
	mu        sync.Mutex
	pipelines [][]string // the keys of each pipeline's SETs, in order
	gate      chan struct{}
}

func (f *fakeRedis) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *fakeRedis) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { return errors.New("fakeRedis: pipelines only") }
}

func (f *fakeRedis) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var keys []string
		for _, cmd := range cmds {
			if cmd.Name() != "set" {
				continue // MULTI, EXEC
			}
			key := fmt.Sprint(cmd.Args()[1])
			keys = append(keys, key)
			if key == "bad" {
				cmd.SetErr(errors.New("WRONGTYPE bad key"))
			} else {
				cmd.(*redis.StatusCmd).SetVal("OK")
			}
		}
		f.mu.Lock()
		f.pipelines = append(f.pipelines, keys)
		gate := f.gate
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		return nil
	}
}

func newFakeClient(f *fakeRedis) redis.UniversalClient {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	rdb.AddHook(f)
	return rdb
}

// TestCommitterSharesPipelines: operations that arrive while the workers
// wait on Redis leave together, each answered with its own commands'
// outcome.
func TestCommitterSharesPipelines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeRedis{gate: make(chan struct{})}
		rdb := newFakeClient(f)
		defer rdb.Close()
		c := newCommitter(rdb, false)
		defer c.close()

		const n = 100
		errs := make([]error, n+1)
		var wg sync.WaitGroup
		set := func(i int, key string) {
			wg.Go(func() {
				errs[i] = c.do(t.Context(), "", func(pipe redis.Pipeliner) { pipe.Set(t.Context(), key, i, 0) })
			})
		}
		// The first operations hold every worker in Redis...
		for i := range commitWorkers {
			set(i, fmt.Sprint("k", i))
		}
		synctest.Wait()
		// ...while the rest queue up, one of them failing.
		for i := commitWorkers; i < n; i++ {
			set(i, fmt.Sprint("k", i))
		}
		set(n, "bad")
		synctest.Wait()
		close(f.gate)
		wg.Wait()

		for i, err := range errs {
			if i == n {
				assert.ErrorContains(t, err, "WRONGTYPE", "the failing operation gets its own error")
			} else {
				assert.NoError(t, err, "operation %d", i)
			}
		}
		seen := map[string]bool{}
		for _, p := range f.pipelines {
			for _, k := range p {
				assert.False(t, seen[k], "%s sent twice", k)
				seen[k] = true
			}
		}
		assert.Len(t, seen, n+1, "every operation sent once")
		// commitWorkers pipelines of one, then the waiting operations in
		// at most one batch per worker.
		assert.LessOrEqual(t, len(f.pipelines), 2*commitWorkers, "pipelines: %v", f.pipelines)
	})
}

// TestCommitterTx: with tx each batch is one MULTI/EXEC holding every
// operation's commands.
func TestCommitterTx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var names [][]string
		var mu sync.Mutex
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		defer rdb.Close()
		rdb.AddHook(recordNames{mu: &mu, names: &names})
		f := &fakeRedis{}
		rdb.AddHook(f)
		c := newCommitter(rdb, true)
		defer c.close()
		require.NoError(t, c.do(t.Context(), "q", func(pipe redis.Pipeliner) {
			pipe.Set(t.Context(), "a", 1, 0)
			pipe.Set(t.Context(), "b", 1, 0)
		}))
		assert.Equal(t, [][]string{{"multi", "set", "set", "exec"}}, names)
	})
}

type recordNames struct {
	mu    *sync.Mutex
	names *[][]string
}

func (recordNames) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (recordNames) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (r recordNames) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var n []string
		for _, c := range cmds {
			n = append(n, c.Name())
		}
		r.mu.Lock()
		*r.names = append(*r.names, n)
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestCommitterLeftEarly: an operation whose context ends while it waits
// for a worker is never sent; after close, operations fail at once.
func TestCommitterLeftEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeRedis{gate: make(chan struct{})}
		rdb := newFakeClient(f)
		defer rdb.Close()
		c := newCommitter(rdb, false)

		var wg sync.WaitGroup
		for i := range commitWorkers {
			wg.Go(func() {
				assert.NoError(t, c.do(t.Context(), "", func(pipe redis.Pipeliner) { pipe.Set(t.Context(), fmt.Sprint("k", i), 1, 0) }))
			})
		}
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		var err error
		wg.Go(func() {
			err = c.do(ctx, "", func(pipe redis.Pipeliner) { pipe.Set(ctx, "gone", 1, 0) })
		})
		synctest.Wait()
		cancel()
		synctest.Wait()
		close(f.gate)
		wg.Wait()
		assert.ErrorIs(t, err, context.Canceled)
		for _, p := range f.pipelines {
			assert.NotContains(t, p, "gone")
		}

		c.close()
		err = c.do(t.Context(), "", func(pipe redis.Pipeliner) { pipe.Set(t.Context(), "late", 1, 0) })
		assert.ErrorIs(t, err, errClosed)
	})
}

// TestBatchContext: a batch lasts until the last of its callers' deadlines,
// and has none if one caller has none.
func TestBatchContext(t *testing.T) {
	now := time.Now()
	early, cancel1 := context.WithDeadline(t.Context(), now.Add(time.Second))
	defer cancel1()
	late, cancel2 := context.WithDeadline(t.Context(), now.Add(time.Minute))
	defer cancel2()

	ctx, cancel := batchContext([]*commitOp{{ctx: early}, {ctx: late}})
	d, ok := ctx.Deadline()
	cancel()
	require.True(t, ok)
	assert.Equal(t, now.Add(time.Minute), d)

	ctx, cancel = batchContext([]*commitOp{{ctx: early}, {ctx: t.Context()}})
	_, ok = ctx.Deadline()
	cancel()
	assert.False(t, ok, "a caller without a deadline gets none")
}

// TestCommitterDeadlines: a caller leaves at its own deadline, whether
// its operation still waits for a worker or rides a batch that Redis has
// not answered yet, and its error says Redis is unavailable, as go-redis's
// own timeout would.
func TestCommitterDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeRedis{gate: make(chan struct{})}
		rdb := newFakeClient(f)
		defer rdb.Close()
		c := newCommitter(rdb, false)
		defer c.close()
		defer close(f.gate) // before close: the held pipelines end

		errs := make([]error, commitWorkers+1)
		var wg sync.WaitGroup
		for i := range errs { // the first ones are in a batch, the last waits for a worker
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			wg.Go(func() {
				errs[i] = c.do(ctx, "", func(pipe redis.Pipeliner) { pipe.Set(ctx, fmt.Sprint("k", i), 1, 0) })
			})
			synctest.Wait()
		}
		wg.Wait() // with the gate still shut: everyone left at the deadline
		for i, err := range errs {
			assert.ErrorIs(t, err, context.DeadlineExceeded, "operation %d", i)
			assert.ErrorIs(t, err, domain.ErrUnavailable, "operation %d", i)
		}
	})
}
