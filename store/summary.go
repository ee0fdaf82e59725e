package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

// SetQueueSummary stores the queue leader's summary of its last formation
// pass (the matchmaker's encoding; the store does not read it), replacing
// the previous one, for ttl: a leader that stops writing leaves none behind
// for long. One SET, under the queue's hash tag.
func (s *Store) SetQueueSummary(ctx context.Context, queue string, summary []byte, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.keys.queueSummaryKey(queue), summary, ttl).Err(); err != nil {
		return fmt.Errorf("store summary of %s: %w", queue, err)
	}
	return nil
}

// QueueSummary returns the queue's last stored summary, or
// domain.ErrNotFound when there is none (no leader wrote one within its
// time to live).
func (s *Store) QueueSummary(ctx context.Context, queue string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.queueSummaryKey(queue)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, domain.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read summary of %s: %w", queue, err)
	}
	return b, nil
}
