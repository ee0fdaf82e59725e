// Package lobby is the player-facing side of lobbyd: authentication, the
// WebSocket gateway and its protocol (docs/protocol.md), and the delivery of
// match events to players' sockets on whichever node holds them.
package lobby

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// ProtocolVersion is sent in welcome; it changes only by adding.
const ProtocolVersion = 1

// Protocol error codes.
const (
	CodeBadRequest   = "bad_request"
	CodeUnknownType  = "unknown_type"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeFull         = "full"
	CodeRateLimited  = "rate_limited"
	CodeTooLarge     = "too_large"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// WebSocket close codes of the protocol (1000-1011 are RFC 6455's).
const (
	CloseSessionReplaced = 4001
	CloseTokenExpired    = 4003
	CloseSlowConsumer    = 4004
	CloseByOperator      = 4005
)

// Error is a failed request's error object.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// toError maps an error from the layers below to its protocol error. This is
// the one place where sentinels become codes; anything unknown is internal
// and its text is not shown to the client (it may name infrastructure).
func toError(err error) *Error {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, domain.ErrNotFound):
		return errorf(CodeNotFound, err.Error())
	case errors.Is(err, domain.ErrConflict):
		return errorf(CodeConflict, err.Error())
	case errors.Is(err, domain.ErrTooLarge):
		return errorf(CodeTooLarge, err.Error())
	case errors.Is(err, domain.ErrInvalid):
		return errorf(CodeBadRequest, err.Error())
	case errors.Is(err, domain.ErrForbidden):
		return errorf(CodeForbidden, err.Error())
	case errors.Is(err, domain.ErrFull):
		return errorf(CodeFull, err.Error())
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, domain.ErrUnavailable):
		// Redis unreachable, restarting, failing over: worth retrying.
		return errorf(CodeUnavailable, "the server cannot complete this now, try again")
	default:
		return errorf(CodeInternal, "internal error")
	}
}

// envelope is the part of every client frame read before dispatch. Both
// fields are raw, so that a type of the wrong kind does not lose the id.
type envelope struct {
	Type json.RawMessage `json:"type"`
	ID   json.RawMessage `json:"id"`
}

// maxIDChars bounds a request id, in characters as the protocol counts them.
const maxIDChars = 64

// parseEnvelope reads a frame's type and id. On error, id is still the
// request's id when that id is valid, so the reply carries it.
func parseEnvelope(frame []byte) (typ, id string, err *Error) {
	// Fast path, one decode: a frame whose type and id are strings (or
	// absent), as every well-formed request's are.
	var plain struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if json.Unmarshal(frame, &plain) == nil {
		switch {
		case utf8.RuneCountInString(plain.ID) > maxIDChars:
			return "", "", errorf(CodeBadRequest, "id must be a string of at most 64 characters")
		case plain.Type == "":
			return "", plain.ID, errorf(CodeBadRequest, "type is required")
		}
		return plain.Type, plain.ID, nil
	}
	return parseEnvelopeByField(frame)
}

// parseEnvelopeByField is parseEnvelope field by field: it says which of
// type and id is wrong.
func parseEnvelopeByField(frame []byte) (typ, id string, err *Error) {
	var env envelope
	if json.Unmarshal(frame, &env) != nil {
		return "", "", errorf(CodeBadRequest, "frame is not a JSON object")
	}
	if len(env.ID) > 0 {
		if json.Unmarshal(env.ID, &id) != nil || utf8.RuneCountInString(id) > maxIDChars {
			return "", "", errorf(CodeBadRequest, "id must be a string of at most 64 characters")
		}
	}
	if len(env.Type) > 0 && json.Unmarshal(env.Type, &typ) != nil {
		return "", id, errorf(CodeBadRequest, "type must be a string")
	}
	if typ == "" {
		return "", id, errorf(CodeBadRequest, "type is required")
	}
	return typ, id, nil
}

type replyFrame struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	OK    bool   `json:"ok"`
	Data  any    `json:"data,omitempty"`
	Error *Error `json:"error,omitempty"`
}

// ticketJSON is the protocol's Ticket object.
type ticketJSON struct {
	TicketID        string   `json:"ticketId"`
	Queue           string   `json:"queue"`
	Players         []string `json:"players"`
	Status          string   `json:"status"`
	CreatedAt       string   `json:"createdAt,omitempty"`
	EstimatedWaitMs *int64   `json:"estimatedWaitMs,omitempty"`
	// MatchID is set once the ticket is in a match, and stays on a ticket
	// cancelled while its match allocates (the player left that match).
	MatchID string `json:"matchId,omitempty"`
}

func ticketObject(t domain.Ticket) ticketJSON {
	ids := make([]string, len(t.Players))
	for i, p := range t.Players {
		ids[i] = p.ID
	}
	out := ticketJSON{
		TicketID: t.ID, Queue: domain.BaseQueue(t.Queue), Players: ids, Status: string(t.Status),
		CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339Nano), MatchID: t.MatchID,
	}
	if t.EstimatedWait > 0 {
		ms := t.EstimatedWait.Milliseconds()
		out.EstimatedWaitMs = &ms
	}
	return out
}

// playerJSON is the protocol's "player in a match".
type playerJSON struct {
	PlayerID string `json:"playerId"`
	Name     string `json:"name"`
}

func playerObjects(ps []domain.Player) []playerJSON {
	out := make([]playerJSON, len(ps))
	for i, p := range ps {
		out[i] = playerJSON{PlayerID: p.ID, Name: p.Name}
	}
	return out
}

type queueStateEvent struct {
	Type   string     `json:"type"`
	Ticket ticketJSON `json:"ticket"`
	// Reason says why a ticket ended that its player did not end:
	// "operator" (cancelled by an operator), "queue_removed".
	Reason string `json:"reason,omitempty"`
}

type matchFoundEvent struct {
	Type    string       `json:"type"`
	MatchID string       `json:"matchId"`
	Queue   string       `json:"queue"`
	Players []playerJSON `json:"players"`
	matchRules
}

type matchReadyEvent struct {
	Type              string       `json:"type"`
	MatchID           string       `json:"matchId"`
	Queue             string       `json:"queue"`
	PartyID           string       `json:"partyId"`
	NetworkDescriptor string       `json:"networkDescriptor"`
	InvitationID      string       `json:"invitationId"`
	Regions           []string     `json:"regions"`
	Players           []playerJSON `json:"players"`
	matchRules
}

// matchRules are what match.found and match.ready say about how the match
// was formed: its teams (queues with teams), its attributes' values
// (queues with attributes) and its quality. A match formed by an earlier
// version has none of them.
type matchRules struct {
	Teams      [][]string                  `json:"teams,omitempty"`
	Attributes map[string]domain.MatchAttr `json:"attributes,omitempty"`
	Quality    *domain.Quality             `json:"quality,omitempty"`
}

func matchRulesOf(m domain.Match) matchRules {
	return matchRules{Teams: m.Teams, Attributes: m.Attributes, Quality: m.Quality}
}

type matchFailedEvent struct {
	Type     string `json:"type"`
	MatchID  string `json:"matchId"`
	Reason   string `json:"reason"`
	Requeued bool   `json:"requeued"`
}

type welcomeFrame struct {
	Type     string       `json:"type"`
	PlayerID string       `json:"playerId"`
	Protocol int          `json:"protocol"`
	Node     string       `json:"node"`
	State    welcomeState `json:"state"`
}

type welcomeState struct {
	Lobby  *lobbyJSON       `json:"lobby,omitempty"`
	Ticket *ticketJSON      `json:"ticket,omitempty"`
	Match  *json.RawMessage `json:"match,omitempty"`
}

var sessionReplacedFrame = []byte(`{"type":"session.replaced"}`)

// mustJSON encodes a frame. Unlike json.Marshal it leaves <, > and & as
// they are: escaping them (for HTML) turns each into six bytes, so a lobby's
// props of "<" would cost six times their size on every lobby.state.
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("lobby: encode protocol frame: " + err.Error()) // only our own types reach here
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// lobbyJSON is the protocol's Lobby object.
type lobbyJSON struct {
	LobbyID    string            `json:"lobbyId"`
	Code       string            `json:"code"`
	Queue      string            `json:"queue"`
	Visibility string            `json:"visibility"`
	OwnerID    string            `json:"ownerId"`
	MaxMembers int               `json:"maxMembers"`
	Members    []memberJSON      `json:"members"`
	Props      map[string]string `json:"props"`
	Status     string            `json:"status"`
	TicketID   string            `json:"ticketId,omitempty"`
	Version    int64             `json:"version"`
}

type memberJSON struct {
	PlayerID  string   `json:"playerId"`
	Name      string   `json:"name"`
	Ready     bool     `json:"ready"`
	Connected bool     `json:"connected"`
	Skill     *float64 `json:"skill,omitempty"`
}

// lobbyObject renders a lobby; connected says which members have a socket.
func lobbyObject(l domain.Lobby, connected map[string]bool) lobbyJSON {
	out := lobbyJSON{
		LobbyID: l.ID, Code: l.Code, Queue: l.Queue, Visibility: l.Visibility, OwnerID: l.OwnerID,
		MaxMembers: l.MaxMembers, Props: l.Props, Status: string(l.Status), TicketID: l.TicketID, Version: l.Version,
		Members: make([]memberJSON, len(l.Members)),
	}
	for i, m := range l.Members {
		out.Members[i] = memberJSON{PlayerID: m.PlayerID, Name: m.Name, Ready: m.Ready, Connected: connected[m.PlayerID], Skill: m.Skill}
	}
	return out
}

type lobbyStateEvent struct {
	Type  string    `json:"type"`
	Lobby lobbyJSON `json:"lobby"`
}

type lobbyRemovedEvent struct {
	Type    string `json:"type"`
	LobbyID string `json:"lobbyId"`
	Reason  string `json:"reason"`
}

type lobbyChatEvent struct {
	Type    string     `json:"type"`
	LobbyID string     `json:"lobbyId"`
	From    playerJSON `json:"from"`
	Text    string     `json:"text"`
	TS      string     `json:"ts"`
}
