package store_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// graceBucketOf is the documented bucket of a player's grace deadline
// (docs/architecture.md, Keys): FNV-1a 32 of the id, modulo 16. It is
// computed here independently, because nodes of two versions must agree.
func graceBucketOf(player string) string {
	h := fnv.New32a()
	h.Write([]byte(player))
	return fmt.Sprintf("lobbyd:graces:{g:%02d}", h.Sum32()%16)
}

func allKeys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	keys, err := storetest.Keys(context.Background(), rdb, "*")
	require.NoError(t, err)
	return keys
}

// writeSomeOfEverything queues a ticket for player in queue "default",
// connects them, gives them a lobby and a grace deadline.
func writeSomeOfEverything(t *testing.T, s *store.Store, player string) (domain.Ticket, domain.Lobby) {
	t.Helper()
	ctx := context.Background()
	tk := soloTicket("default", player, time.Now())
	require.NoError(t, s.CreateTicket(ctx, tk))
	_, _, err := s.SetPresence(ctx, player, domain.Presence{NodeID: "n1", ConnID: "c1"}, time.Minute)
	require.NoError(t, err)
	_, err = s.Attach(ctx, player, time.Now().Add(time.Minute))
	require.NoError(t, err)
	l := newLobby(t, s, player+"-owner", 4, "public")
	return tk, l
}

// With no prefix, every key keeps the name earlier versions gave it, so an
// upgrade keeps its data (docs/architecture.md, Keys).
func TestDefaultKeyNamesAreUnchanged(t *testing.T) {
	storetest.EachRedis(t, func(t *testing.T, r *storetest.Redis) {
		ctx := context.Background()
		s := r.Open(t, "")
		tk, l := writeSomeOfEverything(t, s, "alice")

		keys := allKeys(t, r.Client)
		for _, want := range []string{
			"{q:default}:searching",
			"{q:default}:searching:data",
			"{q:default}:incoming",
			"{q:default}:t:" + tk.ID,
			"{p:alice}:ticket",
			"{p:alice}:node",
			"{p:alice-owner}:lobby",
			"{l:" + l.ID + "}",
			"lobbycode:" + l.Code,
			"lobbies:public:q",
			graceBucketOf("alice"),
		} {
			assert.Contains(t, keys, want)
		}
		require.NoError(t, s.SetGraceDeadlines(ctx, map[string]time.Time{"bob": time.Now()}))
		assert.Contains(t, allKeys(t, r.Client), graceBucketOf("bob"))

		// The node channel: a subscriber of the old name hears the store.
		sub := r.Client.Subscribe(ctx, "lobbyd:node:n1")
		defer sub.Close()
		_, err := sub.Receive(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Publish(ctx, "n1", domain.NodeMessage{Replace: &domain.Replace{PlayerID: "alice", ConnID: "c0"}}))
		select {
		case m := <-sub.Channel():
			assert.Contains(t, m.Payload, `"playerId":"alice"`)
		case <-time.After(10 * time.Second):
			t.Fatal("nothing published on lobbyd:node:n1")
		}
	})
}

// Two deployments with different prefixes on one Redis do not see each
// other's tickets, lobbies, presence, graces or deliveries, and every key
// of each starts with its prefix, in front of the hash tag.
func TestKeyPrefixesSeparateDeployments(t *testing.T) {
	storetest.EachRedis(t, func(t *testing.T, r *storetest.Redis) {
		ctx := context.Background()
		a, b := r.Open(t, "a:"), r.Open(t, "b:")

		tk, l := writeSomeOfEverything(t, a, "alice")
		require.NoError(t, a.SetGraceDeadlines(ctx, map[string]time.Time{"alice": time.Now().Add(-time.Second)}))

		_, err := b.Ticket(ctx, "default", tk.ID)
		assert.ErrorIs(t, err, domain.ErrNotFound, "ticket")
		_, err = b.PlayerTicket(ctx, "alice")
		assert.ErrorIs(t, err, domain.ErrNotFound, "ticket claim")
		depth, err := b.QueueDepth(ctx, "default")
		require.NoError(t, err)
		assert.Zero(t, depth, "searching set")
		_, err = b.Lobby(ctx, l.ID)
		assert.ErrorIs(t, err, domain.ErrNotFound, "lobby")
		_, err = b.LobbyByCode(ctx, l.Code)
		assert.ErrorIs(t, err, domain.ErrNotFound, "join code")
		public, err := b.PublicLobbies(ctx, "q", 10)
		require.NoError(t, err)
		assert.Empty(t, public, "public lobbies")
		connected, err := b.Connected(ctx, []string{"alice"})
		require.NoError(t, err)
		assert.False(t, connected["alice"], "presence")
		graces, err := b.LeaseExpiredGraces(ctx, time.Now(), 10)
		require.NoError(t, err)
		assert.Empty(t, graces, "graces")
		graces, err = a.LeaseExpiredGraces(ctx, time.Now(), 10)
		require.NoError(t, err)
		assert.Len(t, graces, 1, "a's own grace is due")

		// Deliveries: a node n1 of each deployment hears only its own. Another
		// node of each publishes, through Redis (a store hands a message for
		// a node subscribed through it over in-process).
		subA, err := a.Subscribe(ctx, "n1")
		require.NoError(t, err)
		defer subA.Close()
		subB, err := b.Subscribe(ctx, "n1")
		require.NoError(t, err)
		defer subB.Close()
		otherA, otherB := r.Open(t, "a:"), r.Open(t, "b:")
		require.NoError(t, otherA.Publish(ctx, "n1", domain.NodeMessage{Replace: &domain.Replace{PlayerID: "from-a"}}))
		require.NoError(t, otherB.Publish(ctx, "n1", domain.NodeMessage{Replace: &domain.Replace{PlayerID: "from-b"}}))
		next := func(sub domain.Subscription) string {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for {
				msg, ok, err := sub.Next(wctx)
				require.NoError(t, err)
				require.True(t, ok, "a message within 10s")
				if msg.Replace != nil {
					return msg.Replace.PlayerID
				}
			}
		}
		// Each channel delivers in order, so the first message is the only one
		// that could have crossed over.
		assert.Equal(t, "from-a", next(subA))
		assert.Equal(t, "from-b", next(subB))

		keys := allKeys(t, r.Client)
		require.NotEmpty(t, keys)
		for _, k := range keys {
			assert.Regexp(t, `^a:(\{[qpl]:|\{l:|lobbycode:|lobbies:public:|lobbyd:graces:\{g:)`, k)
		}
		assert.Contains(t, keys, "a:{q:default}:searching", "the prefix goes in front of the hash tag")
		assert.Contains(t, keys, "a:"+graceBucketOf("alice"))
	})
}

func TestValidateKeyPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"eu1:", true},
		{"game_2.prod-b:", true},
		{"a{b}:", false},
		{"{q:x}", false},
		{"has space:", false},
		{"new\nline", false},
		{"é:", false},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
	} {
		err := store.ValidateKeyPrefix(tc.prefix)
		if tc.ok {
			assert.NoError(t, err, "%q", tc.prefix)
		} else {
			assert.Error(t, err, "%q", tc.prefix)
		}
	}
	_, err := store.Open(context.Background(), store.Config{KeyPrefix: "{bad}"})
	assert.ErrorContains(t, err, "key prefix", "Open refuses a bad prefix")
}

// Grace deadlines spread over the buckets, and one lease takes the due ones
// from all of them.
func TestGraceBucketsAreAllSwept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now()
		deadlines := make(map[string]time.Time)
		for i := range 200 {
			deadlines[fmt.Sprintf("p%03d", i)] = now.Add(-time.Second)
		}
		deadlines["later"] = now.Add(time.Hour)
		require.NoError(t, s.SetGraceDeadlines(ctx, deadlines))

		buckets := make(map[string]bool)
		for p := range deadlines {
			buckets[graceBucketOf(p)] = true
		}
		require.Len(t, buckets, 16, "200 players fill every bucket")

		var got []string
		for {
			graces, err := s.LeaseExpiredGraces(ctx, now, 10)
			require.NoError(t, err)
			for _, g := range graces {
				got = append(got, g.PlayerID)
				require.NoError(t, s.GraceHandled(ctx, g))
			}
			if len(graces) < 10 {
				break // fewer than the limit: none left due
			}
		}
		assert.Len(t, got, 200)
		assert.NotContains(t, got, "later")
	})
}

// A node of the previous version keeps every grace in one set,
// lobbyd:graces (after the key prefix). A node of this version sweeps it too, so graces an old
// node wrote run out; an entry for a player who has since got a bucket
// entry (they connected to a new node) is dropped, not handed out.
func TestLegacyGraceSetIsDrained(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		rdb, prefix := store.RedisClient(s), store.KeyPrefix(s)
		ctx := context.Background()
		now := time.Now()
		due := float64(now.Add(-time.Second).UnixMilli())
		require.NoError(t, rdb.ZAdd(ctx, prefix+"lobbyd:graces",
			redis.Z{Score: due, Member: "old-only"}, redis.Z{Score: due, Member: "moved"}).Err())
		require.NoError(t, s.SetGraceDeadlines(ctx, map[string]time.Time{"moved": now.Add(time.Hour)}))

		graces, err := s.LeaseExpiredGraces(ctx, now, 10)
		require.NoError(t, err)
		require.Len(t, graces, 1)
		assert.Equal(t, "old-only", graces[0].PlayerID)
		require.NoError(t, s.GraceHandled(ctx, graces[0]))

		n, err := rdb.Exists(ctx, prefix+"lobbyd:graces").Result()
		require.NoError(t, err)
		assert.Zero(t, n, "the legacy set is drained")
		score, err := rdb.ZScore(ctx, prefix+graceBucketOf("moved"), "moved").Result()
		require.NoError(t, err)
		assert.Equal(t, float64(now.Add(time.Hour).UnixMilli()), score, "the bucket entry governs")
	})
}
