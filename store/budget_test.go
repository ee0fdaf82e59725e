package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// A code-guess budget allows limit spends per window; CheckCodeGuesses tells
// without spending;
// a new window starts once the old one ended.
func TestBudget(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const limit, window = 3, 300 * time.Millisecond
		b, other := uuid.NewString(), uuid.NewString()

		ok, _, err := s.CheckCodeGuesses(ctx, b, limit)
		require.NoError(t, err)
		assert.True(t, ok, "an unused budget has room")
		for i := 1; i <= limit; i++ {
			ok, retry, err := s.SpendCodeGuess(ctx, b, limit, window)
			require.NoError(t, err)
			assert.True(t, ok, "spend %d of %d", i, limit)
			assert.Zero(t, retry)
		}
		ok, retry, err := s.CheckCodeGuesses(ctx, b, limit)
		require.NoError(t, err)
		assert.False(t, ok, "the budget is used up")
		assert.Greater(t, retry, time.Duration(0))
		assert.LessOrEqual(t, retry, window)

		ok, retry, err = s.SpendCodeGuess(ctx, b, limit, window)
		require.NoError(t, err)
		assert.False(t, ok, "a spend past the limit is refused")
		assert.Greater(t, retry, time.Duration(0))
		assert.LessOrEqual(t, retry, window, "refused spends do not lengthen the window")

		ok, _, err = s.CheckCodeGuesses(ctx, other, limit)
		require.NoError(t, err)
		assert.True(t, ok, "budgets are independent")

		storetest.Eventually(t, 5*time.Second, func() bool {
			ok, _, err := s.CheckCodeGuesses(ctx, b, limit)
			require.NoError(t, err)
			return ok
		}, "the window ends")
		ok, _, err = s.SpendCodeGuess(ctx, b, limit, window)
		require.NoError(t, err)
		assert.True(t, ok, "a new window")
	})
}
