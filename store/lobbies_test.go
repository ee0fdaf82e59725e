package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

func member(id string, joined int64) domain.LobbyMember {
	return domain.LobbyMember{PlayerID: id, Name: "N" + id, JoinedAt: joined}
}

func newLobby(t *testing.T, s *store.Store, owner string, max int, visibility string) domain.Lobby {
	t.Helper()
	l, err := s.CreateLobby(context.Background(), domain.Lobby{
		ID: uuid.NewString(), Queue: "q", Visibility: visibility, OwnerID: owner, MaxMembers: max,
		Props: map[string]string{"map": "dust"}, Status: domain.LobbyOpen, CreatedAt: time.Now().UnixMilli(),
		Members: []domain.LobbyMember{member(owner, 1)},
	})
	require.NoError(t, err)
	return l
}

func TestLobbyLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := newLobby(t, s, "owner", 3, "public")
		assert.Len(t, l.Code, domain.CodeLength)
		code, ok := domain.NormalizeCode(" " + l.Code + " ")
		require.True(t, ok)
		byCode, err := s.LobbyByCode(ctx, code)
		require.NoError(t, err)
		assert.Equal(t, l.ID, byCode.ID)
		assert.Equal(t, "dust", byCode.Props["map"])

		_, err = s.CreateLobby(ctx, domain.Lobby{ID: uuid.NewString(), Queue: "q", MaxMembers: 2,
			Members: []domain.LobbyMember{member("owner", 1)}})
		assert.ErrorIs(t, err, domain.ErrConflict, "one lobby per player")

		l, err = s.JoinLobby(ctx, l.ID, member("b", 2))
		require.NoError(t, err)
		l, err = s.JoinLobby(ctx, l.ID, member("c", 3))
		require.NoError(t, err)
		assert.Equal(t, []string{"owner", "b", "c"}, l.MemberIDs())
		assert.EqualValues(t, 3, l.Version, "every change increments the version")
		_, err = s.JoinLobby(ctx, l.ID, member("d", 4))
		assert.ErrorIs(t, err, domain.ErrFull)
		again, err := s.JoinLobby(ctx, l.ID, member("b", 9))
		require.NoError(t, err, "joining twice is harmless")
		assert.Len(t, again.Members, 3)

		listed, err := s.PublicLobbies(ctx, "q", 10)
		require.NoError(t, err)
		assert.Empty(t, listed, "a full lobby is not listed")

		_, err = s.UpdateLobby(ctx, l.ID, "b", map[string]string{"x": "y"}, "", 0)
		assert.ErrorIs(t, err, domain.ErrForbidden)
		_, err = s.UpdateLobby(ctx, l.ID, "owner", nil, "", 2)
		assert.ErrorIs(t, err, domain.ErrInvalid, "maxMembers below the member count")
		l, err = s.UpdateLobby(ctx, l.ID, "owner", map[string]string{"mode": "duo"}, "private", 0)
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"mode": "duo"}, l.Props)
		assert.Equal(t, "private", l.Visibility)

		_, _, err = s.LeaveLobby(ctx, l.ID, "owner", "b")
		assert.ErrorIs(t, err, domain.ErrForbidden, "only the owner kicks")
		_, _, err = s.LeaveLobby(ctx, l.ID, "owner", "owner")
		require.NoError(t, err)
		l, err = s.PlayerLobby(ctx, "b")
		require.NoError(t, err)
		assert.Equal(t, "b", l.OwnerID, "ownership passes to the earliest joiner")
		_, err = s.PlayerLobby(ctx, "owner")
		assert.ErrorIs(t, err, domain.ErrNotFound)

		l, err = s.PromoteInLobby(ctx, l.ID, "b", "c")
		require.NoError(t, err)
		assert.Equal(t, "c", l.OwnerID)
		l, _, err = s.LeaveLobby(ctx, l.ID, "b", "c")
		require.NoError(t, err, "the owner kicks")
		assert.Equal(t, []string{"c"}, l.MemberIDs())
		_, deleted, err := s.LeaveLobby(ctx, l.ID, "c", "")
		require.NoError(t, err)
		assert.True(t, deleted, "an empty lobby is deleted")
		_, err = s.LobbyByCode(ctx, l.Code)
		assert.ErrorIs(t, err, domain.ErrNotFound, "its code is free again")
	})
}

// A public lobby turning private gets a new code, and the old one, which
// anyone who saw it listed may know, stops working. Turning public keeps
// the code.
func TestLobbyGoingPrivateChangesCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := newLobby(t, s, "o", 3, "public")
		public := l.Code
		_, err := s.UpdateLobby(ctx, l.ID, "m", nil, "private", 0)
		assert.ErrorIs(t, err, domain.ErrForbidden)
		l, err = s.LobbyByCode(ctx, public)
		require.NoError(t, err, "a refused update changes no code")

		l, err = s.UpdateLobby(ctx, l.ID, "o", nil, "private", 0)
		require.NoError(t, err)
		private := l.Code
		assert.NotEqual(t, public, private)
		assert.Len(t, private, domain.CodeLength)
		_, err = s.LobbyByCode(ctx, public)
		assert.ErrorIs(t, err, domain.ErrNotFound, "the public code is dead")
		byCode, err := s.LobbyByCode(ctx, private)
		require.NoError(t, err)
		assert.Equal(t, l.ID, byCode.ID)

		l, err = s.UpdateLobby(ctx, l.ID, "o", map[string]string{"m": "x"}, "private", 0)
		require.NoError(t, err)
		assert.Equal(t, private, l.Code, "already private: same code")
		l, err = s.UpdateLobby(ctx, l.ID, "o", nil, "public", 0)
		require.NoError(t, err)
		assert.Equal(t, private, l.Code, "turning public keeps the code")
		_, err = s.LobbyByCode(ctx, private)
		require.NoError(t, err)

		l, err = s.UpdateLobby(ctx, l.ID, "o", nil, "private", 0)
		require.NoError(t, err)
		assert.NotEqual(t, private, l.Code, "private again: another code")
		_, _, err = s.LeaveLobby(ctx, l.ID, "o", "")
		require.NoError(t, err)
		_, err = s.LobbyByCode(ctx, l.Code)
		assert.ErrorIs(t, err, domain.ErrNotFound)
	})
}

func TestLobbyWithoutProps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l, err := s.CreateLobby(ctx, domain.Lobby{ID: uuid.NewString(), Queue: "q", Visibility: "public", OwnerID: "o",
			MaxMembers: 3, Status: domain.LobbyOpen, Members: []domain.LobbyMember{member("o", 1)}})
		require.NoError(t, err)
		l, err = s.JoinLobby(ctx, l.ID, member("m", 2))
		require.NoError(t, err, "a lobby without props survives a change")
		assert.Empty(t, l.Props)
		l, err = s.UpdateLobby(ctx, l.ID, "o", map[string]string{}, "", 0)
		require.NoError(t, err)
		assert.Empty(t, l.Props)
	})
}

func TestLobbyTicket(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := newLobby(t, s, "o", 2, "public")
		_, err := s.JoinLobby(ctx, l.ID, member("m", 2))
		require.NoError(t, err)
		listed, err := s.PublicLobbies(ctx, "q", 10)
		require.NoError(t, err)
		assert.Empty(t, listed)

		_, err = s.AttachLobbyTicket(ctx, l.ID, "o", "t1", []string{"o", "m"})
		assert.ErrorIs(t, err, domain.ErrConflict, "not everyone is ready")
		for _, p := range []string{"o", "m"} {
			_, err = s.SetReady(ctx, l.ID, p, true, nil)
			require.NoError(t, err)
		}
		_, err = s.AttachLobbyTicket(ctx, l.ID, "m", "t1", []string{"o", "m"})
		assert.ErrorIs(t, err, domain.ErrForbidden)
		_, err = s.AttachLobbyTicket(ctx, l.ID, "o", "t1", []string{"o"})
		assert.ErrorIs(t, err, domain.ErrConflict, "the members changed")
		l, err = s.AttachLobbyTicket(ctx, l.ID, "o", "t1", []string{"o", "m"})
		require.NoError(t, err)
		assert.Equal(t, domain.LobbyQueued, l.Status)
		assert.Equal(t, "t1", l.TicketID)
		_, err = s.SetReady(ctx, l.ID, "m", false, nil)
		assert.ErrorIs(t, err, domain.ErrConflict, "readiness is fixed while queued")
		_, err = s.JoinLobby(ctx, l.ID, member("x", 3))
		assert.ErrorIs(t, err, domain.ErrConflict, "a queued lobby takes no one")
		before := l.Version

		_, changed, err := s.LobbyTicketDone(ctx, l.ID, "other", domain.LobbyOpen)
		require.NoError(t, err)
		assert.False(t, changed, "a stale ticket changes nothing")
		l, changed, err = s.LobbyTicketDone(ctx, l.ID, "t1", domain.LobbyMatched)
		require.NoError(t, err)
		assert.True(t, changed)
		assert.Equal(t, domain.LobbyMatched, l.Status)
		assert.Greater(t, l.Version, before)
		assert.False(t, l.Members[0].Ready, "readiness resets after a match")
		skill := 1234.5
		l, err = s.SetReady(ctx, l.ID, "m", true, &skill)
		require.NoError(t, err)
		require.NotNil(t, l.Members[1].Skill)
		assert.Equal(t, 1234.5, *l.Members[1].Skill)
	})
}

func TestPublicLobbiesAndGraces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var ids []string
		for i := 0; i < 5; i++ {
			vis := "public"
			if i == 2 {
				vis = "private"
			}
			ids = append(ids, newLobby(t, s, fmt.Sprint("o", i), 4, vis).ID)
		}
		listed, err := s.PublicLobbies(ctx, "q", 3)
		require.NoError(t, err)
		require.Len(t, listed, 3)
		for _, l := range listed {
			assert.NotEqual(t, ids[2], l.ID, "private lobbies are never listed")
		}

		now := time.Now()
		require.NoError(t, s.SetGraceDeadlines(ctx, map[string]time.Time{
			"late": now.Add(-time.Second), "later": now.Add(-time.Millisecond), "future": now.Add(time.Hour)}))
		due, err := s.LeaseExpiredGraces(ctx, now, 10)
		require.NoError(t, err)
		players := func(gs []domain.ExpiredGrace) []string {
			var out []string
			for _, g := range gs {
				out = append(out, g.PlayerID)
			}
			return out
		}
		assert.ElementsMatch(t, []string{"late", "later"}, players(due))
		again, err := s.LeaseExpiredGraces(ctx, now, 10)
		require.NoError(t, err)
		assert.Empty(t, again, "a leased grace is handed to one caller at a time")
		redue, err := s.LeaseExpiredGraces(ctx, now.Add(time.Minute), 10)
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"late", "later"}, players(redue), "an unfinished one comes back after the retry time")

		for _, g := range redue {
			if g.PlayerID == "later" { // reconnected meanwhile: a new deadline
				require.NoError(t, s.SetGraceDeadlines(ctx, map[string]time.Time{"later": now.Add(time.Hour)}))
			}
			require.NoError(t, s.GraceHandled(ctx, g))
		}
		gone, err := s.LeaseExpiredGraces(ctx, now.Add(2*time.Hour), 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"future", "later"}, players(gone), "handled graces are gone; a renewed one stays")
	})
}

// A lobby member cannot take a solo ticket; a lobby claim that outlived its
// lobby is dropped on request, and then they can.
func TestSoloTicketOfALobbyMember(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		l := newLobby(t, s, "owner", 3, "private")

		err := s.CreateTicket(ctx, soloTicket("q", "owner", time.Now()))
		assert.ErrorIs(t, err, domain.ErrInLobby)
		assert.ErrorIs(t, err, domain.ErrConflict, "a kind of conflict")
		assert.ErrorIs(t, s.DropStaleLobbyClaim(ctx, "owner"), domain.ErrInLobby, "the claim is live")
		_, err = s.PlayerTicket(ctx, "owner")
		assert.ErrorIs(t, err, domain.ErrNotFound, "a refused solo ticket leaves no claim")

		// The lobby vanishes (as at the end of its TTL) and leaves the claim.
		require.EqualValues(t, 1, store.RedisClient(s).Del(ctx, store.KeyPrefix(s)+"{l:"+l.ID+"}").Val(), "the lobby existed")
		assert.ErrorIs(t, s.CreateTicket(ctx, soloTicket("q", "owner", time.Now())), domain.ErrInLobby)
		ageLobbyClaim(t, s, "owner")
		require.NoError(t, s.DropStaleLobbyClaim(ctx, "owner"))
		require.NoError(t, s.CreateTicket(ctx, soloTicket("q", "owner", time.Now())))
		tk, err := s.PlayerTicket(ctx, "owner")
		require.NoError(t, err)
		assert.Equal(t, domain.TicketSearching, tk.Status)
	})
}

// playerLobbyKey is the key of the player's lobby claim, as s names it.
func playerLobbyKey(s *store.Store, playerID string) string {
	return store.KeyPrefix(s) + "{p:" + playerID + "}:lobby"
}

// ageLobbyClaim makes the player's lobby claim look older than the grace
// during which a claim binds without its lobby (claims live 24 h).
func ageLobbyClaim(t *testing.T, s *store.Store, playerID string) {
	t.Helper()
	aged := store.RedisClient(s).PExpire(context.Background(), playerLobbyKey(s, playerID), 24*time.Hour-time.Minute)
	require.True(t, aged.Val(), "the claim exists (%v)", aged.Err())
}

// A claim whose lobby is not written yet (another connection of the player
// is creating or joining it) binds for a grace period: a solo queue.join
// on this connection neither drops it nor takes another lobby meanwhile.
func TestFreshLobbyClaimBinds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		raw := store.RedisClient(s)
		ctx := context.Background()
		other := newLobby(t, s, "host", 3, "public")

		// The claim a lobby.create takes before it writes the lobby.
		require.NoError(t, raw.Set(ctx, playerLobbyKey(s, "p"), "being-created", 24*time.Hour).Err())
		assert.ErrorIs(t, s.DropStaleLobbyClaim(ctx, "p"), domain.ErrInLobby, "a fresh claim is not stale")
		_, err := s.JoinLobby(ctx, other.ID, member("p", 1))
		assert.ErrorIs(t, err, domain.ErrConflict, "nor replaced by another lobby")
		assert.Equal(t, "being-created", raw.Get(ctx, playerLobbyKey(s, "p")).Val())

		// Past the grace, with no lobby written, it no longer binds.
		ageLobbyClaim(t, s, "p")
		_, err = s.JoinLobby(ctx, other.ID, member("p", 1))
		require.NoError(t, err)
		assert.Equal(t, other.ID, raw.Get(ctx, playerLobbyKey(s, "p")).Val())
	})
}

// A change whose compare-and-set finds that another change came first
// (between its read and its write) reads the lobby again and applies its
// rule to that: both changes land, each counted once in the version. The
// rule here makes the other change itself, on its first call, so the
// conflict happens every time.
func TestLobbyChangeRetriedAfterAConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		lb := newLobby(t, s, "o", 4, "public")
		calls := 0
		setMode := func(l *domain.Lobby) error {
			calls++
			if calls == 1 {
				_, err := s.JoinLobby(ctx, lb.ID, member("b", 2))
				require.NoError(t, err, "the change that comes first")
			}
			l.Props["mode"] = "ranked"
			return nil
		}
		l, err := store.ChangeLobby(ctx, s, lb.ID, setMode)
		require.NoError(t, err)
		assert.Equal(t, 2, calls, "the rule is applied again to the lobby as the other change left it")

		stored, err := s.Lobby(ctx, lb.ID)
		require.NoError(t, err)
		assert.Equal(t, stored, l, "the lobby returned is the one stored")
		assert.Equal(t, []string{"o", "b"}, stored.MemberIDs(), "the other change is kept")
		assert.Equal(t, "ranked", stored.Props["mode"], "this change is made")
		assert.Equal(t, "dust", stored.Props["map"])
		assert.Equal(t, lb.Version+2, stored.Version, "one version per change")
	})
}

// A change that loses every compare-and-set gives up after a bounded number
// of tries with ErrConflict, and is not made; the changes that won are all
// there.
func TestLobbyChangeGivesUpAfterRepeatedConflicts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		lb := newLobby(t, s, "o", 4, "public")
		calls := 0
		alwaysBeaten := func(l *domain.Lobby) error {
			calls++
			_, err := s.UpdateLobby(ctx, lb.ID, "o", map[string]string{"round": fmt.Sprint(calls)}, "", 0)
			require.NoError(t, err, "the change that comes first")
			l.Props["mode"] = "ranked"
			return nil
		}
		_, err := store.ChangeLobby(ctx, s, lb.ID, alwaysBeaten)
		require.ErrorIs(t, err, domain.ErrConflict)
		assert.Equal(t, store.MaxLobbyConflicts, calls, "tried again, up to the bound")

		stored, err := s.Lobby(ctx, lb.ID)
		require.NoError(t, err)
		assert.NotContains(t, stored.Props, "mode", "the change that always lost is not made")
		assert.Equal(t, fmt.Sprint(calls), stored.Props["round"], "every change that won is")
		assert.Equal(t, lb.Version+int64(calls), stored.Version)
	})
}

// During a rolling upgrade the previous version's nodes change lobbies with
// lobby_mutate.lua while this version applies its Go rules: the two see
// each other's changes, and the version only grows.
func TestLobbyChangesMixWithThePreviousVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		lb := newLobby(t, s, "o", 4, "public")
		raw, err := json.Marshal(member("old", 2))
		require.NoError(t, err)
		outcome, err := store.MutateLobbyAsPrevious(ctx, s, lb.ID, "join", "old", string(raw))
		require.NoError(t, err)
		require.Equal(t, "ok", outcome)

		l, err := s.JoinLobby(ctx, lb.ID, member("new", 3))
		require.NoError(t, err)
		assert.Equal(t, []string{"o", "old", "new"}, l.MemberIDs(), "the new rules see the old node's join")
		assert.Equal(t, lb.Version+2, l.Version)

		outcome, err = store.MutateLobbyAsPrevious(ctx, s, lb.ID, "ready", "new", "1")
		require.NoError(t, err)
		require.Equal(t, "ok", outcome, "the old script reads what the new rules wrote")
		l, _, err = s.LeaveLobby(ctx, lb.ID, "o", "")
		require.NoError(t, err)
		assert.Equal(t, "old", l.OwnerID, "the earliest joiner left owns it")
		m, ok := l.Member("new")
		require.True(t, ok)
		assert.True(t, m.Ready, "the old node's ready is kept")
		assert.Equal(t, lb.Version+4, l.Version)
	})
}
