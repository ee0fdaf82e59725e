package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// A player's last match is known to the operator console from the moment
// it is delivered until they queue again: while its match.ready waits to
// be written, and after it was (when the copy itself is gone).
func TestLastMatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, _, err := s.LastMatch(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrNotFound, "never matched")

		m := round(t, s, "p")
		require.NoError(t, s.DeliverMatch(ctx, m, readyPayload(m)))
		id, delivered, err := s.LastMatch(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, m.ID, id)
		assert.False(t, delivered, "not yet written to a socket")

		require.NoError(t, s.AckPendingMatch(ctx, "p", m.ID))
		_, _, err = s.PendingMatch(ctx, "p")
		require.ErrorIs(t, err, domain.ErrNotFound, "the copy is gone once written")
		id, delivered, err = s.LastMatch(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, m.ID, id, "the last match outlives its copy")
		assert.True(t, delivered)

		require.NoError(t, s.CreateTicket(ctx, soloTicket("q", "p", time.Now())))
		_, _, err = s.LastMatch(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrNotFound, "queued again: the new ticket is what counts")
	})
}
