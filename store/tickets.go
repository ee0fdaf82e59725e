package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

// ticketTTL bounds how long a ticket and a player's claim on it live; a
// ticket that outlives it was abandoned by a crashed node mid-creation.
const ticketTTL = 2 * time.Hour

// finishedTicketTTL is how long a cancelled or expired ticket's record
// lives, shrunk to its status (see cancel_ticket.lua): long enough for
// go-redis to re-send the script that finished it, short enough that a
// player joining and leaving in a loop leaves next to nothing behind.
const finishedTicketTTL = time.Minute

func claimValue(queue, ticketID string) string { return queue + ":" + ticketID }

func parseClaim(v string) (queue, ticketID string, ok bool) {
	return strings.Cut(v, ":")
}

// CreateTicket claims the ticket for each of its players and adds it, as
// searching, to its queue. It returns ErrConflict if a player already holds a
// live ticket (searching, or matched and not yet delivered), and ErrInLobby
// for a solo ticket (one player, no LobbyID) whose player holds a lobby
// claim, and the error of t.Validate for a ticket it would not store. A solo
// ticket takes two round trips.
func (s *Store) CreateTicket(ctx context.Context, t domain.Ticket) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return s.createTicket(ctx, t)
}

// createTicket is CreateTicket without the caps, as versions of lobbyd
// before them stored tickets.
func (s *Store) createTicket(ctx context.Context, t domain.Ticket) error {
	claim := claimValue(t.Queue, t.ID)
	solo := len(t.Players) == 1 && t.LobbyID == ""
	var claimed []string
	release := func() {
		for _, p := range claimed {
			// Best effort: a claim left behind expires, and a claim on a
			// ticket that never existed is replaced by the next join.
			err := compareDeleteScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.playerTicketKey(p)}, claim).Err()
			s.undoFailed(ctx, "roll back ticket claim", err, "player", p, "queue", t.Queue, "ticket", t.ID)
		}
	}
	for _, p := range t.Players {
		if err := s.claimTicket(ctx, p.ID, claim, solo); err != nil {
			release()
			return err
		}
		claimed = append(claimed, p.ID)
	}

	data, err := json.Marshal(ticketData{ticketFixed: ticketFixed{ID: t.ID, Queue: t.Queue, Players: t.Players, Skill: t.Skill,
		Regions: t.Regions, Latencies: t.Latencies, LobbyID: t.LobbyID}, Attributes: storedAttrs(t.Attributes)})
	if err != nil {
		release()
		return fmt.Errorf("encode ticket: %w", err)
	}
	key := s.keys.ticketKey(t.Queue, t.ID)
	// One transaction, shared with the tickets other sessions create
	// meanwhile in the same queue (same hash slot).
	err = s.batchTx.do(ctx, t.Queue, func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, key, "data", data, "status", string(domain.TicketSearching), "createdAt", msOf(t.CreatedAt))
		pipe.Expire(ctx, key, ticketTTL)
		pipe.ZAdd(ctx, s.keys.searchingKey(t.Queue), redis.Z{Score: float64(msOf(t.CreatedAt)), Member: t.ID})
		pipe.HSet(ctx, s.keys.searchingDataKey(t.Queue), t.ID, searchingEntry(msOf(t.CreatedAt), 0, data))
		pipe.RPush(ctx, s.keys.incomingKey(t.Queue), t.ID)
		pipe.LTrim(ctx, s.keys.incomingKey(t.Queue), -incomingMax, -1)
	})
	if err != nil {
		release()
		return fmt.Errorf("create ticket %s: %w", t.ID, err)
	}
	return nil
}

// claimTicket makes claim the player's ticket claim, unless the player holds
// a live ticket already (ErrConflict) or, with solo, a lobby claim
// (ErrInLobby). One round trip when the player holds nothing: a pipeline
// of SET NX, GET of the claim, GET of the lobby claim and EXISTS of an
// undelivered match (no script: the embedded Redis runs each script in a
// new interpreter). A player who got a match within the last ten minutes
// has a second: their copy of it is dropped as the claim is taken (see
// supersedePending).
func (s *Store) claimTicket(ctx context.Context, playerID, claim string, solo bool) error {
	key := s.keys.playerTicketKey(playerID)
	var set *redis.BoolCmd
	var held, lobby *redis.StringCmd
	var pending *redis.IntCmd
	err := s.batch.do(ctx, "", func(pipe redis.Pipeliner) {
		set = pipe.SetNX(ctx, key, claim, ticketTTL)
		held = pipe.Get(ctx, key)
		lobby = pipe.Get(ctx, s.keys.playerLobbyKey(playerID))
		pending = pipe.Exists(ctx, s.keys.pendingMatchKey(playerID))
	})
	if err != nil {
		return fmt.Errorf("claim ticket for %s: %w", playerID, err)
	}
	old := held.Val()
	ours := set.Val() || old == claim // == claim: a re-sent pipeline set it
	if solo && lobby.Val() != "" {
		if ours {
			err := compareDeleteScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, claim).Err()
			s.undoFailed(ctx, "roll back solo ticket claim of a lobby member", err, "player", playerID, "claim", claim)
		}
		return domain.ErrInLobby
	}
	if ours {
		return s.supersedePending(ctx, playerID, claim, pending.Val() > 0)
	}
	if old == "" {
		return s.claimTicket(ctx, playerID, claim, solo) // released meanwhile
	}
	if live, err := s.claimIsLive(ctx, old); err != nil {
		return err
	} else if live {
		return domain.ErrConflict
	}
	replaced, err := replaceClaimScript.Run(ctx, s.rdb, []string{key}, old, claim, int(ticketTTL.Seconds())).Int()
	if err != nil {
		return fmt.Errorf("replace ticket claim of %s: %w", playerID, err)
	}
	if replaced == 0 {
		return domain.ErrConflict // someone else claimed it between our reads
	}
	return s.supersedePending(ctx, playerID, claim, pending.Val() > 0)
}

// supersedePending drops the player's copy of an earlier match now that
// claim, just taken, starts a new round (supersede_pending_match.lua), if
// they have a pending match hash (exists). When that fails the claim is
// released and the error returned: a player must never hold a new ticket
// while an earlier round's match may still be shown to them.
func (s *Store) supersedePending(ctx context.Context, playerID, claim string, exists bool) error {
	if !exists {
		return nil
	}
	err := supersedePendingMatchScript.Run(ctx, s.rdb, []string{s.keys.pendingMatchKey(playerID), s.keys.playerTicketKey(playerID)}, claim).Err()
	if err != nil {
		rerr := compareDeleteScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.playerTicketKey(playerID)}, claim).Err()
		s.undoFailed(ctx, "roll back ticket claim", rerr, "player", playerID, "claim", claim)
		return fmt.Errorf("claim ticket for %s: drop earlier match: %w", playerID, err)
	}
	return nil
}

// claimIsLive reports whether a claim points at a ticket that still binds
// its player: searching, or matched.
func (s *Store) claimIsLive(ctx context.Context, claim string) (bool, error) {
	queue, id, ok := parseClaim(claim)
	if !ok {
		return false, nil
	}
	status, err := s.rdb.HGet(ctx, s.keys.ticketKey(queue, id), "status").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read ticket %s: %w", id, err)
	}
	return status == string(domain.TicketSearching) || status == string(domain.TicketMatched), nil
}

// PlayerTicket returns the ticket the player holds a claim on, in whatever
// state it is, or ErrNotFound.
func (s *Store) PlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error) {
	claim, err := s.rdb.Get(ctx, s.keys.playerTicketKey(playerID)).Result()
	if errors.Is(err, redis.Nil) {
		return domain.Ticket{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Ticket{}, fmt.Errorf("read ticket claim of %s: %w", playerID, err)
	}
	queue, id, ok := parseClaim(claim)
	if !ok {
		return domain.Ticket{}, domain.ErrNotFound
	}
	return s.Ticket(ctx, queue, id)
}

// Ticket reads one ticket, or returns ErrNotFound.
func (s *Store) Ticket(ctx context.Context, queue, ticketID string) (domain.Ticket, error) {
	fields, err := s.rdb.HMGet(ctx, s.keys.ticketKey(queue, ticketID), ticketFields...).Result()
	if err != nil {
		return domain.Ticket{}, fmt.Errorf("read ticket %s: %w", ticketID, err)
	}
	return decodeTicket(fields)
}

// ticketData is the part of a ticket that never changes, stored as one
// JSON field so that reading a ticket is one small reply.
type ticketData struct {
	ticketFixed
	// Attributes are the ticket's matchmaking attributes; a lobbyd before
	// them neither writes nor reads this field (it ignores fields it does
	// not know), so it carries over a requeue by either version.
	Attributes storedAttrs `json:"attributes,omitempty"`
}

// ticketFixed is ticketData but its attributes (the fields of the
// version before them).
type ticketFixed struct {
	ID        string          `json:"id"`
	Queue     string          `json:"queue"`
	Players   []domain.Player `json:"players"`
	Skill     float64         `json:"skill,omitempty"`
	Regions   []string        `json:"regions,omitempty"`
	Latencies map[string]int  `json:"latencies,omitempty"`
	LobbyID   string          `json:"lobbyId,omitempty"`
}

// searchingData is ticketData as the leader reads it from the searching
// data: its attributes left as written, for decodeSearchingEntry to decode
// once per distinct value (see attrCache).
type searchingData struct {
	ticketFixed
	Attributes gojson.RawMessage `json:"attributes,omitempty"`
}

// attrCache holds the attributes decoded by one Tickets call, by their
// JSON: tickets with the same attributes share one map, so reading
// thousands of them builds a handful of maps (each is a few hundred
// bytes). Readers of the pool never modify a ticket's attributes.
type attrCache map[string]map[string]domain.AttrValue

// storedAttrs is a ticket's attributes as its data holds them, in the JSON
// form of domain.AttrValue. The leader decodes every searching ticket's
// attributes, so they are read by a small scanner of the compact JSON that
// encoding/json writes, four times faster than through a map of raw
// values; anything else it does not expect (spaces, escapes, a mixed
// value) is read the general way.
type storedAttrs map[string]domain.AttrValue

// UnmarshalJSON reads what domain.AttrValue's MarshalJSON writes, by name.
func (a *storedAttrs) UnmarshalJSON(b []byte) error {
	if out, ok := scanAttrs(b); ok {
		*a = out
		return nil
	}
	var raw map[string]gojson.RawMessage
	if err := gojson.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*a = nil
		return nil
	}
	out := make(storedAttrs, len(raw))
	for name, v := range raw {
		var av domain.AttrValue
		if err := av.UnmarshalJSON(v); err != nil {
			return fmt.Errorf("attribute %q: %w", name, err)
		}
		out[name] = av
	}
	*a = out
	return nil
}

// scanAttrs reads a compact JSON object of attribute values whose strings
// need no unescaping; ok is false for anything else.
func scanAttrs(b []byte) (out storedAttrs, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	i := 1
	plain := func() (string, bool) { // a string without escapes, at b[i]
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				return "", false
			case '"':
				s := string(b[i+1 : j])
				i = j + 1
				return s, true
			}
		}
		return "", false
	}
	out = make(storedAttrs, 4)
	for i < len(b)-1 {
		name, ok := plain()
		if !ok || i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i++
		if i >= len(b) {
			return nil, false
		}
		var v domain.AttrValue
		switch c := b[i]; {
		case c == '"':
			s, ok := plain()
			if !ok {
				return nil, false
			}
			v = domain.AttrValue{Type: domain.AttrString, Str: s}
		case c == '[':
			v = domain.AttrValue{Type: domain.AttrStrings, Strs: []string{}}
			i++
			for i < len(b) && b[i] != ']' {
				s, ok := plain()
				if !ok {
					return nil, false
				}
				v.Strs = append(v.Strs, s)
				if i+1 < len(b) && b[i] == ',' && b[i+1] == '"' {
					i++
				}
			}
			i++ // ']'
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && b[j] != ',' && b[j] != '}' {
				j++
			}
			n, err := strconv.ParseFloat(string(b[i:j]), 64)
			if err != nil {
				return nil, false
			}
			v, i = domain.AttrValue{Type: domain.AttrNumber, Num: n}, j
		default:
			return nil, false
		}
		out[name] = v
		if i < len(b)-1 {
			if b[i] != ',' || i+1 == len(b)-1 {
				return nil, false // a trailing comma, or anything but one
			}
			i++
		}
	}
	return out, i == len(b)-1
}

// ticketFields are the fields of a ticket hash, in the order decodeTicket
// expects them from HMGET.
var ticketFields = []string{"data", "status", "createdAt", "holdUntil", "matchId"}

// decodeTicket decodes the reply of HMGET ticketFields.
func decodeTicket(f []any) (domain.Ticket, error) {
	str := func(i int) string {
		s, _ := f[i].(string)
		return s
	}
	if len(f) != len(ticketFields) || str(0) == "" {
		return domain.Ticket{}, domain.ErrNotFound
	}
	var d ticketData
	if err := json.Unmarshal([]byte(str(0)), &d); err != nil {
		return domain.Ticket{}, fmt.Errorf("decode ticket: %w", err)
	}
	created, _ := strconv.ParseInt(str(2), 10, 64)
	hold, _ := strconv.ParseInt(str(3), 10, 64)
	t := d.ticket(domain.TicketStatus(str(1)), created, hold)
	t.MatchID = str(4)
	return t, nil
}

// ticket is the ticket d describes, with its status, creation time and hold
// (in ms; 0 for none).
func (d ticketData) ticket(status domain.TicketStatus, createdMs, holdMs int64) domain.Ticket {
	t := d.ticketFixed.ticket(status, createdMs, holdMs)
	t.Attributes = d.Attributes
	return t
}

// ticket is the ticket d describes, without attributes.
func (d ticketFixed) ticket(status domain.TicketStatus, createdMs, holdMs int64) domain.Ticket {
	t := domain.Ticket{ID: d.ID, Queue: d.Queue, Players: d.Players, Skill: d.Skill, Regions: d.Regions,
		Latencies: d.Latencies, LobbyID: d.LobbyID, Status: status, CreatedAt: timeOfMs(createdMs)}
	if holdMs > 0 {
		t.HoldUntil = timeOfMs(holdMs)
	}
	return t
}

// CancelPlayerTicket takes the player's searching ticket out of its queue,
// or marks their matched ticket left while its match is still allocating
// (so a failed allocation does not requeue it), and releases the claim. It
// returns the cancelled ticket, ErrNotFound if the player holds none, or
// ErrConflict once the ticket's match is ready or failed.
func (s *Store) CancelPlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error) {
	for attempt := 0; ; attempt++ {
		t, err := s.PlayerTicket(ctx, playerID)
		if err != nil {
			return domain.Ticket{}, err
		}
		err = s.endTicket(ctx, t, domain.TicketCancelled)
		if errors.Is(err, domain.ErrConflict) && t.MatchID == "" && attempt == 0 {
			continue // matched between our read and the script: read it again
		}
		if err != nil {
			return domain.Ticket{}, err
		}
		t.Status = domain.TicketCancelled
		return t, nil
	}
}

// WatchedTickets reads, for each watched ticket's player (its first
// player), the ticket that player's claim names and its status, and the
// watched ticket's own status; a status is "" for a record that is gone.
// Two pipelined round trips.
func (s *Store) WatchedTickets(ctx context.Context, watched []domain.Ticket) ([]domain.TicketCheck, error) {
	claims := make([]*redis.StringCmd, len(watched))
	own := make([]*redis.StringCmd, len(watched))
	err := s.batch.do(ctx, "", func(pipe redis.Pipeliner) {
		for i, t := range watched {
			claims[i] = pipe.Get(ctx, s.keys.playerTicketKey(t.Players[0].ID))
			own[i] = pipe.HGet(ctx, s.keys.ticketKey(t.Queue, t.ID), "status")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read %d watched tickets: %w", len(watched), err)
	}
	// After do, a command's error can only be redis.Nil: "" below.
	out := make([]domain.TicketCheck, len(watched))
	var claimed []int
	var others []domain.Ticket
	for i, t := range watched {
		out[i].Status = domain.TicketStatus(own[i].Val())
		q, id, ok := parseClaim(claims[i].Val())
		switch {
		case !ok:
		case id == t.ID && q == t.Queue:
			out[i].Claimed, out[i].ClaimedStatus = domain.Ticket{Queue: q, ID: id}, out[i].Status
		default:
			out[i].Claimed = domain.Ticket{Queue: q, ID: id}
			claimed, others = append(claimed, i), append(others, out[i].Claimed)
		}
	}
	if len(others) == 0 {
		return out, nil
	}
	statuses, err := s.ticketStatuses(ctx, others)
	if err != nil {
		return nil, err
	}
	for j, i := range claimed {
		out[i].ClaimedStatus = statuses[j]
	}
	return out, nil
}

// ticketStatuses reads the status of each ticket (by its Queue and ID) in
// one pipeline: "" for a ticket whose record is gone.
func (s *Store) ticketStatuses(ctx context.Context, tickets []domain.Ticket) ([]domain.TicketStatus, error) {
	cmds := make([]*redis.StringCmd, len(tickets))
	err := s.batch.do(ctx, "", func(pipe redis.Pipeliner) {
		for i, t := range tickets {
			cmds[i] = pipe.HGet(ctx, s.keys.ticketKey(t.Queue, t.ID), "status")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read the status of %d tickets: %w", len(tickets), err)
	}
	out := make([]domain.TicketStatus, len(tickets))
	for i, cmd := range cmds {
		out[i] = domain.TicketStatus(cmd.Val()) // "" for redis.Nil, the only error left after do
	}
	return out, nil
}

// MarkTicketLost records a ticket whose record Redis lost as cancelled
// (see mark_ticket_lost.lua): true when this call marked it, and its
// players are then to be told; false when the ticket has a record (another
// node marked it first, or it was never lost).
func (s *Store) MarkTicketLost(ctx context.Context, queue, ticketID string) (bool, error) {
	n, err := markTicketLostScript.Run(ctx, s.rdb,
		[]string{s.keys.ticketKey(queue, ticketID), s.keys.searchingKey(queue), s.keys.searchingDataKey(queue)},
		ticketID, int(finishedTicketTTL.Seconds())).Int()
	if err != nil {
		return false, fmt.Errorf("mark ticket %s lost: %w", ticketID, err)
	}
	return n == 1, nil
}

// endTicket moves a ticket to a final status, as cancel_ticket.lua allows,
// and releases its players' claims. The ticket's record keeps only that
// status, for finishedTicketTTL.
func (s *Store) endTicket(ctx context.Context, t domain.Ticket, status domain.TicketStatus) error {
	match := s.keys.matchKey(t.Queue, t.MatchID) // with no match: an unused key of the same slot
	res, err := cancelTicketScript.Run(ctx, s.rdb,
		[]string{s.keys.ticketKey(t.Queue, t.ID), s.keys.searchingKey(t.Queue), match, s.keys.searchingDataKey(t.Queue)},
		t.ID, string(status), int(finishedTicketTTL.Seconds())).Text()
	if err != nil {
		return fmt.Errorf("end ticket %s: %w", t.ID, err)
	}
	switch res {
	case "ok":
	case "missing":
		for _, p := range t.Players {
			s.releaseTicketClaim(ctx, p.ID, t.Queue, t.ID)
		}
		return domain.ErrNotFound
	default:
		// Matched (and no longer cancellable), or ended another way (a
		// ticket cancelled by its player does not also expire).
		return domain.ErrConflict
	}
	for _, p := range t.Players {
		s.releaseTicketClaim(ctx, p.ID, t.Queue, t.ID)
	}
	return nil
}

// ExpireTicket ends a ticket that waited too long, if it is still
// searching, and releases its players' claims. ErrConflict if it moved on.
func (s *Store) ExpireTicket(ctx context.Context, t domain.Ticket) error {
	if t.Status != domain.TicketSearching {
		return domain.ErrConflict
	}
	// cancel_ticket.lua leaves a matched ticket alone unless its match is
	// allocating; pass no match, so only a searching ticket expires.
	t.MatchID = ""
	return s.endTicket(ctx, t, domain.TicketExpired)
}

// SetEstimatedWait records the queue's recent wait, for every node.
func (s *Store) SetEstimatedWait(ctx context.Context, queue string, wait time.Duration) error {
	if err := s.rdb.HSet(ctx, s.keys.queueStatsKey(queue), "waitMs", wait.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("store wait of %s: %w", queue, err)
	}
	return nil
}

// EstimatedWait returns the queue's recent wait (0 before any match).
func (s *Store) EstimatedWait(ctx context.Context, queue string) (time.Duration, error) {
	ms, err := s.rdb.HGet(ctx, s.keys.queueStatsKey(queue), "waitMs").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read wait of %s: %w", queue, err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// releaseTicketClaim frees the player to queue again, if their claim still
// points at the given ticket. It is best effort: a claim left behind points
// at a finished ticket and is replaced by the next join.
func (s *Store) releaseTicketClaim(ctx context.Context, playerID, queue, ticketID string) {
	err := compareDeleteScript.Run(ctx, s.rdb, []string{s.keys.playerTicketKey(playerID)}, claimValue(queue, ticketID)).Err()
	s.undoFailed(ctx, "release ticket claim", err, "player", playerID, "queue", queue, "ticket", ticketID)
}

// SearchingTickets returns up to limit of the queue's searching tickets,
// oldest first, in two round trips.
func (s *Store) SearchingTickets(ctx context.Context, queue string, limit int) ([]domain.Ticket, error) {
	ids, err := s.rdb.ZRange(ctx, s.keys.searchingKey(queue), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list searching tickets of %s: %w", queue, err)
	}
	return s.Tickets(ctx, queue, ids)
}

// QueueDepth returns the number of searching tickets in the queue.
func (s *Store) QueueDepth(ctx context.Context, queue string) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.keys.searchingKey(queue)).Result()
	if err != nil {
		return 0, fmt.Errorf("count queue %s: %w", queue, err)
	}
	return n, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TakeIncoming takes up to max ids of tickets that became searching (new or
// requeued) since the last call, oldest first, and returns those tickets
// that are still searching. Only the queue's leader, holder, may take them:
// a node whose lease lapsed in the middle of a pass gets ErrNotLeader and
// takes nothing, so it cannot hide arrivals from the new leader. (The lease
// is WATCHed around the MULTI that takes them; a transaction is never
// re-sent after a lost reply, so no ids are taken twice.)
func (s *Store) TakeIncoming(ctx context.Context, queue, holder string, max int) ([]domain.Ticket, error) {
	var ids *redis.StringSliceCmd
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		lease, err := tx.Get(ctx, s.keys.leaseKey(queue)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if lease != holder {
			return domain.ErrNotLeader
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			ids = pipe.LRange(ctx, s.keys.incomingKey(queue), 0, int64(max)-1)
			pipe.LTrim(ctx, s.keys.incomingKey(queue), int64(max), -1)
			return nil
		})
		return err
	}, s.keys.leaseKey(queue))
	switch {
	case errors.Is(err, domain.ErrNotLeader):
		return nil, err
	case errors.Is(err, redis.TxFailedErr):
		return nil, domain.ErrNotLeader // the lease changed hands meanwhile
	case err != nil:
		return nil, fmt.Errorf("take incoming tickets of %s: %w", queue, err)
	}
	return s.Tickets(ctx, queue, ids.Val())
}

// SnapshotSearching lists the ids of every searching ticket of the queue,
// oldest first, for the leader to build or check its view. With
// takeIncoming (a leader building its view from nothing) it also empties
// the queue's incoming list in the same transaction: every id the list held
// is in the snapshot, and every later arrival is in the list, so nothing is
// read twice or missed. A leader checking a view it keeps leaves the list
// alone: an entry there may be a ticket it holds that was requeued with a
// new hold, to be read again. When the searching data holds more entries
// than there are searching tickets, the extra entries are dropped.
func (s *Store) SnapshotSearching(ctx context.Context, queue string, takeIncoming bool) ([]string, error) {
	pipe := s.rdb.TxPipeline()
	ids := pipe.ZRange(ctx, s.keys.searchingKey(queue), 0, -1)
	entries := pipe.HLen(ctx, s.keys.searchingDataKey(queue))
	if takeIncoming {
		pipe.Del(ctx, s.keys.incomingKey(queue))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list searching tickets of %s: %w", queue, err)
	}
	if entries.Val() > int64(len(ids.Val())) {
		// Best effort: extra entries cost memory, not correctness, and the
		// next snapshot tries again.
		_ = s.pruneSearchingData(ctx, queue)
	}
	return ids.Val(), nil
}

// pruneSearchingData drops the queue's searching data entries whose ticket
// is not searching (see prune_searching_data.lua), reading the hash with
// HSCAN so that Redis is never blocked for long.
func (s *Store) pruneSearchingData(ctx context.Context, queue string) error {
	keys := []string{s.keys.searchingKey(queue), s.keys.searchingDataKey(queue)}
	var cursor uint64
	for {
		// HSCAN returns fields and values (NOVALUES needs Redis 7.4).
		kv, next, err := s.rdb.HScan(ctx, s.keys.searchingDataKey(queue), cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan searching data of %s: %w", queue, err)
		}
		if len(kv) > 0 {
			args := make([]any, 0, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				args = append(args, kv[i])
			}
			if err := pruneSearchingDataScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
				return fmt.Errorf("prune searching data of %s: %w", queue, err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// searchingEntry encodes a searching ticket's entry in the queue's
// searching data hash: "<createdAt ms>:<holdUntil ms, 0 for none>:<data>",
// data being the ticket hash's "data" field. fail_match.lua builds the same.
func searchingEntry(createdAt, holdUntil int64, data []byte) string {
	b := make([]byte, 0, len(data)+32)
	b = strconv.AppendInt(b, createdAt, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, holdUntil, 10)
	b = append(b, ':')
	return string(append(b, data...))
}

// decodeSearchingEntry decodes a searchingEntry into a searching ticket,
// taking its attributes from cache when it holds them (and adding them
// when not; a nil cache decodes them for this ticket alone).
func decodeSearchingEntry(v string, cache attrCache) (domain.Ticket, error) {
	created, rest, ok1 := strings.Cut(v, ":")
	hold, data, ok2 := strings.Cut(rest, ":")
	createdMs, err1 := strconv.ParseInt(created, 10, 64)
	holdMs, err2 := strconv.ParseInt(hold, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return domain.Ticket{}, fmt.Errorf("decode searching ticket: malformed entry %.40q", v)
	}
	var d searchingData
	if err := gojson.Unmarshal([]byte(data), &d); err != nil {
		return domain.Ticket{}, fmt.Errorf("decode searching ticket: %w", err)
	}
	t := d.ticket(domain.TicketSearching, createdMs, holdMs)
	if len(d.Attributes) > 0 && string(d.Attributes) != "null" {
		attrs, ok := cache[string(d.Attributes)]
		if !ok {
			var decoded storedAttrs
			if err := decoded.UnmarshalJSON(d.Attributes); err != nil {
				return domain.Ticket{}, fmt.Errorf("decode searching ticket: %w", err)
			}
			if attrs = decoded; cache != nil {
				cache[string(d.Attributes)] = attrs
			}
		}
		t.Attributes = attrs
	}
	return t, nil
}

// Tickets reads the given tickets of a queue and returns those still
// searching, in the order given: one HMGET of the queue's searching data for
// them all. Tickets with the same attributes share one Attributes map,
// which callers must not modify. Ids it lacks are read from their ticket hashes (a ticket queued
// by a version of lobbyd without that hash; otherwise one that stopped
// searching meanwhile), and ids whose record expired are dropped from the
// searching set.
func (s *Store) Tickets(ctx context.Context, queue string, ids []string) ([]domain.Ticket, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.searchingDataKey(queue), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read tickets of %s: %w", queue, err)
	}
	out := make([]domain.Ticket, 0, len(ids))
	var missing []string
	cache := attrCache{}
	for i, v := range vals {
		entry, ok := v.(string)
		if !ok {
			missing = append(missing, ids[i])
			continue
		}
		t, err := decodeSearchingEntry(entry, cache)
		if err != nil {
			// Unreadable: read the ticket's own hash, which is the record,
			// rather than stop the queue on one entry.
			missing = append(missing, ids[i])
			continue
		}
		out = append(out, t)
	}
	if len(missing) == 0 {
		return out, nil
	}
	old, err := s.tickets(ctx, queue, missing)
	if err != nil {
		return nil, err
	}
	if len(old) == 0 {
		return out, nil
	}
	out = append(out, old...)
	order := make(map[string]int, len(ids))
	for i, id := range ids {
		order[id] = i
	}
	slices.SortFunc(out, func(a, b domain.Ticket) int { return cmp.Compare(order[a.ID], order[b.ID]) })
	return out, nil
}

// tickets reads the given tickets from their hashes, one HMGET each in one
// pipeline, and returns those still searching, in the order given.
func (s *Store) tickets(ctx context.Context, queue string, ids []string) ([]domain.Ticket, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.keys.ticketKey(queue, id), ticketFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read tickets of %s: %w", queue, err)
	}
	out := make([]domain.Ticket, 0, len(ids))
	var orphans []string
	for i, cmd := range cmds {
		t, err := decodeTicket(cmd.Val())
		if errors.Is(err, domain.ErrNotFound) {
			orphans = append(orphans, ids[i]) // its record expired: drop it from the queue
			continue
		}
		if err != nil {
			return nil, err
		}
		if t.Status == domain.TicketSearching {
			out = append(out, t)
		}
	}
	if len(orphans) > 0 {
		pipe := s.rdb.TxPipeline()
		members := make([]any, len(orphans))
		for i, id := range orphans {
			members[i] = id
		}
		pipe.ZRem(ctx, s.keys.searchingKey(queue), members...)
		pipe.HDel(ctx, s.keys.searchingDataKey(queue), orphans...)
		_, _ = pipe.Exec(ctx) // best effort: the next reconciliation tries again
	}
	return out, nil
}
