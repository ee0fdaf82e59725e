package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// Operations whose keys spread over many hash slots, which on a Redis
// Cluster are served by different primaries, and the store's operations no
// other test of this package makes; storetest.Each runs them on the cluster
// tier too.

// Tickets created at once in several queues share the store's
// transactional pipelines; on a cluster each queue's commands go in a
// transaction of their own, since one may not span hash slots.
func TestTicketsOfManyQueuesAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const queues, perQueue = 6, 10
		var wg sync.WaitGroup
		errs := make(chan error, queues*perQueue)
		for q := range queues {
			for i := range perQueue {
				wg.Go(func() {
					errs <- s.CreateTicket(ctx, soloTicket(fmt.Sprint("q", q), fmt.Sprintf("q%d-p%d", q, i), time.Now()))
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for q := range queues {
			queue := fmt.Sprint("q", q)
			tickets, err := s.SearchingTickets(ctx, queue, 100)
			require.NoError(t, err)
			assert.Len(t, tickets, perQueue, queue)
			set, data, err := store.SearchingIndexes(ctx, s, queue)
			require.NoError(t, err)
			assert.Equal(t, set, data, "%s: the searching set and its data agree", queue)
			for i := range perQueue {
				tk, err := s.PlayerTicket(ctx, fmt.Sprintf("q%d-p%d", q, i))
				require.NoError(t, err)
				assert.Equal(t, queue, tk.Queue)
			}
		}
	})
}

// A match of a dozen players (whose keys have a dozen hash tags) is stored
// for each, pushed to those connected, read back and acknowledged, each
// step one pipeline over every slot.
func TestDeliveryToPlayersOfManySlots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sub, err := s.Subscribe(ctx, "node-1")
		require.NoError(t, err)
		defer sub.Close()
		const n = 12
		var tickets []domain.Ticket
		var players, connected []string
		away := map[string]domain.Presence{}
		for i := range n {
			p := fmt.Sprintf("player-%02d", i)
			tk := soloTicket("q", p, time.Now())
			require.NoError(t, s.CreateTicket(ctx, tk))
			tickets, players = append(tickets, tk), append(players, p)
			presence := domain.Presence{NodeID: "node-1", ConnID: "c-" + p}
			if i%2 == 0 {
				_, _, err := s.SetPresence(ctx, p, presence, time.Minute)
				require.NoError(t, err)
				connected = append(connected, p)
			} else {
				away[p] = presence
			}
		}
		m := matchOf(tickets...)
		m.Queue = "q"
		payload := json.RawMessage(`{"type":"match.ready"}`)
		require.NoError(t, s.DeliverMatch(ctx, m, payload))

		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		msg, ok, err := sub.Next(waitCtx)
		require.NoError(t, err)
		require.True(t, ok, "no message within 5s")
		require.Len(t, msg.Events, 1)
		assert.ElementsMatch(t, connected, msg.Events[0].To, "pushed to the connected players")

		pending, err := s.PendingMatches(ctx, players)
		require.NoError(t, err)
		assert.Len(t, pending, n, "a copy for every player")
		for _, p := range players {
			_, err := s.PlayerTicket(ctx, p)
			assert.ErrorIs(t, err, domain.ErrNotFound, "%s is free to queue again", p)
		}
		isConnected, err := s.Connected(ctx, players)
		require.NoError(t, err)
		for i, p := range players {
			assert.Equal(t, i%2 == 0, isConnected[p], p)
		}
		var acks []domain.MatchAck
		for _, p := range players {
			acks = append(acks, domain.MatchAck{PlayerID: p, MatchID: m.ID})
		}
		require.NoError(t, s.AckPendingMatches(ctx, acks))
		pending, err = s.PendingMatches(ctx, players)
		require.NoError(t, err)
		assert.Empty(t, pending)

		restored, err := s.RefreshPresence(ctx, away, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, away, restored, "missing presences are restored")
	})
}

// What the operator console and the nodes' shared settings keep: node
// heartbeats, queue figures, lease holders, estimated waits, presences,
// rate budgets, the queue configuration, and the allocation stream as the
// console reads it.
func TestConsoleAndSharedRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		require.NoError(t, s.Heartbeat(ctx, domain.NodeInfo{ID: "n2", Version: "v2"}))
		require.NoError(t, s.Heartbeat(ctx, domain.NodeInfo{ID: "n1", Version: "v1"}))
		nodes, now, err := s.Nodes(ctx)
		require.NoError(t, err)
		require.Len(t, nodes, 2)
		assert.Equal(t, "n1", nodes[0].ID)
		assert.Equal(t, "v2", nodes[1].Version)
		assert.WithinDuration(t, now, nodes[0].LastSeen, time.Minute, "heartbeats are stamped with Redis's clock")

		_, err = s.QueueFigures(ctx, "q")
		assert.ErrorIs(t, err, domain.ErrNotFound)
		require.NoError(t, s.SetQueueFigures(ctx, "q", []byte(`{"depth":3}`), time.Minute))
		figures, err := s.QueueFigures(ctx, "q")
		require.NoError(t, err)
		assert.JSONEq(t, `{"depth":3}`, string(figures))

		holder, err := s.LeaseHolder(ctx, "q")
		require.NoError(t, err)
		assert.Empty(t, holder)
		_, err = s.AcquireLease(ctx, "q", "n1", time.Minute)
		require.NoError(t, err)
		holder, err = s.LeaseHolder(ctx, "q")
		require.NoError(t, err)
		assert.Equal(t, "n1", holder)

		wait, err := s.EstimatedWait(ctx, "q")
		require.NoError(t, err)
		assert.Zero(t, wait)
		require.NoError(t, s.SetEstimatedWait(ctx, "q", 1500*time.Millisecond))
		wait, err = s.EstimatedWait(ctx, "q")
		require.NoError(t, err)
		assert.Equal(t, 1500*time.Millisecond, wait)

		_, found, err := s.PresenceOf(ctx, "alice")
		require.NoError(t, err)
		assert.False(t, found)
		p := domain.Presence{NodeID: "n1", ConnID: "c1"}
		_, _, err = s.SetPresence(ctx, "alice", p, time.Minute)
		require.NoError(t, err)
		got, found, err := s.PresenceOf(ctx, "alice")
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, p, got)

		limits, err := s.PlayerLimits(ctx, "alice")
		require.NoError(t, err)
		assert.Nil(t, limits)
		require.NoError(t, s.SavePlayerLimits(ctx, "alice", []byte("owed"), time.Minute))
		limits, err = s.PlayerLimits(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, "owed", string(limits))

		sum, err := s.QueueConfigSum(ctx)
		require.NoError(t, err)
		assert.Empty(t, sum)
		_, err = s.StoredQueueConfig(ctx)
		assert.ErrorIs(t, err, domain.ErrNotFound)
		content := []byte("queues: []\n")
		version, stored, err := s.StoreQueueConfig(ctx, content, "n1", []string{"old"}, "")
		require.NoError(t, err)
		assert.True(t, stored)
		assert.EqualValues(t, 1, version)
		sum, err = s.QueueConfigSum(ctx)
		require.NoError(t, err)
		assert.Equal(t, store.ContentSum(content), sum)
		cfg, err := s.StoredQueueConfig(ctx)
		require.NoError(t, err)
		assert.Equal(t, content, cfg.Content)
		assert.Equal(t, []string{"old"}, cfg.Retired)
		_, _, err = s.StoreQueueConfig(ctx, []byte("queues: [x]\n"), "n2", nil, "")
		assert.ErrorIs(t, err, domain.ErrConflict, "computed from no configuration, while one is stored")

		require.NoError(t, s.EnsureAllocationGroup(ctx, "q"))
		tk := soloTicket("q", "bob", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		m := matchOf(tk)
		_, err = s.CommitMatches(ctx, "q", []domain.Match{m})
		require.NoError(t, err)
		backlog, err := s.AllocationBacklog(ctx, "q")
		require.NoError(t, err)
		assert.EqualValues(t, 1, backlog, "a job no worker has read")
		jobs, err := s.ReadAllocationJobs(ctx, "q", "n1", 10, 0)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		n, err := s.PendingAllocationJobs(ctx, "q")
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		_, ok, err := s.RenewAllocationJob(ctx, jobs[0], "n1", 0)
		require.NoError(t, err)
		assert.True(t, ok)
		require.NoError(t, s.NoteMatchError(ctx, "q", m.ID, "ServiceUnavailable"))
		recent, err := s.RecentMatches(ctx, "q", 5)
		require.NoError(t, err)
		require.Len(t, recent, 1)
		assert.Equal(t, m.ID, recent[0].ID)
		assert.Equal(t, "ServiceUnavailable", recent[0].LastError)
		require.NoError(t, s.AckAllocationJobs(ctx, jobs))
		backlog, err = s.AllocationBacklog(ctx, "q")
		require.NoError(t, err)
		assert.Zero(t, backlog)
	})
}

// A store on a cluster with a replica per primary rides out a manual
// failover (CLUSTER FAILOVER, which loses nothing) of the primaries of a
// queue and of a node's channel: the queue's data is there, its scripts
// run on the promoted replica (which may not have them loaded), and the
// node's subscription, left on the demoted primary, still receives. Killing
// that node (kill -9) moves the subscription to the channel's primary,
// reporting Resubscribed; restarted, the node rejoins as a replica.
func TestStoreAcrossManualFailovers(t *testing.T) {
	c := storetest.StartCluster(t, 3, 1)
	ctx := context.Background()
	r := &storetest.Redis{URL: c.URL} // Open needs only the URL
	a, b := r.Open(t, "mf:"), r.Open(t, "mf:")
	const queueKey, channel = "mf:{q:default}:searching", "mf:lobbyd:node:node-a"
	sub, err := a.Subscribe(ctx, "node-a")
	require.NoError(t, err)
	defer sub.Close()
	msgs := relay(ctx, sub)
	subscribedOn, err := c.PrimaryOf(channel)
	require.NoError(t, err)

	alice := soloTicket("default", "alice", time.Now())
	require.NoError(t, b.CreateTicket(ctx, alice))
	for _, key := range []string{queueKey, channel} {
		primary, err := c.PrimaryOf(key)
		require.NoError(t, err)
		replicas, err := c.ReplicasOf(primary)
		require.NoError(t, err)
		require.Len(t, replicas, 1)
		if key == channel && primary != subscribedOn {
			continue // failed over with the queue's primary already
		}
		require.NoError(t, c.Failover(replicas[0]))
		now, err := c.PrimaryOf(key)
		require.NoError(t, err)
		require.Equal(t, replicas[0], now, "the replica serves %s's slot", key)
	}

	got, err := b.PlayerTicket(ctx, "alice")
	require.NoError(t, err, "a manual failover loses nothing")
	assert.Equal(t, alice.ID, got.ID)
	bob := soloTicket("default", "bob", time.Now())
	require.NoError(t, b.CreateTicket(ctx, bob))
	res, err := b.CommitMatches(ctx, "default", []domain.Match{matchOf(alice, bob)})
	require.NoError(t, err, "scripts run on the promoted replica")
	assert.Equal(t, domain.CommitOK, res[0].Outcome)
	assert.False(t, publishUntilReceived(t, b, msgs, "after the failover"), "the subscription stayed where it was")
	// node-a's own traffic (every node touches queue keys all the time)
	// meets a MOVED reply, after which its client knows the new primaries,
	// so that its subscription can find them (see TestStoreAfterAPrimaryCrash).
	_, err = a.QueueDepth(ctx, "default")
	require.NoError(t, err)

	pid := c.PID(subscribedOn)
	c.Kill(subscribedOn)
	t.Logf("killed node %d (pid %d), which held node-a's subscription", subscribedOn, pid)
	assert.True(t, publishUntilReceived(t, b, msgs, "after its node was killed"), "the subscription reported that it came back (messages may have been lost)")

	require.NoError(t, c.Start(subscribedOn))
	require.NoError(t, c.WaitReady(30*time.Second))
	primaries, err := c.Primaries()
	require.NoError(t, err)
	assert.Len(t, primaries, 3)
	assert.NotContains(t, primaries, subscribedOn, "the restarted node is a replica")
	carol := soloTicket("default", "carol", time.Now())
	require.NoError(t, b.CreateTicket(ctx, carol))
}

// After kill -9 of a primary, its replica takes over, and the store serves
// that primary's slots again once the cluster has settled: within seconds,
// not at go-redis's next periodic reload of its slot map a minute later
// (store/cluster.go).
func TestStoreAfterAPrimaryCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills two primaries and waits for their replicas")
	}
	t.Parallel()
	c := storetest.StartCluster(t, 3, 1)
	ctx := context.Background()
	r := &storetest.Redis{URL: c.URL} // Open needs only the URL
	a, b := r.Open(t, "pc:"), r.Open(t, "pc:")
	sub, err := a.Subscribe(ctx, "node-a")
	require.NoError(t, err)
	defer sub.Close()
	msgs := relay(ctx, sub)
	alice := soloTicket("default", "alice", time.Now())
	require.NoError(t, b.CreateTicket(ctx, alice))

	primary, err := c.PrimaryOf("pc:{q:default}:searching")
	require.NoError(t, err)
	c.Kill(primary)
	require.NoError(t, c.WaitReady(30*time.Second), "its replica takes over")
	start := time.Now()
	bob := soloTicket("default", "bob", time.Now())
	storetest.Eventually(t, 10*time.Second, func() bool { return b.CreateTicket(ctx, bob) == nil }, "the queue's slot is served again")
	t.Logf("the store served the queue again %v after the cluster settled", time.Since(start))

	channelPrimary, err := c.PrimaryOf("pc:lobbyd:node:node-a")
	require.NoError(t, err)
	c.Kill(channelPrimary)
	require.NoError(t, c.WaitReady(30*time.Second))
	publishUntilReceived(t, b, msgs, "after the channel's primary was killed")

	require.NoError(t, c.Start(primary))
	require.NoError(t, c.Start(channelPrimary))
	require.NoError(t, c.WaitReady(30*time.Second))
}

// relay hands on what sub receives until ctx ends or it closes.
func relay(ctx context.Context, sub domain.Subscription) <-chan domain.NodeMessage {
	out := make(chan domain.NodeMessage, 100)
	go func() {
		defer close(out)
		for {
			msg, ok, err := sub.Next(ctx)
			if !ok {
				return
			}
			if err == nil {
				out <- msg
			}
		}
	}()
	return out
}

// publishUntilReceived publishes to node-a through b until a message
// reaches msgs (node-a's subscription), and reports whether the
// subscription said it came back (Resubscribed) in between.
func publishUntilReceived(t *testing.T, b *store.Store, msgs <-chan domain.NodeMessage, when string) (resubscribed bool) {
	t.Helper()
	ctx := context.Background()
	event := domain.NodeMessage{Events: []domain.Addressed{{To: []string{"alice"}, Event: json.RawMessage(`{"type":"ping"}`)}}}
	storetest.Eventually(t, 30*time.Second, func() bool {
		if err := b.Publish(ctx, "node-a", event); err != nil && !errors.Is(err, domain.ErrUnavailable) {
			t.Logf("publish: %v", err)
		}
		timeout := time.After(100 * time.Millisecond)
		for {
			select {
			case msg := <-msgs:
				if msg.Resubscribed {
					resubscribed = true
					continue
				}
				assert.Equal(t, []string{"alice"}, msg.Events[0].To)
				return true
			case <-timeout:
				return false
			}
		}
	}, "node-a's subscription receives %s", when)
	return resubscribed
}
