package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// budget is a fixed-window counter in Redis, shared by every node: it
// allows limit spends per window, the window starting at the first spend
// after the previous one ended. Budgets are named by functions in keys.go
// (such as codeGuessBudget), so their keys sit under the hash tag of what
// they limit and expire on their own.
type budget struct{ key string }

// SpendCodeGuess counts a join code the player tried that matched no
// lobby, against limit per window (see spend), so codes cannot be found by
// guessing.
func (s *Store) SpendCodeGuess(ctx context.Context, playerID string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	return s.spend(ctx, codeGuessBudget(playerID), limit, window)
}

// CheckCodeGuesses reports, without spending, whether the player may try
// another code under limit, and when not, how long until they may.
func (s *Store) CheckCodeGuesses(ctx context.Context, playerID string, limit int) (ok bool, retryAfter time.Duration, err error) {
	return s.check(ctx, codeGuessBudget(playerID), limit)
}

// spend counts one use of b, whose windows last window and allow limit
// uses, in one round trip. It reports whether this use was within the
// limit and, when it was not, how long until the window ends. A use over
// the limit is counted too, but never lengthens the window. A spend that
// go-redis re-sends after a lost reply may count twice: a budget errs
// towards refusing.
func (s *Store) spend(ctx context.Context, b budget, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	key := s.keys.budgetKey(b)
	var used *redis.IntCmd
	var left *redis.DurationCmd
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.SetNX(ctx, key, 0, window) // starts a window; no-op inside one
		used = pipe.Incr(ctx, key)
		left = pipe.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("spend budget %s: %w", key, err)
	}
	if left.Val() < 0 {
		// The counter has no expiry (written by hand?): give it one rather
		// than refuse forever.
		s.rdb.PExpire(ctx, key, window)
	}
	if used.Val() <= int64(limit) {
		return true, 0, nil
	}
	return false, max(left.Val(), 0), nil
}

// check reports, without spending, whether b has room for another use
// under limit and, when it has not, how long until its window ends.
func (s *Store) check(ctx context.Context, b budget, limit int) (ok bool, retryAfter time.Duration, err error) {
	key := s.keys.budgetKey(b)
	pipe := s.rdb.Pipeline()
	get := pipe.Get(ctx, key)
	left := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, fmt.Errorf("check budget %s: %w", key, err)
	}
	used, _ := strconv.ParseInt(get.Val(), 10, 64) // absent: nothing used
	if used < int64(limit) {
		return true, 0, nil
	}
	return false, max(left.Val(), 0), nil
}
