package domain

import (
	"crypto/rand"
	"strings"
)

// LobbyStatus is where a lobby stands, as the protocol names it.
type LobbyStatus string

// Lobby statuses.
const (
	LobbyOpen    LobbyStatus = "open"
	LobbyQueued  LobbyStatus = "queued"
	LobbyMatched LobbyStatus = "matched"
)

// Lobby is a group of players who queue together. Its changes are the
// rules of rules.go.
type Lobby struct {
	ID         string            `json:"id"`
	Code       string            `json:"code"`
	Queue      string            `json:"queue"`
	Visibility string            `json:"visibility"`
	OwnerID    string            `json:"ownerId"`
	MaxMembers int               `json:"maxMembers"`
	Props      map[string]string `json:"props"`
	Status     LobbyStatus       `json:"status"`
	TicketID   string            `json:"ticketId"`
	CreatedAt  int64             `json:"createdAt"` // ms
	Members    []LobbyMember     `json:"members"`
	// Version increases with every change, so snapshots can be ordered.
	Version int64 `json:"version"`
}

// LobbyMember is a player in a lobby, in joining order.
type LobbyMember struct {
	PlayerID      string `json:"playerId"`
	Name          string `json:"name"`
	PlayFabEntity string `json:"pfEntity,omitempty"`
	Ready         bool   `json:"ready"`
	JoinedAt      int64  `json:"joinedAt"` // ms
	// Skill is the member's rating, if they gave one; a lobby's ticket
	// skill is the mean of its members'.
	Skill *float64 `json:"skill,omitempty"`
	// TokenSkill and TokenAttrs are the member's token claims skill and
	// attrs, when the token carried them, kept for the lobby's tickets
	// (queues whose skill or attributes come from the token).
	TokenSkill *float64             `json:"tokenSkill,omitempty"`
	TokenAttrs map[string]AttrValue `json:"tokenAttrs,omitempty"`
}

// MemberIDs lists the members' player ids in joining order.
func (l Lobby) MemberIDs() []string {
	ids := make([]string, len(l.Members))
	for i, m := range l.Members {
		ids[i] = m.PlayerID
	}
	return ids
}

// Member returns the member with the given id.
func (l Lobby) Member(playerID string) (LobbyMember, bool) {
	if i := l.memberIndex(playerID); i >= 0 {
		return l.Members[i], true
	}
	return LobbyMember{}, false
}

// codeAlphabet has no 0/O and 1/I, so codes survive being read aloud.
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// CodeLength is the length of lobby join codes: 32^6, about a billion.
const CodeLength = 6

// NewCode returns a random join code. Whoever stores it makes it unique.
func NewCode() string {
	b := make([]byte, CodeLength)
	rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// NormalizeCode upper-cases a code as typed and reports whether it can be
// a lobby code at all.
func NormalizeCode(code string) (string, bool) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if len(code) != CodeLength {
		return "", false
	}
	for _, r := range code {
		if !strings.ContainsRune(codeAlphabet, r) {
			return "", false
		}
	}
	return code, true
}
