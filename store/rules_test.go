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

func attributed(player string, created time.Time) domain.Ticket {
	tk := soloTicket("q", player, created)
	tk.Attributes = map[string]domain.AttrValue{
		"mode":     {Type: domain.AttrString, Str: "ctf"},
		"maps":     {Type: domain.AttrStrings, Strs: []string{"dust", "harbor"}},
		"level":    {Type: domain.AttrNumber, Num: 12.5},
		"platform": {Type: domain.AttrString, Mixed: []string{"pc", "xbox"}},
	}
	return tk
}

// A ticket's attributes are read back whichever way the ticket is read:
// its hash, the searching data the leader reads, and after a failed match
// put it back in the queue.
func TestTicketAttributesAreStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := attributed("a", time.Now().Add(-time.Second)), soloTicket("q", "b", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))

		got, err := s.Ticket(ctx, "q", a.ID)
		require.NoError(t, err)
		assert.Equal(t, a.Attributes, got.Attributes, "the ticket's hash")
		read, err := s.Tickets(ctx, "q", []string{a.ID, b.ID})
		require.NoError(t, err)
		require.Len(t, read, 2)
		assert.Equal(t, a.Attributes, read[0].Attributes, "the searching data")
		assert.Nil(t, read[1].Attributes, "a ticket without attributes has none")
		require.NoError(t, store.DropSearchingEntry(ctx, s, "q", a.ID))
		read, err = s.Tickets(ctx, "q", []string{a.ID})
		require.NoError(t, err)
		require.Len(t, read, 1)
		assert.Equal(t, a.Attributes, read[0].Attributes, "the hash, as an older lobbyd queued it")

		m := matchOf(a, b)
		res, err := s.CommitMatches(ctx, "q", []domain.Match{m})
		require.NoError(t, err)
		require.Equal(t, domain.CommitOK, res[0].Outcome)
		begun, err := s.BeginAttempt(ctx, "q", m.ID, "node")
		require.NoError(t, err)
		_, err = s.FailMatch(ctx, begun, "no party", time.Now())
		require.NoError(t, err)
		read, err = s.Tickets(ctx, "q", []string{a.ID})
		require.NoError(t, err)
		require.Len(t, read, 1)
		assert.Equal(t, a.Attributes, read[0].Attributes, "requeued with its attributes")
	})
}

// A match's teams, attributes and quality are recorded with it and read
// back by every script that returns the match.
func TestMatchFormedIsStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := soloTicket("q", "a", time.Now()), soloTicket("q", "b", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))
		m := matchOf(a, b)
		m.Teams = [][]string{{"a"}, {"b"}}
		m.Attributes = map[string]domain.MatchAttr{
			"mode":  {Type: domain.AttrString, Value: "ctf"},
			"maps":  {Type: domain.AttrStrings, Values: []string{"harbor"}},
			"level": {Type: domain.AttrNumber, Min: 3, Max: 9},
		}
		m.Quality = &domain.Quality{SkillSpread: 120, TeamImbalance: 35.5, Relaxed: []string{"latency", "platform"}, WaitMs: 31000}
		res, err := s.CommitMatches(ctx, "q", []domain.Match{m})
		require.NoError(t, err)
		require.Equal(t, domain.CommitOK, res[0].Outcome)

		check := func(got domain.Match, what string) {
			t.Helper()
			assert.Equal(t, m.Teams, got.Teams, what)
			assert.Equal(t, m.Attributes, got.Attributes, what)
			assert.Equal(t, m.Quality, got.Quality, what)
		}
		got, err := s.Match(ctx, "q", m.ID)
		require.NoError(t, err)
		check(got, "Match")
		begun, err := s.BeginAttempt(ctx, "q", m.ID, "node")
		require.NoError(t, err)
		check(begun, "BeginAttempt")
		ready, err := s.StoreParty(ctx, "q", m.ID, begun.Attempt, "party", "descriptor", "invitation")
		require.NoError(t, err)
		check(ready, "StoreParty")

		// A match of a queue without rules, committed without them, has none.
		c, d := soloTicket("q", "c", time.Now()), soloTicket("q", "d", time.Now())
		require.NoError(t, s.CreateTicket(ctx, c))
		require.NoError(t, s.CreateTicket(ctx, d))
		plain := matchOf(c, d)
		_, err = s.CommitMatches(ctx, "q", []domain.Match{plain})
		require.NoError(t, err)
		rec, err := store.MatchRecord(ctx, s, "q", plain.ID)
		require.NoError(t, err)
		assert.NotContains(t, rec, "formed")
	})
}

// During a rolling upgrade, leaders of the previous version commit matches
// with their own script: no teams, attributes or quality, and tickets that
// may carry attributes. Such a match reads, allocates and fails as before,
// and its tickets keep their attributes when requeued.
func TestMatchOfThePreviousVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := attributed("a", time.Now()), soloTicket("q", "b", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))
		m := matchOf(a, b)
		m.Regions = []string{"WestUs"}
		res, err := store.CommitMatchesAsPrevious(ctx, s, "q", []domain.Match{m})
		require.NoError(t, err)
		require.Equal(t, []string{"ok"}, res)

		got, err := s.Match(ctx, "q", m.ID)
		require.NoError(t, err)
		assert.Equal(t, m.TicketIDs, got.TicketIDs)
		assert.Equal(t, m.Players, got.Players)
		assert.Nil(t, got.Teams)
		assert.Nil(t, got.Attributes)
		assert.Nil(t, got.Quality, "an older match has no quality: readers must allow for it")
		begun, err := s.BeginAttempt(ctx, "q", m.ID, "node")
		require.NoError(t, err)
		failed, err := s.FailMatch(ctx, begun, "no party", time.Now())
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{a.ID, b.ID}, failed.Requeued)
		back, err := s.Tickets(ctx, "q", []string{a.ID})
		require.NoError(t, err)
		require.Len(t, back, 1)
		assert.Equal(t, a.Attributes, back[0].Attributes)
	})
}

func TestQueueSummary(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, err := s.QueueSummary(ctx, "q")
		assert.ErrorIs(t, err, domain.ErrNotFound)
		require.NoError(t, s.SetQueueSummary(ctx, "q", []byte(`{"tickets":1}`), 10*time.Second))
		require.NoError(t, s.SetQueueSummary(ctx, "q", []byte(`{"tickets":2}`), 10*time.Second))
		got, err := s.QueueSummary(ctx, "q")
		require.NoError(t, err)
		assert.Equal(t, `{"tickets":2}`, string(got), "the last one")
		ttl, err := store.QueueSummaryTTL(ctx, s, "q")
		require.NoError(t, err)
		assert.Greater(t, ttl, 5*time.Second)
		assert.LessOrEqual(t, ttl, 10*time.Second)
		_, err = s.QueueSummary(ctx, "other")
		assert.ErrorIs(t, err, domain.ErrNotFound, "one summary per queue")
	})
}
