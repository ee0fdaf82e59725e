package domain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TicketStatus is where a ticket is in its life, as the protocol names it.
type TicketStatus string

// Ticket statuses.
const (
	TicketSearching TicketStatus = "searching"
	TicketMatched   TicketStatus = "matched"
	TicketCancelled TicketStatus = "cancelled"
	TicketExpired   TicketStatus = "expired"
)

// Player is a member of a ticket or match.
type Player struct {
	ID   string `json:"playerId"`
	Name string `json:"name"`
	// PlayFabEntity is the player's title_player_account entity id, if their
	// token carried one; it restricts the party invitation to the match.
	PlayFabEntity string `json:"pfEntity,omitempty"`
	// TicketID is the ticket that brought the player into a match, and
	// LobbyID the lobby that ticket was for, if any.
	TicketID string `json:"ticketId,omitempty"`
	LobbyID  string `json:"lobbyId,omitempty"`
}

// Ticket is a request by one player, or one lobby, to be matched.
type Ticket struct {
	ID        string       `json:"ticketId"`
	Queue     string       `json:"queue"`
	Players   []Player     `json:"players"`
	Status    TicketStatus `json:"status"`
	CreatedAt time.Time    `json:"createdAt"`
	Skill     float64      `json:"skill"`
	Regions   []string     `json:"regions,omitempty"`
	// Latencies maps regions to the player's measured round trip (ms).
	Latencies map[string]int `json:"latencies,omitempty"`
	MatchID   string         `json:"matchId,omitempty"`
	// LobbyID is set when the ticket queues a whole lobby.
	LobbyID string `json:"lobbyId,omitempty"`
	// Attributes are the ticket's matchmaking attributes, by name, already
	// checked against its queue's rules (client values and token claims
	// merged; a lobby's members merged as the rules say). Tickets written
	// by an earlier version have none.
	Attributes map[string]AttrValue `json:"attributes,omitempty"`
	// HoldUntil, when set, keeps a requeued ticket out of formation until
	// then (its last match failed to allocate).
	HoldUntil time.Time `json:"-"`
	// EstimatedWait is the queue's recent wait, given at queue.join; not
	// stored.
	EstimatedWait time.Duration `json:"-"`
	// EndReason says why a ticket ended that its players did not end
	// ("queue_removed"), for the event that tells them; it is not stored.
	EndReason string `json:"-"`
}

// Caps on what a ticket stores, in bytes (of UTF-8), not characters, so
// that one record stays small whatever a client or a token sends. Ids are
// capped by ValidName (ticket, lobby, queue: 64 bytes) and ValidPlayerID
// (128 bytes).
const (
	// MaxPlayerNameBytes caps a player's display name.
	MaxPlayerNameBytes = 128
	// MaxPlayFabEntityBytes caps a player's PlayFab entity id (PlayFab's
	// are 16 hexadecimal digits).
	MaxPlayFabEntityBytes = 64
	// MaxTicketRegions caps the entries of Regions, and of Latencies.
	MaxTicketRegions = 32
	// MaxRegionBytes caps a region name, as queue files do.
	MaxRegionBytes = 64
	// MaxAttrNumber bounds a number attribute's magnitude, from a client
	// or a token: sums, means and distances of such numbers stay finite.
	MaxAttrNumber = 1e15
)

// Validate checks what the ticket would store against the caps: ErrTooLarge
// for a string or list over its cap, ErrInvalid for an id that cannot be
// part of a key. Errors name the field, never its value.
func (t Ticket) Validate() error {
	switch {
	case !ValidName(t.ID):
		return fmt.Errorf("ticket id: %w", ErrInvalid)
	case !ValidQueueKey(t.Queue):
		return fmt.Errorf("queue name: %w", ErrInvalid)
	case t.LobbyID != "" && !ValidName(t.LobbyID):
		return fmt.Errorf("lobby id: %w", ErrInvalid)
	case len(t.Regions) > MaxTicketRegions:
		return fmt.Errorf("more than %d regions: %w", MaxTicketRegions, ErrTooLarge)
	case len(t.Latencies) > MaxTicketRegions:
		return fmt.Errorf("latencies of more than %d regions: %w", MaxTicketRegions, ErrTooLarge)
	}
	for _, p := range t.Players {
		switch {
		case !ValidPlayerID(p.ID):
			return fmt.Errorf("player id: %w", ErrInvalid)
		case len(p.Name) > MaxPlayerNameBytes:
			return fmt.Errorf("player name longer than %d bytes: %w", MaxPlayerNameBytes, ErrTooLarge)
		case len(p.PlayFabEntity) > MaxPlayFabEntityBytes:
			return fmt.Errorf("pfEntity longer than %d bytes: %w", MaxPlayFabEntityBytes, ErrTooLarge)
		case p.TicketID != "" && !ValidName(p.TicketID), p.LobbyID != "" && !ValidName(p.LobbyID):
			return fmt.Errorf("player's ticket or lobby id: %w", ErrInvalid)
		}
	}
	for _, r := range t.Regions {
		if len(r) > MaxRegionBytes {
			return fmt.Errorf("region name longer than %d bytes: %w", MaxRegionBytes, ErrTooLarge)
		}
	}
	for r := range t.Latencies {
		if len(r) > MaxRegionBytes {
			return fmt.Errorf("region name longer than %d bytes: %w", MaxRegionBytes, ErrTooLarge)
		}
	}
	return nil
}

// PlayerIDs lists the ids of the ticket's players.
func (t Ticket) PlayerIDs() []string { return playerIDs(t.Players) }

// Size is the number of players the ticket brings to a match.
func (t Ticket) Size() int { return len(t.Players) }

func playerIDs(players []Player) []string {
	ids := make([]string, len(players))
	for i, p := range players {
		ids[i] = p.ID
	}
	return ids
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ValidName reports whether s may be used as a queue name or an id inside a
// key: 1 to 64 letters, digits, '_', '.' or '-'.
func ValidName(s string) bool { return validName.MatchString(s) }

// ValidPlayerID reports whether id can name a player: 1 to 128 printable
// characters without spaces or braces (braces would break a key's hash tag),
// in valid UTF-8 (JSON, which carries ids everywhere, would change it).
func ValidPlayerID(id string) bool {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "{}") || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// A queue split into shards (a queue's shards setting) keeps shard 0 under
// the queue's own name, so a queue's keys and its tickets written before it
// was split stay where they were, and shard i > 0 under "<queue>#<i>": '#'
// is not allowed in queue names, so a shard name never collides with one.

// ShardName is the name of the queue's shard i in keys, tickets and
// matches.
func ShardName(queue string, i int) string {
	if i == 0 {
		return queue
	}
	return queue + "#" + strconv.Itoa(i)
}

// BaseQueue is the queue a shard name belongs to (the name itself for an
// unsharded queue or shard 0): what clients see.
func BaseQueue(name string) string {
	base, _, _ := strings.Cut(name, "#")
	return base
}

// ValidQueueKey reports whether name is a queue name or the name of one of
// its shards.
func ValidQueueKey(name string) bool {
	base, shard, sharded := strings.Cut(name, "#")
	if !sharded {
		return ValidName(name)
	}
	n, err := strconv.Atoi(shard)
	return ValidName(base) && err == nil && n > 0 && strconv.Itoa(n) == shard
}

// TicketCheck is what Redis holds of a ticket a node watches for its
// player: Status is the watched ticket's, Claimed the ticket the player's
// claim names (zero for no claim) and ClaimedStatus its status; a status
// is "" for a record that is gone.
type TicketCheck struct {
	Status        TicketStatus
	Claimed       Ticket
	ClaimedStatus TicketStatus
}
