package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// junkRegions are what issue 11 found stored with every ticket: 31 region
// names of 118 characters that no queue serves.
func junkRegions() []string {
	out := make([]string, 31)
	for i := range out {
		out[i] = fmt.Sprintf("%02d%s", i, strings.Repeat("x", 116))
	}
	return out
}

// A ticket stored by an older lobbyd (every region the client sent, a
// 2-hour lifetime) is still read, and is cleaned like any other once it
// ends: a rolling upgrade leaves no ticket behind for two hours.
func TestOlderVersionsTicketIsReadAndCleaned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "old", time.Now())
		tk.Regions = append([]string{"WestUs"}, junkRegions()...)
		require.NoError(t, store.CreateTicketAsOlderVersion(ctx, s, tk))
		_, ttl, err := store.TicketRecord(ctx, s, "q", tk.ID)
		require.NoError(t, err)
		require.Greater(t, ttl, time.Hour, "an older version's lifetime")

		read, err := s.Tickets(ctx, "q", []string{tk.ID})
		require.NoError(t, err)
		require.Len(t, read, 1)
		assert.Equal(t, tk.Regions, read[0].Regions, "read as it was stored")
		_, err = s.CancelPlayerTicket(ctx, "old")
		require.NoError(t, err)
		assertFinished(t, s, "q", tk.ID, domain.TicketCancelled)
	})
}

// Every string a ticket stores has a cap in bytes (not characters), and
// so does every list; ids must fit in a key.
func TestTicketValidate(t *testing.T) {
	longRegions := make([]string, domain.MaxTicketRegions+1)
	manyLatencies := map[string]int{}
	for i := range longRegions {
		longRegions[i] = fmt.Sprint("r", i)
		manyLatencies[longRegions[i]] = i
	}
	for _, tc := range []struct {
		name   string
		change func(*domain.Ticket)
		want   error // nil: valid
	}{
		{"as created", func(*domain.Ticket) {}, nil},
		{"name of 128 bytes", func(t *domain.Ticket) { t.Players[0].Name = strings.Repeat("n", 128) }, nil},
		{"name of 129 bytes", func(t *domain.Ticket) { t.Players[0].Name = strings.Repeat("n", 129) }, domain.ErrTooLarge},
		{"name of 65 characters, 130 bytes", func(t *domain.Ticket) { t.Players[0].Name = strings.Repeat("é", 65) }, domain.ErrTooLarge},
		{"pfEntity of 64 bytes", func(t *domain.Ticket) { t.Players[0].PlayFabEntity = strings.Repeat("A", 64) }, nil},
		{"pfEntity of 65 bytes", func(t *domain.Ticket) { t.Players[0].PlayFabEntity = strings.Repeat("A", 65) }, domain.ErrTooLarge},
		{"32 regions", func(t *domain.Ticket) { t.Regions = longRegions[:32] }, nil},
		{"33 regions", func(t *domain.Ticket) { t.Regions = longRegions }, domain.ErrTooLarge},
		{"latencies of 33 regions", func(t *domain.Ticket) { t.Latencies = manyLatencies }, domain.ErrTooLarge},
		{"region of 64 bytes", func(t *domain.Ticket) { t.Regions = []string{strings.Repeat("r", 64)} }, nil},
		{"region of 65 bytes", func(t *domain.Ticket) { t.Regions = []string{strings.Repeat("r", 65)} }, domain.ErrTooLarge},
		{"latency region of 65 bytes", func(t *domain.Ticket) { t.Latencies = map[string]int{strings.Repeat("r", 65): 1} }, domain.ErrTooLarge},
		{"player id of 129 bytes", func(t *domain.Ticket) { t.Players[0].ID = strings.Repeat("p", 129) }, domain.ErrInvalid},
		{"lobby id with a brace", func(t *domain.Ticket) { t.LobbyID = "l}" }, domain.ErrInvalid},
		{"ticket id of 65 bytes", func(t *domain.Ticket) { t.ID = strings.Repeat("t", 65) }, domain.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := soloTicket("q", "p", time.Now())
			tc.change(&tk)
			err := tk.Validate()
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorIs(t, err, domain.ErrInvalid, "every refusal is a kind of ErrInvalid")
			assert.Less(t, len(err.Error()), 100, "the error names the field, not its value")
		})
	}
}

// CreateTicket refuses a ticket over a cap before it claims anything.
func TestCreateTicketRefusesOversizedTickets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "p", time.Now())
		tk.Players[0].Name = strings.Repeat("n", domain.MaxPlayerNameBytes+1)
		assert.ErrorIs(t, s.CreateTicket(ctx, tk), domain.ErrTooLarge)
		_, err := s.PlayerTicket(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrNotFound, "nothing claimed")
		depth, err := s.QueueDepth(ctx, "q")
		require.NoError(t, err)
		assert.Zero(t, depth)
	})
}
