package store_test

import (
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// A ticket its player cancelled does not also expire (and so is never
// announced as expired), even when the leader still holds an old copy.
func TestCancelledTicketDoesNotExpire(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "p", time.Now().Add(-time.Hour))
		require.NoError(t, s.CreateTicket(ctx, tk))
		tk.Status = domain.TicketSearching // the leader's copy
		_, err := s.CancelPlayerTicket(ctx, "p")
		require.NoError(t, err)
		assert.ErrorIs(t, s.ExpireTicket(ctx, tk), domain.ErrConflict)
		rec, _, err := store.TicketRecord(ctx, s, "q", tk.ID)
		require.NoError(t, err)
		assert.Equal(t, string(domain.TicketCancelled), rec["status"])
	})
}

// Scripts run twice when go-redis re-sends a command whose reply was lost;
// each must end in the same state, and report it, as if it ran once.
func TestScriptsSurviveALostReply(t *testing.T) {
	ctx := context.Background()
	t.Run("commit", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		a, b := soloTicket("q", "a", time.Now()), soloTicket("q", "b", time.Now())
		require.NoError(t, l.Store.CreateTicket(ctx, a))
		require.NoError(t, l.Store.CreateTicket(ctx, b))
		l.LoseReplyTo(`"ticketId":"` + a.ID)
		res, err := l.Store.CommitMatches(ctx, "q", []domain.Match{matchOf(a, b)})
		require.NoError(t, err)
		require.Equal(t, 1, l.Lost(), "the first reply was lost")
		assert.Equal(t, domain.CommitExists, res[0].Outcome, "the re-sent commit finds its match")
	})
	t.Run("cancel", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		tk := soloTicket("q", "p", time.Now())
		require.NoError(t, l.Store.CreateTicket(ctx, tk))
		l.LoseReplyTo(tk.ID + "\r\n$9\r\ncancelled")
		cancelled, err := l.Store.CancelPlayerTicket(ctx, "p")
		require.NoError(t, err, "a re-sent cancel succeeds")
		require.Equal(t, 1, l.Lost())
		assert.Equal(t, domain.TicketCancelled, cancelled.Status)
		assertFinished(t, l.Store, "q", tk.ID, domain.TicketCancelled)
		require.NoError(t, l.Store.CreateTicket(ctx, soloTicket("q", "p", time.Now())), "the claim was released")
	})
	t.Run("deliver match", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		m := round(t, l.Store, "p")
		l.LoseReplyTo(`"matchId":"` + m.ID)
		require.NoError(t, l.Store.DeliverMatch(ctx, m, readyPayload(m)))
		require.Equal(t, 1, l.Lost())
		welcome, _ := pendingOf(t, l.Store, "p")
		assert.Equal(t, m.ID, welcome, "stored, and not refused as an earlier round by its own re-run")
		require.NoError(t, l.Store.CreateTicket(ctx, soloTicket("q", "p", time.Now())), "the claim was released")
	})
	t.Run("ack match", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		m := round(t, l.Store, "p")
		require.NoError(t, l.Store.DeliverMatch(ctx, m, readyPayload(m)))
		l.LoseReplyTo(scriptSHA(t, "ack_pending_match.lua"))
		require.NoError(t, l.Store.AckPendingMatch(ctx, "p", m.ID))
		require.Equal(t, 1, l.Lost())
		welcome, _ := pendingOf(t, l.Store, "p")
		assert.Empty(t, welcome)
		require.NoError(t, l.Store.DeliverMatch(ctx, m, readyPayload(m)))
		welcome, _ = pendingOf(t, l.Store, "p")
		assert.Empty(t, welcome, "still known as written to the player's socket")
	})
	t.Run("queue again after a match", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		m := round(t, l.Store, "p")
		require.NoError(t, l.Store.DeliverMatch(ctx, m, readyPayload(m)))
		l.LoseReplyTo(scriptSHA(t, "supersede_pending_match.lua"))
		require.NoError(t, l.Store.CreateTicket(ctx, soloTicket("q", "p", time.Now())))
		require.Equal(t, 1, l.Lost())
		welcome, _ := pendingOf(t, l.Store, "p")
		assert.Empty(t, welcome)
		require.NoError(t, l.Store.DeliverMatch(ctx, m, readyPayload(m)))
		welcome, _ = pendingOf(t, l.Store, "p")
		assert.Empty(t, welcome, "the earlier match stays refused")
	})
	t.Run("lobby leave", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		lb := newLobby(t, l.Store, "o", 3, "public")
		_, err := l.Store.JoinLobby(ctx, lb.ID, member("m", 2))
		require.NoError(t, err)
		l.LoseReplyTo(scriptSHA(t, "lobby_cas.lua"))
		_, _, err = l.Store.LeaveLobby(ctx, lb.ID, "m", "")
		require.Equal(t, 1, l.Lost())
		// The re-sent write finds its own value and answers ok.
		require.NoError(t, err)
		after, err := l.Store.Lobby(ctx, lb.ID)
		require.NoError(t, err)
		assert.Equal(t, []string{"o"}, after.MemberIDs())
		_, err = l.Store.PlayerLobby(ctx, "m")
		assert.ErrorIs(t, err, domain.ErrNotFound, "the leaver's place is released either way")
	})
	t.Run("last member leaves", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		lb := newLobby(t, l.Store, "o", 3, "public")
		l.LoseReplyTo(scriptSHA(t, "lobby_cas.lua"))
		_, deleted, err := l.Store.LeaveLobby(ctx, lb.ID, "o", "")
		require.Equal(t, 1, l.Lost())
		require.NoError(t, err, "the re-sent delete finds the lobby gone and answers ok")
		assert.True(t, deleted)
		_, err = l.Store.Lobby(ctx, lb.ID)
		assert.ErrorIs(t, err, domain.ErrNotFound)
		_, err = l.Store.LobbyByCode(ctx, lb.Code)
		assert.ErrorIs(t, err, domain.ErrNotFound, "its code is freed")
	})
	t.Run("lobby goes private", func(t *testing.T) {
		l := storetest.StartLossyRedis(t)
		lb := newLobby(t, l.Store, "o", 3, "public")
		l.LoseReplyTo(scriptSHA(t, "lobby_cas.lua"))
		after, err := l.Store.UpdateLobby(ctx, lb.ID, "o", nil, "private", 0)
		require.NoError(t, err)
		require.Equal(t, 1, l.Lost())
		assert.Equal(t, "private", after.Visibility)
		assert.NotEqual(t, lb.Code, after.Code)
		// The re-sent write finds its own value and answers ok; the old code
		// must not resolve either way.
		_, err = l.Store.LobbyByCode(ctx, lb.Code)
		assert.ErrorIs(t, err, domain.ErrNotFound, "the old code is dead")
		byCode, err := l.Store.LobbyByCode(ctx, after.Code)
		require.NoError(t, err, "the new code was kept")
		assert.Equal(t, lb.ID, byCode.ID)
	})
}

// A commit re-sent after its match already failed and requeued the tickets
// (the first reply was lost; go-redis sends the script again) must not bring
// the match back.
func TestResentCommitAfterFailureChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := soloTicket("q", "a", time.Now()), soloTicket("q", "b", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))
		match := matchOf(a, b)
		_, err := s.CommitMatches(ctx, "q", []domain.Match{match})
		require.NoError(t, err)
		m, err := s.BeginAttempt(ctx, "q", match.ID, "node")
		require.NoError(t, err)
		_, err = s.FailMatch(ctx, m, "playfab said no", time.Now())
		require.NoError(t, err)

		again, err := s.CommitMatches(ctx, "q", []domain.Match{match})
		require.NoError(t, err)
		assert.Equal(t, domain.CommitExists, again[0].Outcome)
		got, err := s.Match(ctx, "q", match.ID)
		require.NoError(t, err)
		assert.Equal(t, domain.MatchFailed, got.State, "still failed")
		tk, err := s.PlayerTicket(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, domain.TicketSearching, tk.Status, "still requeued")
		depth, err := s.QueueDepth(ctx, "q")
		require.NoError(t, err)
		assert.EqualValues(t, 2, depth)
	})
}

// scriptSHA is the SHA1 a script is called by (EVALSHA), to aim a lost
// reply at that script alone.
func scriptSHA(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("scripts", name))
	require.NoError(t, err)
	return fmt.Sprintf("%x", sha1.Sum(src))
}
