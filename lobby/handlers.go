package lobby

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/matchmaker"
)

// handlerFunc answers one request; what it returns becomes the reply.
type handlerFunc func(ctx context.Context, s *session, frame []byte) (any, error)

// requestHandlers lists every request type the gateway understands.
var requestHandlers = map[string]handlerFunc{
	"ping":          handlePing,
	"queue.join":    handleQueueJoin,
	"queue.leave":   handleQueueLeave,
	"queue.why":     handleQueueWhy,
	"lobby.create":  handleLobbyCreate,
	"lobby.join":    handleLobbyJoin,
	"lobby.leave":   handleLobbyLeave,
	"lobby.list":    handleLobbyList,
	"lobby.update":  handleLobbyUpdate,
	"lobby.kick":    handleLobbyKick,
	"lobby.promote": handleLobbyPromote,
	"lobby.ready":   handleLobbyReady,
	"lobby.chat":    handleLobbyChat,
}

func decode(frame []byte, dst any) error {
	if err := json.Unmarshal(frame, dst); err != nil {
		return errorf(CodeBadRequest, "malformed request: "+jsonProblem(err))
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " must be " + te.Type.String()
	}
	return "invalid JSON"
}

func handlePing(context.Context, *session, []byte) (any, error) {
	return map[string]string{"serverTime": time.Now().UTC().Format(time.RFC3339Nano)}, nil
}

type queueJoinRequest struct {
	Queue      string                     `json:"queue"`
	Skill      *float64                   `json:"skill"`
	Regions    []string                   `json:"regions"`
	Latencies  map[string]float64         `json:"latencies"`
	Attributes map[string]json.RawMessage `json:"attributes"`
}

func handleQueueJoin(ctx context.Context, s *session, frame []byte) (any, error) {
	var req queueJoinRequest
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	if req.Queue == "" {
		return nil, errorf(CodeBadRequest, "queue is required")
	}
	if !s.budget.take(&s.budget.queueJoins, s.g.Limits.QueueJoins, 1) {
		return nil, errorf(CodeRateLimited, "too many queue.join requests, slow down")
	}
	if len(req.Regions) > 32 || len(req.Latencies) > 32 {
		return nil, errorf(CodeBadRequest, "at most 32 regions")
	}
	t := domain.Ticket{
		Queue:   req.Queue,
		Players: []domain.Player{{ID: s.id.PlayerID, Name: s.id.Name, PlayFabEntity: s.id.PlayFabEntity}},
		Regions: req.Regions,
	}
	if err := s.g.validSkill(req.Skill); err != nil {
		return nil, err
	}
	var err error
	t.Skill, t.Attributes, err = s.g.Queues.Resolve(req.Queue, matchmaker.JoinInput{
		ClientSkill: req.Skill, ClientAttributes: req.Attributes,
		Members: []matchmaker.MemberInput{{PlayerID: s.id.PlayerID, TokenSkill: s.id.Skill, TokenAttrs: s.id.Attrs}},
	})
	if err != nil {
		return nil, err
	}
	if len(req.Latencies) > 0 {
		t.Latencies = make(map[string]int, len(req.Latencies))
		for r, ms := range req.Latencies {
			if math.IsNaN(ms) || ms < 0 || ms > 60000 {
				return nil, errorf(CodeBadRequest, "latencies are milliseconds from 0 to 60000")
			}
			t.Latencies[r] = int(math.Round(ms))
		}
	}
	// A lobby member queues with the lobby: the store refuses them a solo
	// ticket (in the same round trip as the claim), and only then is the
	// lobby read.
	ticket, err := s.g.Queues.Join(ctx, t)
	if errors.Is(err, domain.ErrInLobby) {
		l, lerr := s.g.Store.PlayerLobby(ctx, s.id.PlayerID)
		if lerr == nil {
			return s.queueLobby(ctx, l, req, t)
		}
		if !errors.Is(lerr, domain.ErrNotFound) {
			return nil, lerr
		}
		// The claim outlived its lobby: drop it and queue alone.
		if err := s.g.Store.DropStaleLobbyClaim(ctx, s.id.PlayerID); err != nil {
			return nil, err
		}
		ticket, err = s.g.Queues.Join(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	s.watchTicket(ticket)
	return map[string]any{"ticket": ticketObject(ticket)}, nil
}

// validSkill checks an optional skill from a request: a finite number
// within the gateway's range, so a lobby's mean cannot overflow.
func (g *Gateway) validSkill(skill *float64) error {
	if skill == nil {
		return nil
	}
	if msg := skillError(*skill, g.SkillMin, g.SkillMax); msg != "" {
		return errorf(CodeBadRequest, msg)
	}
	return nil
}

// skillError is the refusal of a skill outside lo..hi (NaN is), the same
// for a client's request and a token's claim; "" for one within.
func skillError(v, lo, hi float64) string {
	if math.IsNaN(v) || v < lo || v > hi {
		return fmt.Sprintf("skill must be a number from %g to %g", lo, hi)
	}
	return ""
}

// noClientSkill refuses a client's skill in a lobby request for a queue
// whose ratings come from the tokens, as queue.join refuses it: stored, it
// would be shown as the member's skill and never used.
func (g *Gateway) noClientSkill(queue string, skill *float64) error {
	if skill != nil && g.Queues.SkillFromToken(queue) {
		return errorf(CodeForbidden, "skill: this queue takes it from the token, the client may not send it")
	}
	return nil
}

// handleQueueWhy answers queue.why for the player's searching ticket (a
// lobby's too): an estimate from the queue leader's last pass.
func handleQueueWhy(ctx context.Context, s *session, _ []byte) (any, error) {
	t, err := s.g.Store.PlayerTicket(ctx, s.id.PlayerID)
	if err == nil && t.Status != domain.TicketSearching {
		err = domain.ErrNotFound
	}
	if errors.Is(err, domain.ErrNotFound) {
		return nil, errorf(CodeNotFound, "you have no searching ticket")
	}
	if err != nil {
		return nil, err
	}
	return s.g.Queues.Why(ctx, t)
}

func handleQueueLeave(ctx context.Context, s *session, _ []byte) (any, error) {
	t, err := s.g.Queues.Leave(ctx, s.id.PlayerID)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return nil, errorf(CodeNotFound, "you are not in a queue")
		}
		if errors.Is(err, domain.ErrConflict) {
			return nil, errorf(CodeConflict, "your match is ready: too late to leave the queue")
		}
		return nil, err
	}
	s.unwatchTicket(t.ID)
	state := mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(t)})
	if t.LobbyID == "" {
		s.afterReply(state)
		return nil, nil
	}
	// A lobby's ticket: the whole lobby leaves the queue and every member is told.
	s.afterReplyDo(func(ctx context.Context) {
		if err := s.g.ticketLeft(ctx, t, state); err != nil {
			s.logger().Warn("queue.leave of a lobby", "lobby", t.LobbyID, "err", err)
		}
	})
	return nil, nil
}
