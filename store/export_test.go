package store

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

// Test hooks into the key layout, for store_test.

// SearchingIndexes returns the ids in the queue's searching set and in its
// searching data hash, each sorted.
func SearchingIndexes(ctx context.Context, s *Store, queue string) (set, data []string, err error) {
	if set, err = s.rdb.ZRange(ctx, s.keys.searchingKey(queue), 0, -1).Result(); err != nil {
		return nil, nil, err
	}
	if data, err = s.rdb.HKeys(ctx, s.keys.searchingDataKey(queue)).Result(); err != nil {
		return nil, nil, err
	}
	slices.Sort(set)
	slices.Sort(data)
	return set, data, nil
}

// DropSearchingEntry deletes a ticket's searching data entry, as if an older
// lobbyd, which kept none, had queued it.
func DropSearchingEntry(ctx context.Context, s *Store, queue, ticketID string) error {
	return s.rdb.HDel(ctx, s.keys.searchingDataKey(queue), ticketID).Err()
}

// DropTicketRecord deletes a ticket's hash, as its TTL would.
func DropTicketRecord(ctx context.Context, s *Store, queue, ticketID string) error {
	return s.rdb.Del(ctx, s.keys.ticketKey(queue, ticketID)).Err()
}

// LeaveSearchingEntryBehind takes a ticket out of the searching set alone,
// as a lobbyd older than the searching data hash cancels it.
func LeaveSearchingEntryBehind(ctx context.Context, s *Store, queue, ticketID string) error {
	return s.rdb.ZRem(ctx, s.keys.searchingKey(queue), ticketID).Err()
}

// SearchingScores returns the scores of the queue's searching set, oldest
// first.
func (s *Store) SearchingScores(ctx context.Context, queue string) ([]float64, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.keys.searchingKey(queue), 0, -1).Result()
	out := make([]float64, len(zs))
	for i, z := range zs {
		out[i] = z.Score
	}
	return out, err
}

// SetSearchingEntry overwrites a ticket's searching data entry.
func SetSearchingEntry(ctx context.Context, s *Store, queue, ticketID, entry string) error {
	return s.rdb.HSet(ctx, s.keys.searchingDataKey(queue), ticketID, entry).Err()
}

// TicketTTL returns the time to live of a ticket's hash (-1: none, -2: no
// such key, as Redis's TTL).
func TicketTTL(ctx context.Context, s *Store, queue, ticketID string) (time.Duration, error) {
	return s.rdb.TTL(ctx, s.keys.ticketKey(queue, ticketID)).Result()
}

// TicketRecord returns a ticket's hash as stored (empty when there is none)
// and its time to live, as Redis's TTL.
func TicketRecord(ctx context.Context, s *Store, queue, ticketID string) (map[string]string, time.Duration, error) {
	f, err := s.rdb.HGetAll(ctx, s.keys.ticketKey(queue, ticketID)).Result()
	if err != nil {
		return nil, 0, err
	}
	ttl, err := s.rdb.TTL(ctx, s.keys.ticketKey(queue, ticketID)).Result()
	return f, ttl, err
}

// CreateTicketAsOlderVersion stores a ticket as lobbyd did before tickets
// had length caps (with whatever regions the client sent), with the same
// layout and 2-hour lifetime.
func CreateTicketAsOlderVersion(ctx context.Context, s *Store, t domain.Ticket) error {
	return s.createTicket(ctx, t)
}

// SetTicketClaim points a player's ticket claim at a ticket, as a claim
// whose release was lost does.
func SetTicketClaim(ctx context.Context, s *Store, playerID, queue, ticketID string) error {
	return s.rdb.Set(ctx, s.keys.playerTicketKey(playerID), claimValue(queue, ticketID), ticketTTL).Err()
}

// WritePendingMatchAsBefore stores a player's undelivered match as lobbyd
// did before rounds (matchId and payload only), and releases their claim on
// the ticket, as an older node's delivery does.
func WritePendingMatchAsBefore(ctx context.Context, s *Store, playerID, queue, ticketID, matchID string, payload []byte) error {
	return s.execScripted(ctx, func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, s.keys.pendingMatchKey(playerID), "matchId", matchID, "payload", payload)
		pipe.Expire(ctx, s.keys.pendingMatchKey(playerID), pendingMatchTTL)
		compareDeleteScript.EvalSha(ctx, pipe, []string{s.keys.playerTicketKey(playerID)}, claimValue(queue, ticketID))
	})
}

// PendingMatchExists reports whether the player's pending match hash
// exists at all (a copy, or only what is kept after one).
func PendingMatchExists(ctx context.Context, s *Store, playerID string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.keys.pendingMatchKey(playerID)).Result()
	return n == 1, err
}

// ScriptHashes returns the SHA1 of every registered Lua script, by name
// (its file name without ".lua").
func ScriptHashes() map[string]string {
	out := make(map[string]string, len(scripts))
	for name, sc := range scripts {
		out[name] = sc.Hash()
	}
	return out
}

// MutateLobbyAsPrevious changes a lobby as the previous version's nodes do,
// with its lobby_mutate.lua (kept in testdata), and returns the script's
// outcome.
func MutateLobbyAsPrevious(ctx context.Context, s *Store, lobbyID, op, actor string, args ...any) (string, error) {
	src, err := os.ReadFile("testdata/lobby_mutate_previous.lua")
	if err != nil {
		return "", err
	}
	res, err := redis.NewScript(string(src)).Run(ctx, s.rdb, []string{s.keys.lobbyKey(lobbyID)}, append([]any{op, actor}, args...)...).StringSlice()
	if err != nil {
		return "", err
	}
	return res[0], nil
}

// CommitMatchesAsPrevious commits matches as the previous version's
// leaders do, with its commit_matches.lua (kept in testdata): no "formed"
// field (teams, attributes, quality).
func CommitMatchesAsPrevious(ctx context.Context, s *Store, queue string, matches []domain.Match) ([]string, error) {
	src, err := os.ReadFile("testdata/commit_matches_previous.lua")
	if err != nil {
		return nil, err
	}
	keys := []string{s.keys.searchingKey(queue), s.keys.allocStreamKey(queue), s.keys.searchingDataKey(queue)}
	args := []any{msOf(time.Now()), int(matchTTL.Seconds()), allocStreamMaxLen, len(matches), queue}
	for _, m := range matches {
		regions, _ := json.Marshal(nonNil(m.Regions))
		players, _ := json.Marshal(m.Players)
		tickets, _ := json.Marshal(m.TicketIDs)
		keys = append(keys, s.keys.matchKey(queue, m.ID))
		args = append(args, m.ID, string(regions), string(players), string(tickets), len(m.TicketIDs))
		for _, t := range m.TicketIDs {
			keys = append(keys, s.keys.ticketKey(queue, t))
			args = append(args, t)
		}
	}
	return redis.NewScript(string(src)).Run(ctx, s.rdb, keys, args...).StringSlice()
}

// MatchRecord returns a match's hash as stored.
func MatchRecord(ctx context.Context, s *Store, queue, matchID string) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, s.keys.matchKey(queue, matchID)).Result()
}

// QueueSummaryTTL returns the time to live of the queue's summary.
func QueueSummaryTTL(ctx context.Context, s *Store, queue string) (time.Duration, error) {
	return s.rdb.PTTL(ctx, s.keys.queueSummaryKey(queue)).Result()
}

// RedisClient returns the client the store sends its commands through (a
// cluster client on a cluster), for tests that look at or change its keys
// directly.
func RedisClient(s *Store) redis.UniversalClient { return s.rdb }

// KeyPrefix returns the store's key prefix (Config.KeyPrefix), which every
// key name a test writes by hand starts with.
func KeyPrefix(s *Store) string { return s.keys.prefix }

// ChangeLobby applies rule r to the lobby as every lobby operation does
// (read, apply, compare-and-set, again on conflict) and returns the lobby
// after it.
func ChangeLobby(ctx context.Context, s *Store, lobbyID string, r domain.LobbyRule) (domain.Lobby, error) {
	return s.changeLobby(ctx, lobbyID, r)
}

// MaxLobbyConflicts is how many times a lobby change is tried before it
// gives up with ErrConflict.
const MaxLobbyConflicts = maxLobbyConflicts

// TicketStatuses reads the status of each ticket, "" for a record that is
// gone.
func TicketStatuses(ctx context.Context, s *Store, tickets []domain.Ticket) ([]domain.TicketStatus, error) {
	return s.ticketStatuses(ctx, tickets)
}
