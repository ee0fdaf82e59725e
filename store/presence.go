package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

func presenceValue(p domain.Presence) string { return p.NodeID + " " + p.ConnID }

func parsePresence(v string) domain.Presence {
	node, conn, _ := strings.Cut(v, " ")
	return domain.Presence{NodeID: node, ConnID: conn}
}

// SetPresence records that the player is connected through p and returns
// the presence it replaced, if any (a connection elsewhere to be closed).
func (s *Store) SetPresence(ctx context.Context, playerID string, p domain.Presence, ttl time.Duration) (prev domain.Presence, found bool, err error) {
	old, err := s.rdb.SetArgs(ctx, s.keys.presenceKey(playerID), presenceValue(p), redis.SetArgs{Get: true, TTL: ttl}).Result()
	if errors.Is(err, redis.Nil) {
		return domain.Presence{}, false, nil
	}
	if err != nil {
		return domain.Presence{}, false, fmt.Errorf("set presence of %s: %w", playerID, err)
	}
	return parsePresence(old), true, nil
}

// RefreshPresence extends the presence of every given player that is still
// held by the given connection, and restores it where it is missing (Redis
// restarted, or it expired during an outage), in two pipelines and no
// script (a node refreshes every player it holds, every PresenceTTL/3). It
// returns the presences it restored. A presence held by another connection
// is left alone; one taken over between the two pipelines may be extended
// once, which is harmless: its holder refreshes it anyway.
func (s *Store) RefreshPresence(ctx context.Context, entries map[string]domain.Presence, ttl time.Duration) (map[string]domain.Presence, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	players := make([]string, 0, len(entries))
	pipe := s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, 0, len(entries))
	for player := range entries {
		players = append(players, player)
		gets = append(gets, pipe.Get(ctx, s.keys.presenceKey(player)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read presence of %d players: %w", len(entries), err)
	}
	pipe = s.rdb.Pipeline()
	restores := make(map[string]*redis.BoolCmd)
	for i, player := range players {
		want := presenceValue(entries[player])
		switch v, err := gets[i].Result(); {
		case errors.Is(err, redis.Nil):
			restores[player] = pipe.SetNX(ctx, s.keys.presenceKey(player), want, ttl)
		case v == want:
			pipe.PExpire(ctx, s.keys.presenceKey(player), ttl)
		}
	}
	if pipe.Len() == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("refresh presence of %d players: %w", len(entries), err)
	}
	restored := make(map[string]domain.Presence)
	for player, cmd := range restores {
		if cmd.Val() {
			restored[player] = entries[player]
		}
	}
	return restored, nil
}

// ClearPresence removes the player's presence if it is still p, and
// reports whether it was (false: a newer connection has taken over).
func (s *Store) ClearPresence(ctx context.Context, playerID string, p domain.Presence) (bool, error) {
	n, err := compareDeleteScript.Run(ctx, s.rdb, []string{s.keys.presenceKey(playerID)}, presenceValue(p)).Int()
	if err != nil {
		return false, fmt.Errorf("clear presence of %s: %w", playerID, err)
	}
	return n == 1, nil
}

// Publish sends msg to one node's channel. Its events are relayed byte for
// byte: json.Marshal would re-escape <, > and & inside them (it does so in
// a json.RawMessage too), and the receiving node would then write the
// escaped form to the socket. A node subscribed through this Store (this
// process) gets msg in-process, without Redis: its own players are
// reached without encoding, a PUBLISH and decoding (see subscription).
func (s *Store) Publish(ctx context.Context, nodeID string, msg domain.NodeMessage) error {
	var errs []error
	if s.publishLocal(ctx, nodeID, msg, &errs) {
		return errors.Join(errs...)
	}
	b, err := encodeNodeMessage(msg)
	if err != nil {
		return err
	}
	err = s.batch.do(ctx, "", func(pipe redis.Pipeliner) { pipe.Publish(ctx, s.keys.nodeChannel(nodeID), b) })
	if err != nil {
		return fmt.Errorf("publish to node %s: %w", nodeID, err)
	}
	return nil
}

// publishLocal hands msg to the node's subscription if this store holds
// it, and reports whether it did (or gave up, with the error added to
// errs); false: publish it through Redis.
func (s *Store) publishLocal(ctx context.Context, nodeID string, msg domain.NodeMessage, errs *[]error) bool {
	v, ok := s.locals.Load(nodeID)
	if !ok || isClosed(v.(*subscription).closed) {
		return false
	}
	sub := v.(*subscription)
	select {
	case sub.local <- msg:
		return true
	case <-sub.closed: // it just ended: through Redis, as for any node
		return false
	case <-ctx.Done():
		*errs = append(*errs, fmt.Errorf("publish to node %s: %w", nodeID, ctxErr(ctx)))
		return true
	}
}

// SendToPlayers pushes events to their players on whichever nodes hold their
// sockets: one presence lookup pipeline, then one publish per node carrying
// that node's share. Players who are not connected are skipped; whatever they
// must not miss is stored for them first (see DeliverMatch).
func (s *Store) SendToPlayers(ctx context.Context, events []domain.Addressed) error {
	var players []string
	seen := make(map[string]bool)
	for _, e := range events {
		for _, p := range e.To {
			if !seen[p] {
				seen[p] = true
				players = append(players, p)
			}
		}
	}
	if len(players) == 0 {
		return nil
	}
	cmds := make([]*redis.StringCmd, len(players))
	err := s.batch.do(ctx, "", func(pipe redis.Pipeliner) {
		for i, p := range players {
			cmds[i] = pipe.Get(ctx, s.keys.presenceKey(p))
		}
	})
	if err != nil {
		return fmt.Errorf("look up presence of %d players: %w", len(players), err)
	}
	nodeOf := make(map[string]string, len(players))
	for i, cmd := range cmds {
		if v, err := cmd.Result(); err == nil {
			nodeOf[players[i]] = parsePresence(v).NodeID
		}
	}
	return s.publishByNode(ctx, events, nodeOf)
}

// DeliverMatch stores a match.ready payload for each of m's players until it
// is written to one of their sockets (so one who is offline gets it on
// reconnect), releases their claims on the matched tickets so they may
// queue again, and pushes it to those connected; the copies and the
// presence lookups go in one pipeline, the copies first, so a player who
// connects meanwhile finds the copy. Two round trips.
//
// A player who has queued again since this match (a delivery re-sent late:
// its job was claimed again after its ack was lost) is left alone: neither
// stored nor pushed, so nobody is shown an earlier round's match; nor is a
// player whose socket already got this match. A match older than the
// lifetime of a copy is not delivered at all: its relay is gone.
func (s *Store) DeliverMatch(ctx context.Context, m domain.Match, payload json.RawMessage) error {
	if !m.CreatedAt.IsZero() && time.Since(m.CreatedAt) > pendingMatchTTL {
		return nil
	}
	stored := make([]*redis.Cmd, len(m.Players))
	presence := make([]*redis.StringCmd, len(m.Players))
	err := s.execScripted(ctx, func(pipe redis.Pipeliner) {
		for i, p := range m.Players {
			var ticketClaim string
			if p.TicketID != "" {
				ticketClaim = claimValue(m.Queue, p.TicketID)
			}
			stored[i] = storePendingMatchScript.EvalSha(ctx, pipe, []string{s.keys.pendingMatchKey(p.ID), s.keys.playerTicketKey(p.ID)},
				m.ID, []byte(payload), ticketClaim, int(pendingMatchTTL.Seconds()))
		}
		for i, p := range m.Players {
			presence[i] = pipe.Get(ctx, s.keys.presenceKey(p.ID))
		}
	})
	if err != nil {
		return fmt.Errorf("store match %s for %d players: %w", m.ID, len(m.Players), err)
	}
	to := make([]string, 0, len(m.Players))
	nodeOf := make(map[string]string, len(m.Players))
	for i, p := range m.Players {
		if n, _ := stored[i].Int(); n != 1 {
			continue
		}
		to = append(to, p.ID)
		if v, err := presence[i].Result(); err == nil {
			nodeOf[p.ID] = parsePresence(v).NodeID
		}
	}
	return s.publishByNode(ctx, []domain.Addressed{{To: to, Event: payload, MatchID: m.ID}}, nodeOf)
}

// publishByNode publishes events to the nodes holding their players, as
// nodeOf says (players absent from it are skipped): one message per node.
func (s *Store) publishByNode(ctx context.Context, events []domain.Addressed, nodeOf map[string]string) error {
	byNode := make(map[string][]domain.Addressed)
	for _, e := range events {
		share := make(map[string][]string)
		for _, p := range e.To {
			if node, ok := nodeOf[p]; ok {
				share[node] = append(share[node], p)
			}
		}
		for node, to := range share {
			byNode[node] = append(byNode[node], domain.Addressed{To: to, Event: e.Event, MatchID: e.MatchID})
		}
	}
	// This process's own nodes get theirs in-process; the others' leave in
	// one batch.
	var errs []error
	remote := make(map[string][]byte, len(byNode))
	for node, evs := range byNode {
		msg := domain.NodeMessage{Events: evs}
		if s.publishLocal(ctx, node, msg, &errs) {
			continue
		}
		b, err := encodeNodeMessage(msg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		remote[node] = b
	}
	if len(remote) > 0 {
		err := s.batch.do(ctx, "", func(pipe redis.Pipeliner) {
			for node, b := range remote {
				pipe.Publish(ctx, s.keys.nodeChannel(node), b)
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("publish to %d nodes: %w", len(remote), err))
		}
	}
	return errors.Join(errs...)
}

// subscription delivers the messages sent to one node: from Redis, and
// those published by this process, which skip Redis (see Publish).
type subscription struct {
	ps    *redis.PubSub
	ch    <-chan any
	local chan domain.NodeMessage
	// closed is closed by Close, which also unregisters the subscription
	// from st.locals.
	closed    chan struct{}
	closeOnce sync.Once
	st        *Store
	node      string
}

// localBuffer is how many in-process messages wait for a node's relay;
// past it a publisher waits (nothing is dropped).
const localBuffer = 1024

// Subscribe listens on the node's channel. It returns once Redis confirmed
// the subscription, so nothing published afterwards is missed.
func (s *Store) Subscribe(ctx context.Context, nodeID string) (domain.Subscription, error) {
	ps := s.rdb.Subscribe(ctx, s.keys.nodeChannel(nodeID))
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		err, _ = markUnavailable(err)
		return nil, fmt.Errorf("subscribe to node channel: %w", err)
	}
	// A large buffer: go-redis drops messages once its channel is full, and
	// deliveries come in bursts when many matches form at once. Subscription
	// confirmations come through too: after the first, each one means
	// go-redis reconnected and resubscribed.
	sub := &subscription{ps: ps, ch: ps.ChannelWithSubscriptions(redis.WithChannelSize(10000)),
		local: make(chan domain.NodeMessage, localBuffer), closed: make(chan struct{}), st: s, node: nodeID}
	s.locals.Store(nodeID, sub)
	return sub, nil
}

// NodeChannel returns the name of the node's Redis channel, key prefix
// included, for tools that listen to a node's channel from outside.
func (s *Store) NodeChannel(nodeID string) string { return s.keys.nodeChannel(nodeID) }

// Next blocks until the next message arrives, the subscription is closed
// (ok false), or ctx is done. A message with Resubscribed set reports that
// the subscription came back after a lost connection. Malformed payloads
// are returned as errors.
func (sub *subscription) Next(ctx context.Context) (msg domain.NodeMessage, ok bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return domain.NodeMessage{}, false, nil
		case msg := <-sub.local:
			return msg, true, nil
		case m, open := <-sub.ch:
			if !open {
				return domain.NodeMessage{}, false, nil
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					return domain.NodeMessage{Resubscribed: true}, true, nil
				}
			case *redis.Message:
				if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil {
					return domain.NodeMessage{}, true, fmt.Errorf("decode node message: %w", err)
				}
				return msg, true, nil
			}
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Close ends the subscription.
func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() {
		sub.st.locals.CompareAndDelete(sub.node, sub)
		close(sub.closed)
	})
	return sub.ps.Close()
}

// pendingMatchTTL: a PlayFab relay nobody joined shuts down after about ten
// minutes, so an undelivered result older than that is useless.
const pendingMatchTTL = 10 * time.Minute

// Attach reads what a connecting player holds (ticket claim, undelivered
// match, lobby claim) and moves their grace deadline to graceDeadline, in
// one round trip: a connect storm after a restart is as many connects as
// players.
func (s *Store) Attach(ctx context.Context, playerID string, graceDeadline time.Time) (domain.Attachment, error) {
	pipe := s.rdb.Pipeline()
	claim := pipe.Get(ctx, s.keys.playerTicketKey(playerID))
	pending := pipe.HGetAll(ctx, s.keys.pendingMatchKey(playerID))
	pipe.ZAdd(ctx, s.keys.graceKeyOf(playerID), redis.Z{Score: float64(msOf(graceDeadline)), Member: playerID})
	lobby := pipe.Get(ctx, s.keys.playerLobbyKey(playerID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return domain.Attachment{}, fmt.Errorf("read state of %s: %w", playerID, err)
	}
	a := domain.Attachment{LobbyID: lobby.Val()}
	a.TicketQueue, a.TicketID, _ = parseClaim(claim.Val())
	// A copy of a round before the ticket the player now holds is never
	// shown (it is dropped as the new claim is taken; this covers the
	// moment in between).
	f := pending.Val()
	if f["matchId"] != "" && (f["round"] == "" || claim.Val() == "" || f["round"] == claim.Val()) {
		a.PendingMatchID, a.PendingMatch = f["matchId"], json.RawMessage(f["payload"])
	}
	return a, nil
}

// PendingMatch returns the player's undelivered match.ready payload, if any.
func (s *Store) PendingMatch(ctx context.Context, playerID string) (matchID string, payload json.RawMessage, err error) {
	f, err := s.rdb.HGetAll(ctx, s.keys.pendingMatchKey(playerID)).Result()
	if err != nil {
		return "", nil, fmt.Errorf("read pending match of %s: %w", playerID, err)
	}
	if f["matchId"] == "" {
		return "", nil, domain.ErrNotFound
	}
	return f["matchId"], json.RawMessage(f["payload"]), nil
}

// AckPendingMatch forgets the player's undelivered copy of the match once it
// has been written to their socket (see ack_pending_match.lua).
func (s *Store) AckPendingMatch(ctx context.Context, playerID, matchID string) error {
	if err := ackPendingMatchScript.Run(ctx, s.rdb, []string{s.keys.pendingMatchKey(playerID)}, matchID).Err(); err != nil {
		return fmt.Errorf("ack pending match of %s: %w", playerID, err)
	}
	return nil
}

// AckPendingMatches is AckPendingMatch for many players, in one pipeline.
func (s *Store) AckPendingMatches(ctx context.Context, acks []domain.MatchAck) error {
	if len(acks) == 0 {
		return nil
	}
	err := s.execScripted(ctx, func(pipe redis.Pipeliner) {
		for _, a := range acks {
			ackPendingMatchScript.EvalSha(ctx, pipe, []string{s.keys.pendingMatchKey(a.PlayerID)}, a.MatchID)
		}
	})
	if err != nil {
		return fmt.Errorf("ack %d pending matches: %w", len(acks), err)
	}
	return nil
}

// PendingMatches returns the undelivered match.ready payloads of the given
// players, by player, in one pipeline. Players with none are absent.
func (s *Store) PendingMatches(ctx context.Context, players []string) (map[string]domain.Addressed, error) {
	if len(players) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(players))
	for i, p := range players {
		cmds[i] = pipe.HGetAll(ctx, s.keys.pendingMatchKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read pending matches of %d players: %w", len(players), err)
	}
	out := make(map[string]domain.Addressed)
	for i, cmd := range cmds {
		if f := cmd.Val(); f["matchId"] != "" {
			out[players[i]] = domain.Addressed{To: []string{players[i]}, Event: json.RawMessage(f["payload"]), MatchID: f["matchId"]}
		}
	}
	return out, nil
}
