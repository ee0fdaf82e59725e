package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// PlayerLimits returns the rate budgets a player's last connection left
// (see SavePlayerLimits), or nil when there are none.
func (s *Store) PlayerLimits(ctx context.Context, playerID string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.playerLimitsKey(playerID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rate budgets of %s: %w", playerID, err)
	}
	return b, nil
}

// SavePlayerLimits keeps what a player's rate budgets still owe for ttl, the
// time they take to refill, so a reconnect on any node resumes them. The
// data is the gateway's; the store only keeps it.
func (s *Store) SavePlayerLimits(ctx context.Context, playerID string, data []byte, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.keys.playerLimitsKey(playerID), data, ttl).Err(); err != nil {
		return fmt.Errorf("save rate budgets of %s: %w", playerID, err)
	}
	return nil
}
