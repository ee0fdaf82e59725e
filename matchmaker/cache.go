package matchmaker

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// freshCache keeps one value per queue that a node reads from Redis now
// and then (the estimated wait, the leader's summary): a value younger
// than fresh is reused, and callers that find it stale share one read.
// That read is not bound to the caller who started it (the others would
// get its cancellation), only to timeout.
type freshCache[T any] struct {
	fresh, timeout time.Duration

	mu    sync.Mutex
	m     map[string]freshEntry[T]
	reads singleflight.Group
}

type freshEntry[T any] struct {
	v    T
	read time.Time
}

// get returns the queue's value, reading it with read when it is missing
// or stale. On a read error it returns the error with the last value read
// (the zero value if none).
func (c *freshCache[T]) get(ctx context.Context, queue string, read func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.m[queue]
	c.mu.Unlock()
	if ok && time.Since(e.read) < c.fresh {
		return e.v, nil
	}
	v, err, _ := c.reads.Do(queue, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		v, err := read(rctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = make(map[string]freshEntry[T])
		}
		c.m[queue] = freshEntry[T]{v: v, read: time.Now()}
		c.mu.Unlock()
		return v, nil
	})
	if err != nil {
		return e.v, err
	}
	return v.(T), nil
}
