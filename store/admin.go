package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

// What the operator console reads: nodes' heartbeats, queue leaders, the
// leaders' figures and recent matches. None of it is on a player's path.

// nodeForget is how long a node that stopped heart-beating stays listed
// (shown as gone) before Nodes forgets it.
const nodeForget = 10 * time.Minute

// Heartbeat stores the node's heartbeat, its LastSeen set to Redis's clock
// (so that nodes whose clocks disagree still agree on ages): TIME and one
// HSET on one small hash, every few seconds per node.
func (s *Store) Heartbeat(ctx context.Context, info domain.NodeInfo) error {
	now, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return fmt.Errorf("read redis time: %w", err)
	}
	info.LastSeen = now.UTC()
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode heartbeat: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.keys.nodesKey(), info.ID, b).Err(); err != nil {
		return fmt.Errorf("store heartbeat of %s: %w", info.ID, err)
	}
	return nil
}

// Nodes lists the nodes that heart-beat within nodeForget, by id, with
// Redis's clock now to measure their heartbeats' ages against; older
// entries are removed as they are found.
func (s *Store) Nodes(ctx context.Context) ([]domain.NodeInfo, time.Time, error) {
	var clock *redis.TimeCmd
	var entries *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		clock = pipe.Time(ctx)
		entries = pipe.HGetAll(ctx, s.keys.nodesKey())
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read nodes: %w", err)
	}
	now := clock.Val()
	nodes := make([]domain.NodeInfo, 0, len(entries.Val()))
	var stale []string
	for id, v := range entries.Val() {
		var n domain.NodeInfo
		if err := json.Unmarshal([]byte(v), &n); err != nil || now.Sub(n.LastSeen) > nodeForget {
			stale = append(stale, id)
			continue
		}
		nodes = append(nodes, n)
	}
	if len(stale) > 0 {
		// Best effort: the next read tries again.
		s.rdb.HDel(ctx, s.keys.nodesKey(), stale...)
	}
	slices.SortFunc(nodes, func(a, b domain.NodeInfo) int { return cmp.Compare(a.ID, b.ID) })
	return nodes, now, nil
}

// LeaseHolder returns the node holding the queue's formation lease, or ""
// when none does.
func (s *Store) LeaseHolder(ctx context.Context, queue string) (string, error) {
	holder, err := s.rdb.Get(ctx, s.keys.leaseKey(queue)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lease of %s: %w", queue, err)
	}
	return holder, nil
}

// SetQueueFigures stores the queue leader's figures for the operator
// console (the matchmaker's encoding), for ttl: a leader that stops
// writing leaves none behind for long.
func (s *Store) SetQueueFigures(ctx context.Context, queue string, figures []byte, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.keys.queueFiguresKey(queue), figures, ttl).Err(); err != nil {
		return fmt.Errorf("store figures of %s: %w", queue, err)
	}
	return nil
}

// QueueFigures returns the queue's last stored figures, or
// domain.ErrNotFound when no leader wrote any within their time to live.
func (s *Store) QueueFigures(ctx context.Context, queue string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.queueFiguresKey(queue)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, domain.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read figures of %s: %w", queue, err)
	}
	return b, nil
}

// RecentMatches returns up to n of the queue's most recently formed
// matches, newest first, from its allocation stream; matches whose record
// expired are left out.
func (s *Store) RecentMatches(ctx context.Context, queue string, n int) ([]domain.Match, error) {
	entries, err := s.rdb.XRevRangeN(ctx, s.keys.allocStreamKey(queue), "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("read recent matches of %s: %w", queue, err)
	}
	cmds := make([]*redis.MapStringStringCmd, 0, len(entries))
	ids := make([]string, 0, len(entries))
	_, err = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, e := range entries {
			id, _ := e.Values["match"].(string)
			if id == "" {
				continue
			}
			ids = append(ids, id)
			cmds = append(cmds, pipe.HGetAll(ctx, s.keys.matchKey(queue, id)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read recent matches of %s: %w", queue, err)
	}
	out := make([]domain.Match, 0, len(cmds))
	for i, c := range cmds {
		m, err := decodeMatch(ids[i], c.Val())
		if errors.Is(err, domain.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// NoteMatchError records the error of a failed allocation attempt on the
// match (domain.Match.LastError), for the operator console.
func (s *Store) NoteMatchError(ctx context.Context, queue, matchID, name string) error {
	if err := s.runScript(ctx, noteMatchErrorScript, []string{s.keys.matchKey(queue, matchID)}, name).Err(); err != nil {
		return fmt.Errorf("note error of match %s: %w", matchID, err)
	}
	return nil
}

// PresenceOf returns the node and connection holding the player's socket,
// and false when the player is not connected.
func (s *Store) PresenceOf(ctx context.Context, playerID string) (domain.Presence, bool, error) {
	v, err := s.rdb.Get(ctx, s.keys.presenceKey(playerID)).Result()
	if errors.Is(err, redis.Nil) {
		return domain.Presence{}, false, nil
	}
	if err != nil {
		return domain.Presence{}, false, fmt.Errorf("read presence of %s: %w", playerID, err)
	}
	return parsePresence(v), true, nil
}

// LastMatch returns the id of the player's last match: the one whose
// match.ready waits to be written to a socket of theirs (delivered false),
// else the one last written (delivered true). The player's pending match
// hash keeps the second as its "delivered" field (see
// ack_pending_match.lua) until the hash expires, pendingMatchTTL after the
// match was stored for them, or the player queues again. A match delivered
// from a copy an older lobbyd stored leaves no such record. It returns
// domain.ErrNotFound when there is neither.
func (s *Store) LastMatch(ctx context.Context, playerID string) (matchID string, delivered bool, err error) {
	f, err := s.rdb.HMGet(ctx, s.keys.pendingMatchKey(playerID), "matchId", "delivered").Result()
	if err != nil {
		return "", false, fmt.Errorf("read last match of %s: %w", playerID, err)
	}
	if id, _ := f[0].(string); id != "" {
		return id, false, nil
	}
	if id, _ := f[1].(string); id != "" {
		return id, true, nil
	}
	return "", false, domain.ErrNotFound
}

// AllocationBacklog counts the queue's matches waiting for a party: the
// allocation jobs handed to a worker and not yet acknowledged, plus those
// no worker has read yet (the group's lag, when an entry after the last
// one delivered exists; left out when Redis cannot tell, after a trim of
// entries never read).
func (s *Store) AllocationBacklog(ctx context.Context, queue string) (int64, error) {
	var n int64
	stream := s.keys.allocStreamKey(queue)
	err := s.withGroup(ctx, queue, func() error {
		groups, err := s.rdb.XInfoGroups(ctx, stream).Result()
		if err != nil && strings.Contains(err.Error(), "no such key") {
			return nil // no match formed yet
		}
		if err != nil {
			return err
		}
		for _, g := range groups {
			if g.Name != allocGroup {
				continue
			}
			n = g.Pending
			if g.Lag <= 0 {
				break
			}
			// Some servers (the embedded one) report the whole stream as
			// lag: count it only when an undelivered entry exists.
			next, err := s.rdb.XRangeN(ctx, stream, "("+g.LastDeliveredID, "+", 1).Result()
			if err != nil {
				return err
			}
			if len(next) > 0 {
				n += g.Lag
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count allocation backlog of %s: %w", queue, err)
	}
	return n, nil
}

// QueueConfig is a queue file stored for every node.
type QueueConfig struct {
	Version int64
	Sha     string // SHA-256 of Content, hex
	Content []byte
	// Retired lists the queues earlier configurations had and this one
	// drops, so that every node, also one started after the change,
	// expires what still waits in them.
	Retired []string
	By      string    // the node that stored it
	At      time.Time // when
}

// ContentSum is the Sha of a queue file's contents.
func ContentSum(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// StoreQueueConfig stores a queue file's contents and the retired queues
// for every node with the next version, unless the same contents are
// stored already. basedOn is the Sha of the stored configuration the
// caller computed retired from ("" for none); when another one was stored
// meanwhile it returns domain.ErrConflict, for the caller to compute again.
// It returns the version in force and whether it stored a new one.
func (s *Store) StoreQueueConfig(ctx context.Context, content []byte, by string, retired []string, basedOn string) (version int64, stored bool, err error) {
	if retired == nil {
		retired = []string{}
	}
	list, err := json.Marshal(retired)
	if err != nil {
		return 0, false, fmt.Errorf("encode retired queues: %w", err)
	}
	res, err := s.runScript(ctx, storeQueueConfigScript, []string{s.keys.queueConfigKey()},
		ContentSum(content), content, by, msOf(time.Now()), list, basedOn).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, false, fmt.Errorf("store queue configuration: %w", cmp.Or(err, errors.New("unexpected reply")))
	}
	if res[1] < 0 {
		return res[0], false, fmt.Errorf("store queue configuration: another was stored meanwhile: %w", domain.ErrConflict)
	}
	return res[0], res[1] == 1, nil
}

// QueueConfigSum returns the Sha of the stored queue configuration, ""
// when none is stored: one HGET, for nodes to poll.
func (s *Store) QueueConfigSum(ctx context.Context) (string, error) {
	v, err := s.rdb.HGet(ctx, s.keys.queueConfigKey(), "sha").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read queue configuration: %w", err)
	}
	return v, nil
}

// StoredQueueConfig returns the stored queue configuration, or
// domain.ErrNotFound when none is stored.
func (s *Store) StoredQueueConfig(ctx context.Context) (QueueConfig, error) {
	f, err := s.rdb.HGetAll(ctx, s.keys.queueConfigKey()).Result()
	if err != nil {
		return QueueConfig{}, fmt.Errorf("read queue configuration: %w", err)
	}
	if f["content"] == "" {
		return QueueConfig{}, domain.ErrNotFound
	}
	c := QueueConfig{Sha: f["sha"], Content: []byte(f["content"]), By: f["by"]}
	c.Version, _ = strconv.ParseInt(f["version"], 10, 64)
	ms, _ := strconv.ParseInt(f["at"], 10, 64)
	c.At = timeOfMs(ms)
	if r := f["retired"]; r != "" {
		if err := json.Unmarshal([]byte(r), &c.Retired); err != nil {
			return QueueConfig{}, fmt.Errorf("decode retired queues: %w", err)
		}
	}
	return c, nil
}
