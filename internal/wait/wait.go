// Package wait holds lobbyd's context-aware sleep and periodic loop.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first, and
// returns ctx's error in the second case. A d of zero or less returns at
// once, with ctx's error if it is already done.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Every calls f every d, with the tick's time, until ctx is done; a call
// that runs long delays the next (ticks are not queued up). It returns
// when ctx is done, after the call in progress, if any.
func Every(ctx context.Context, d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}
