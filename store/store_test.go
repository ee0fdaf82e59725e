package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

func soloTicket(queue, player string, created time.Time) domain.Ticket {
	return domain.Ticket{
		ID: uuid.NewString(), Queue: queue, CreatedAt: created,
		Players: []domain.Player{{ID: player, Name: "name-" + player}},
	}
}

// matchOf is a match of the given tickets, with their players, as the
// matchmaker forms it.
func matchOf(tickets ...domain.Ticket) domain.Match {
	m := domain.Match{ID: uuid.NewString()}
	for _, t := range tickets {
		m.TicketIDs = append(m.TicketIDs, t.ID)
		for _, p := range t.Players {
			p.TicketID, p.LobbyID = t.ID, t.LobbyID
			m.Players = append(m.Players, p)
		}
	}
	return m
}

func TestTicketLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("default", "alice", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))

		got, err := s.PlayerTicket(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, tk.ID, got.ID)
		assert.Equal(t, domain.TicketSearching, got.Status)
		assert.Equal(t, tk.CreatedAt.UnixMilli(), got.CreatedAt.UnixMilli())

		err = s.CreateTicket(ctx, soloTicket("other", "alice", time.Now()))
		assert.ErrorIs(t, err, domain.ErrConflict, "a player holds one ticket at a time, across queues")

		depth, err := s.QueueDepth(ctx, "default")
		require.NoError(t, err)
		assert.EqualValues(t, 1, depth)

		cancelled, err := s.CancelPlayerTicket(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, domain.TicketCancelled, cancelled.Status)
		depth, _ = s.QueueDepth(ctx, "default")
		assert.EqualValues(t, 0, depth)

		_, err = s.CancelPlayerTicket(ctx, "alice")
		assert.ErrorIs(t, err, domain.ErrNotFound)
		require.NoError(t, s.CreateTicket(ctx, soloTicket("default", "alice", time.Now())), "free to queue again")
	})
}

// A snapshot of the searching set empties the incoming list in the same
// step: what the snapshot holds is not taken again, later arrivals are.
func TestSnapshotSearchingTakesIncoming(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var ids []string
		for i := 0; i < 3; i++ {
			tk := soloTicket("q", fmt.Sprintf("p%d", i), time.Now())
			require.NoError(t, s.CreateTicket(ctx, tk))
			ids = append(ids, tk.ID)
		}
		held, err := s.AcquireLease(ctx, "q", "leader", time.Minute)
		require.NoError(t, err)
		require.True(t, held)
		_, err = s.TakeIncoming(ctx, "q", "someone else", 100)
		assert.ErrorIs(t, err, domain.ErrNotLeader, "only the leader takes arrivals")
		peek, err := s.TakeIncoming(ctx, "q", "leader", 1)
		require.NoError(t, err)
		require.Len(t, peek, 1, "the refused take left the list alone")
		assert.Equal(t, ids[0], peek[0].ID, "oldest first")
		snap, err := s.SnapshotSearching(ctx, "q", true)
		require.NoError(t, err)
		assert.ElementsMatch(t, ids, snap)
		taken, err := s.TakeIncoming(ctx, "q", "leader", 100)
		require.NoError(t, err)
		assert.Empty(t, taken, "the snapshot took the incoming list")

		late := soloTicket("q", "late", time.Now())
		require.NoError(t, s.CreateTicket(ctx, late))
		taken, err = s.TakeIncoming(ctx, "q", "leader", 100)
		require.NoError(t, err)
		require.Len(t, taken, 1)
		assert.Equal(t, late.ID, taken[0].ID)
		assert.Equal(t, domain.TicketSearching, taken[0].Status)
		assert.Equal(t, "late", taken[0].Players[0].ID)

		// A leader checking the view it keeps leaves the list alone: an
		// entry may be a ticket it holds, requeued with a new hold.
		later := soloTicket("q", "later", time.Now())
		require.NoError(t, s.CreateTicket(ctx, later))
		snap, err = s.SnapshotSearching(ctx, "q", false)
		require.NoError(t, err)
		assert.Contains(t, snap, later.ID)
		taken, err = s.TakeIncoming(ctx, "q", "leader", 100)
		require.NoError(t, err)
		require.Len(t, taken, 1, "still an arrival")
		assert.Equal(t, later.ID, taken[0].ID)
	})
}

func TestCommitMatchesIsAtomicAndIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		base := time.Now()
		var ids []string
		var tks []domain.Ticket
		for i := 0; i < 6; i++ {
			tk := soloTicket("q", fmt.Sprintf("p%d", i), base.Add(time.Duration(i)*time.Millisecond))
			require.NoError(t, s.CreateTicket(ctx, tk))
			ids = append(ids, tk.ID)
			tks = append(tks, tk)
		}
		searching, err := s.SearchingTickets(ctx, "q", 100)
		require.NoError(t, err)
		require.Len(t, searching, 6)
		for i, tk := range searching {
			assert.Equal(t, ids[i], tk.ID, "oldest first")
		}

		_, err = s.CancelPlayerTicket(ctx, "p5")
		require.NoError(t, err)

		m1 := matchOf(tks[0:2]...)
		m1.Regions = []string{"WestUs"}
		m2 := matchOf(tks[1:3]...) // reuses ids[1]
		m3 := matchOf(tks[4:6]...) // ids[5] cancelled
		res, err := s.CommitMatches(ctx, "q", []domain.Match{m1, m2, m3})
		require.NoError(t, err)
		assert.Equal(t, domain.CommitOK, res[0].Outcome)
		assert.Equal(t, domain.CommitStale, res[1].Outcome)
		assert.Equal(t, ids[1], res[1].StaleTicket)
		assert.Equal(t, domain.CommitStale, res[2].Outcome)
		assert.Equal(t, ids[5], res[2].StaleTicket)

		again, err := s.CommitMatches(ctx, "q", []domain.Match{m1})
		require.NoError(t, err)
		assert.Equal(t, domain.CommitExists, again[0].Outcome, "a re-sent commit changes nothing")

		m, err := s.Match(ctx, "q", m1.ID)
		require.NoError(t, err)
		assert.Equal(t, domain.MatchAllocating, m.State)
		assert.Equal(t, "q", m.Queue)
		assert.Equal(t, ids[0:2], m.TicketIDs)
		assert.WithinDuration(t, time.Now(), m.CreatedAt, 5*time.Second)
		assert.Equal(t, []string{"p0", "p1"}, m.PlayerIDs())
		assert.Equal(t, []string{"WestUs"}, m.Regions)
		assert.Equal(t, ids[0], m.Players[0].TicketID)
		assert.Empty(t, m.Players[0].LobbyID, "a solo ticket has no lobby")

		tk, err := s.PlayerTicket(ctx, "p1")
		require.NoError(t, err)
		assert.Equal(t, domain.TicketMatched, tk.Status)
		assert.Equal(t, m1.ID, tk.MatchID)

		left, err := s.SearchingTickets(ctx, "q", 100)
		require.NoError(t, err)
		require.Len(t, left, 3, "p2, p3 and p4 still search")
		for i, tk := range left {
			assert.Equal(t, ids[2+i], tk.ID, "in their places (p2 and p4 were put back by the stale matches)")
		}
		scores, err := s.SearchingScores(ctx, "q")
		require.NoError(t, err)
		for i, tk := range tks[2:5] {
			assert.Equal(t, float64(tk.CreatedAt.UnixMilli()), scores[i], "%s keeps its creation time as score", tk.ID)
		}
	})
}

func TestAllocationAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		require.NoError(t, s.EnsureAllocationGroup(ctx, "q"))
		require.NoError(t, s.EnsureAllocationGroup(ctx, "q"), "idempotent")
		created := time.Now().Add(-time.Minute)
		a, b := soloTicket("q", "a", created), soloTicket("q", "b", created.Add(time.Second))
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))
		match := matchOf(a, b)
		_, err := s.CommitMatches(ctx, "q", []domain.Match{match})
		require.NoError(t, err)

		jobs, err := s.ReadAllocationJobs(ctx, "q", "node-1", 10, 100*time.Millisecond)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		assert.Equal(t, match.ID, jobs[0].MatchID)

		first, err := s.BeginAttempt(ctx, "q", match.ID, "node-1")
		require.NoError(t, err)
		second, err := s.BeginAttempt(ctx, "q", match.ID, "node-2")
		require.NoError(t, err)
		assert.Equal(t, first.Attempt+1, second.Attempt)

		_, err = s.StoreParty(ctx, "q", match.ID, first.Attempt, "party-1", "desc-1", "inv-1")
		assert.ErrorIs(t, err, domain.ErrStaleAttempt, "an older attempt cannot store")
		stored, err := s.StoreParty(ctx, "q", match.ID, second.Attempt, "party-2", "desc-2", "inv-2")
		require.NoError(t, err)
		assert.Equal(t, domain.MatchReady, stored.State)
		assert.Equal(t, "desc-2", stored.NetworkDescriptor)
		again, err := s.StoreParty(ctx, "q", match.ID, second.Attempt, "party-2", "desc-2", "inv-2")
		require.NoError(t, err, "a re-sent store is a no-op success")
		assert.Equal(t, "inv-2", again.InvitationID)
		_, err = s.FailMatch(ctx, second, "too late", time.Time{})
		assert.ErrorIs(t, err, domain.ErrStaleAttempt, "a ready match cannot fail")

		require.NoError(t, s.AckAllocationJobs(ctx, jobs[:1]))
		stale, err := s.ClaimStaleAllocationJobs(ctx, "q", "node-2", 0, 10)
		require.NoError(t, err)
		assert.Empty(t, stale, "acknowledged jobs are not handed out again")
	})
}

func TestFailMatchRequeuesWithOriginalWait(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		old := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		a := soloTicket("q", "a", old)
		leaver := soloTicket("q", "leaver", old)
		newer := soloTicket("q", "n", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, leaver))
		match := matchOf(a, leaver)
		_, err := s.CommitMatches(ctx, "q", []domain.Match{match})
		require.NoError(t, err)
		require.NoError(t, s.CreateTicket(ctx, newer))

		m, err := s.BeginAttempt(ctx, "q", match.ID, "node")
		require.NoError(t, err)
		left, err := s.CancelPlayerTicket(ctx, "leaver")
		require.NoError(t, err, "a player may leave while the match allocates")
		assert.Equal(t, domain.TicketCancelled, left.Status)

		hold := time.Now().Add(time.Minute).Truncate(time.Millisecond)
		failed, err := s.FailMatch(ctx, m, "playfab said no", hold)
		require.NoError(t, err)
		assert.Equal(t, domain.MatchFailed, failed.State)
		assert.Equal(t, "playfab said no", failed.FailReason)
		assert.Equal(t, []string{a.ID}, failed.Requeued, "the player who left is not requeued")
		assert.Equal(t, []string{leaver.ID}, failed.Left)
		assert.Equal(t, []string{"a"}, failed.Staying().PlayerIDs())

		searching, err := s.SearchingTickets(ctx, "q", 10)
		require.NoError(t, err)
		require.Len(t, searching, 2)
		assert.Equal(t, a.ID, searching[0].ID, "the requeued ticket keeps its place before newer ones")
		assert.True(t, old.Equal(searching[0].CreatedAt))
		assert.True(t, hold.Equal(searching[0].HoldUntil), "held out of formation for a while")
		assert.True(t, searching[1].HoldUntil.IsZero())

		again, err := s.FailMatch(ctx, m, "again", time.Time{})
		require.NoError(t, err, "a re-sent fail is a no-op")
		assert.Equal(t, []string{a.ID}, again.Requeued)
		searching, _ = s.SearchingTickets(ctx, "q", 10)
		assert.Len(t, searching, 2)
	})
}

func TestLeavingAReadyMatchIsAConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "p", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		match := matchOf(tk)
		_, err := s.CommitMatches(ctx, "q", []domain.Match{match})
		require.NoError(t, err)
		m, err := s.BeginAttempt(ctx, "q", match.ID, "node")
		require.NoError(t, err)
		_, err = s.StoreParty(ctx, "q", match.ID, m.Attempt, "party", "desc", "inv")
		require.NoError(t, err)
		_, err = s.CancelPlayerTicket(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrConflict, "the party exists: too late to leave the queue")
	})
}

func TestStaleJobsAreClaimed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		require.NoError(t, s.EnsureAllocationGroup(ctx, "q"))
		tk := soloTicket("q", "a", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		_, err := s.CommitMatches(ctx, "q", []domain.Match{matchOf(tk)})
		require.NoError(t, err)
		jobs, err := s.ReadAllocationJobs(ctx, "q", "dead-node", 10, 0)
		require.NoError(t, err)
		require.Len(t, jobs, 1)

		none, err := s.ClaimStaleAllocationJobs(ctx, "q", "live-node", time.Hour, 10)
		require.NoError(t, err)
		assert.Empty(t, none, "not idle long enough")
		claimed, err := s.ClaimStaleAllocationJobs(ctx, "q", "live-node", 0, 10)
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		assert.Equal(t, jobs[0].StreamID, claimed[0].StreamID)
		assert.Equal(t, jobs[0].MatchID, claimed[0].MatchID)
		assert.Equal(t, "q", claimed[0].Queue)
		assert.False(t, claimed[0].Received.Before(jobs[0].Received), "a claimed job's clock starts again")
	})
}

func TestPresenceAndDelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sub1, err := s.Subscribe(ctx, "node-1")
		require.NoError(t, err)
		defer sub1.Close()
		sub2, err := s.Subscribe(ctx, "node-2")
		require.NoError(t, err)
		defer sub2.Close()

		p1 := domain.Presence{NodeID: "node-1", ConnID: "c1"}
		_, found, err := s.SetPresence(ctx, "alice", p1, time.Minute)
		require.NoError(t, err)
		assert.False(t, found)
		_, _, err = s.SetPresence(ctx, "bob", domain.Presence{NodeID: "node-2", ConnID: "c2"}, time.Minute)
		require.NoError(t, err)
		p3 := domain.Presence{NodeID: "node-1", ConnID: "c3"}
		_, _, err = s.SetPresence(ctx, "carol", p3, time.Minute)
		require.NoError(t, err)

		event := json.RawMessage(`{"type":"match.found"}`)
		other := json.RawMessage(`{"type":"queue.state"}`)
		require.NoError(t, s.SendToPlayers(ctx, []domain.Addressed{
			{To: []string{"alice", "bob", "carol", "offline"}, Event: event, MatchID: "m1"},
			{To: []string{"bob"}, Event: other},
		}))
		next := func(sub domain.Subscription) domain.NodeMessage {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			msg, ok, err := sub.Next(ctx)
			require.NoError(t, err)
			require.True(t, ok, "no message within 5s")
			return msg
		}
		m1 := next(sub1)
		require.Len(t, m1.Events, 1, "one publish per node, with that node's share")
		assert.ElementsMatch(t, []string{"alice", "carol"}, m1.Events[0].To)
		assert.JSONEq(t, string(event), string(m1.Events[0].Event))
		assert.Equal(t, "m1", m1.Events[0].MatchID)
		m2 := next(sub2)
		require.Len(t, m2.Events, 2)
		assert.Equal(t, []string{"bob"}, m2.Events[0].To)
		assert.JSONEq(t, string(other), string(m2.Events[1].Event))

		prev, found, err := s.SetPresence(ctx, "alice", domain.Presence{NodeID: "node-2", ConnID: "c9"}, time.Minute)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, p1, prev, "the replaced connection is reported")
		cleared, err := s.ClearPresence(ctx, "alice", p1)
		require.NoError(t, err)
		assert.False(t, cleared, "clearing a replaced presence is a no-op")
		restored, err := s.RefreshPresence(ctx, map[string]domain.Presence{"alice": p1, "carol": p3}, time.Minute)
		require.NoError(t, err)
		assert.Empty(t, restored, "alice is held by another connection, carol's is extended")
		require.NoError(t, s.SendToPlayers(ctx, []domain.Addressed{{To: []string{"alice"}, Event: event}}))
		assert.Equal(t, []string{"alice"}, next(sub2).Events[0].To, "alice now lives on node-2")
	})
}

func TestPendingMatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "a", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		m := domain.Match{ID: "m1", Queue: "q", Players: []domain.Player{{ID: "a", TicketID: tk.ID}}}
		require.NoError(t, s.DeliverMatch(ctx, m, json.RawMessage(`{"type":"match.ready"}`)))

		id, payload, err := s.PendingMatch(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, "m1", id)
		assert.JSONEq(t, `{"type":"match.ready"}`, string(payload))
		_, err = s.PlayerTicket(ctx, "a")
		assert.ErrorIs(t, err, domain.ErrNotFound, "a delivered match frees the player to queue again")

		require.NoError(t, s.AckPendingMatch(ctx, "a", "other"))
		_, _, err = s.PendingMatch(ctx, "a")
		require.NoError(t, err, "acking another match keeps this one")
		require.NoError(t, s.AckPendingMatch(ctx, "a", "m1"))
		_, _, err = s.PendingMatch(ctx, "a")
		assert.ErrorIs(t, err, domain.ErrNotFound)
	})
}

func TestLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ok, err := s.AcquireLease(ctx, "q", "n1", time.Minute)
		require.NoError(t, err)
		assert.True(t, ok)
		ok, _ = s.AcquireLease(ctx, "q", "n2", time.Minute)
		assert.False(t, ok, "held by n1")
		ok, _ = s.AcquireLease(ctx, "q", "n1", time.Minute)
		assert.True(t, ok, "renewal")
		require.NoError(t, s.ReleaseLease(ctx, "q", "n2"), "a non-holder's release is a no-op")
		ok, _ = s.AcquireLease(ctx, "q", "n2", time.Minute)
		assert.False(t, ok)
		require.NoError(t, s.ReleaseLease(ctx, "q", "n1"))
		ok, _ = s.AcquireLease(ctx, "q", "n2", time.Minute)
		assert.True(t, ok)
	})
}

func TestLeaseExpiresInEmbeddedRedis(t *testing.T) {
	s := storetest.Embedded(t)
	ctx := context.Background()
	ok, err := s.AcquireLease(ctx, "q", "n1", 50*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	storetest.Eventually(t, 5*time.Second, func() bool {
		ok, err := s.AcquireLease(ctx, "q", "n2", time.Minute)
		return err == nil && ok
	}, "embedded redis must expire keys by the wall clock")
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		addrs   []string
		master  string
		cluster bool
		err     string
	}{
		{url: "redis://localhost:6379/2", addrs: []string{"localhost:6379"}},
		{url: "rediss://u:secretpw@cache:6380", addrs: []string{"cache:6380"}},
		{url: "redis+sentinel://s1:26379,s2:26379/mymaster", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster"},
		{url: "redis+cluster://n1:7000,n2:7001", addrs: []string{"n1:7000", "n2:7001"}, cluster: true},
		{url: "redis+sentinel://s1:26379", err: "master name"},
		{url: "memcached://x", err: "unsupported scheme"},
		{url: "redis://u:secretpw@host:6379/notadb", err: "redis url"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			o, err := store.ParseURL(tc.url)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "secretpw", "errors never echo a password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.addrs, o.Addrs)
			assert.Equal(t, tc.master, o.MasterName)
			assert.Equal(t, tc.cluster, o.IsClusterMode)
		})
	}
}

// Batched acks delete exactly the pending matches they name, and work on a
// Redis whose script cache was flushed (as after a restart or failover). On
// a cluster the batch spans every primary, each of which answers NOSCRIPT.
func TestAckPendingMatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		players := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
		for _, p := range players {
			m := domain.Match{ID: "m-" + p, Queue: "q", Players: []domain.Player{{ID: p}}}
			require.NoError(t, s.DeliverMatch(ctx, m, json.RawMessage(`{"type":"match.ready"}`)))
		}
		raw := store.RedisClient(s)
		if cluster, ok := raw.(*redis.ClusterClient); ok {
			primaries, err := storetest.PrimaryClients(ctx, raw)
			require.NoError(t, err)
			served := map[string]bool{}
			for _, p := range players {
				node, err := cluster.MasterForKey(ctx, store.KeyPrefix(s)+"{p:"+p+"}:match")
				require.NoError(t, err)
				served[node.Options().Addr] = true
			}
			require.Len(t, served, len(primaries), "the players' pending matches are on every primary")
		}
		require.NoError(t, storetest.FlushScripts(ctx, raw))

		var acks []domain.MatchAck
		for _, p := range players {
			matchID := "m-" + p
			if p == "b" {
				matchID = "m-other"
			}
			acks = append(acks, domain.MatchAck{PlayerID: p, MatchID: matchID})
		}
		require.NoError(t, s.AckPendingMatches(ctx, acks))
		for _, p := range players {
			id, _, err := s.PendingMatch(ctx, p)
			if p == "b" {
				require.NoError(t, err, "an ack of another match keeps b's")
				assert.Equal(t, "m-b", id)
				continue
			}
			assert.ErrorIs(t, err, domain.ErrNotFound, "%s's is acknowledged", p)
		}

		require.NoError(t, s.AckPendingMatches(ctx, []domain.MatchAck{{PlayerID: "b", MatchID: "m-b"}}))
		_, _, err := s.PendingMatch(ctx, "b")
		assert.ErrorIs(t, err, domain.ErrNotFound)
	})
}

// Attach reads in one round trip what a connecting player holds.
func TestAttach(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		fresh, err := s.Attach(ctx, "nobody", time.Now().Add(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, domain.Attachment{}, fresh)

		tk := soloTicket("q", "a", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		got, err := s.Attach(ctx, "a", time.Now().Add(time.Minute))
		require.NoError(t, err)
		read, err := s.Ticket(ctx, got.TicketQueue, got.TicketID)
		require.NoError(t, err)
		assert.Equal(t, tk.ID, read.ID)
		assert.Empty(t, got.PendingMatchID)

		m := domain.Match{ID: "m1", Queue: "q", Players: []domain.Player{{ID: "a", TicketID: tk.ID}}}
		require.NoError(t, s.DeliverMatch(ctx, m, json.RawMessage(`{"type":"match.ready"}`)))
		l, err := s.CreateLobby(ctx, domain.Lobby{ID: uuid.NewString(), Queue: "q", OwnerID: "a", MaxMembers: 2,
			Status: domain.LobbyOpen, Members: []domain.LobbyMember{{PlayerID: "a", Name: "A"}}})
		require.NoError(t, err)
		got, err = s.Attach(ctx, "a", time.Now().Add(-time.Second)) // a deadline already past
		require.NoError(t, err)
		assert.Equal(t, "m1", got.PendingMatchID)
		assert.JSONEq(t, `{"type":"match.ready"}`, string(got.PendingMatch))
		assert.Equal(t, l.ID, got.LobbyID)
		lobby, err := s.LobbyOf(ctx, "a", got.LobbyID)
		require.NoError(t, err)
		assert.Equal(t, "a", lobby.OwnerID)
		_, err = s.LobbyOf(ctx, "stranger", got.LobbyID)
		assert.ErrorIs(t, err, domain.ErrNotFound, "not a member")

		graces, err := s.LeaseExpiredGraces(ctx, time.Now(), 10)
		require.NoError(t, err)
		require.Len(t, graces, 1, "the grace deadline was moved")
		assert.Equal(t, "a", graces[0].PlayerID)
	})
}
