package wait_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lobbyd/lobbyd/internal/wait"
)

// Sleep returns after d on the (fake) clock, or as soon as ctx ends.
func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		assert.NoError(t, wait.Sleep(context.Background(), time.Minute))
		assert.Equal(t, time.Minute, time.Since(start))

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		assert.ErrorIs(t, wait.Sleep(ctx, time.Hour), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))

		assert.NoError(t, wait.Sleep(context.Background(), 0))
		assert.ErrorIs(t, wait.Sleep(ctx, 0), context.DeadlineExceeded)
	})
}

// Every calls f once a period, with the tick's time, and returns once ctx
// ends.
func TestEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		var at []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			wait.Every(ctx, time.Second, func(now time.Time) {
				at = append(at, now.Sub(start))
				if len(at) == 3 {
					cancel()
				}
			})
		}()
		<-done
		assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, at)
	})
}
