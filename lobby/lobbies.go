package lobby

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/matchmaker"
)

// Limits on what players put in a lobby.
const (
	maxProps     = 16
	maxPropKey   = 32
	maxPropValue = 256
	// maxPropsBytes bounds props as they go out in every lobby.state: the
	// counts above alone allow 16 × 288 characters of up to 4 bytes (or
	// 6, escaped control characters) each.
	maxPropsBytes   = 4096
	maxChatRunes    = 500
	defaultListSize = 20
	maxListSize     = 100
)

// lobbyStore is what the lobby service needs from Redis.
type lobbyStore interface {
	lobbyStateSender
	CreateLobby(ctx context.Context, l domain.Lobby) (domain.Lobby, error)
	Lobby(ctx context.Context, lobbyID string) (domain.Lobby, error)
	LobbyByCode(ctx context.Context, code string) (domain.Lobby, error)
	PlayerLobby(ctx context.Context, playerID string) (domain.Lobby, error)
	PublicLobbies(ctx context.Context, queue string, limit int) ([]domain.Lobby, error)
	JoinLobby(ctx context.Context, lobbyID string, m domain.LobbyMember) (domain.Lobby, error)
	LeaveLobby(ctx context.Context, lobbyID, playerID, by string) (domain.Lobby, bool, error)
	UpdateLobby(ctx context.Context, lobbyID, by string, props map[string]string, visibility string, maxMembers int) (domain.Lobby, error)
	PromoteInLobby(ctx context.Context, lobbyID, by, target string) (domain.Lobby, error)
	SetReady(ctx context.Context, lobbyID, playerID string, ready bool, skill *float64) (domain.Lobby, error)
	AttachLobbyTicket(ctx context.Context, lobbyID, by, ticketID string, memberIDs []string) (domain.Lobby, error)
	LobbyTicketDone(ctx context.Context, lobbyID, ticketID string, status domain.LobbyStatus) (domain.Lobby, bool, error)
	PlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error)
	CancelPlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error)
	CheckCodeGuesses(ctx context.Context, playerID string, limit int) (ok bool, retryAfter time.Duration, err error)
	SpendCodeGuess(ctx context.Context, playerID string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
}

// lobbyStateSender is what sending lobby.state needs.
type lobbyStateSender interface {
	Connected(ctx context.Context, players []string) (map[string]bool, error)
	SendToPlayers(ctx context.Context, events []domain.Addressed) error
}

// lobbyService holds the lobby rules this node applies for its players:
// membership changes and what they announce (lobby.state, paced by
// states; lobby.removed). The lobby.* request handlers below use it; the
// grace sweep (presence) makes players whose grace ran out leave through
// it.
type lobbyService struct {
	store  lobbyStore
	states *lobbyStates
	logger *slog.Logger
}

// lobbyEvents sends lobby.state to every member of l, with each member's
// connection state, plus any extra events. The extra events go out at once;
// the state too unless the lobby's last one went out less than
// LobbyStateInterval ago: then the lobby as stored when the interval ends
// is sent instead (see lobbyStates).
func (ls *lobbyService) lobbyEvents(ctx context.Context, l domain.Lobby, extra ...domain.Addressed) error {
	if ls.states.sendNow(ctx, l.ID) {
		return sendLobbyState(ctx, ls.store, l, extra...)
	}
	return ls.store.SendToPlayers(ctx, extra)
}

// sendStoredLobbyState sends the lobby as stored now to its members; the
// delayed sends of lobbyStates use it.
func (ls *lobbyService) sendStoredLobbyState(ctx context.Context, lobbyID string) {
	l, err := ls.store.Lobby(ctx, lobbyID)
	if errors.Is(err, domain.ErrNotFound) {
		return // deleted meanwhile: its last members were told
	}
	if err == nil {
		err = sendLobbyState(ctx, ls.store, l)
	}
	if err != nil {
		ls.logger.Warn("send lobby state", "lobby", lobbyID, "err", err)
	}
}

func sendLobbyState(ctx context.Context, st lobbyStateSender, l domain.Lobby, extra ...domain.Addressed) error {
	members := l.MemberIDs()
	connected, err := st.Connected(ctx, members)
	if err != nil {
		return err
	}
	events := append([]domain.Addressed{{To: members, Event: mustJSON(lobbyStateEvent{
		Type: "lobby.state", Lobby: lobbyObject(l, connected),
	})}}, extra...)
	return st.SendToPlayers(ctx, events)
}

// snapshot renders l for a reply or welcome.
func (ls *lobbyService) snapshot(ctx context.Context, l domain.Lobby) (lobbyJSON, error) {
	connected, err := ls.store.Connected(ctx, l.MemberIDs())
	if err != nil {
		return lobbyJSON{}, err
	}
	return lobbyObject(l, connected), nil
}

// broadcastAfterReply sends lobby.state (and extra events) once the current
// reply has been queued, so the requester sees its reply first.
func (s *session) broadcastAfterReply(l domain.Lobby, extra ...domain.Addressed) {
	s.afterReplyDo(func(ctx context.Context) {
		if err := s.g.lobbies.lobbyEvents(ctx, l, extra...); err != nil {
			s.logger().Warn("send lobby state", "lobby", l.ID, "err", err)
		}
	})
}

// removeMember takes player out of lobby l (by the owner, for a kick: the
// caller checked KickRule first, and the store applies it) and returns
// what to announce. A queued lobby's ticket is cancelled first,
// through the leaving player's claim (any member leaving takes the lobby out
// of the queue): done in this order, a failure leaves the player in the
// lobby rather than out of it but still in its ticket. Leaving twice (a
// retried request) is not an error and still cancels the ticket.
func (ls *lobbyService) removeMember(ctx context.Context, l domain.Lobby, player, by, reason string) (lobbyChange, error) {
	var change lobbyChange
	if l.Status == domain.LobbyQueued && l.TicketID != "" {
		t, err := ls.store.CancelPlayerTicket(ctx, player)
		switch {
		case err == nil:
			change.events = append(change.events, domain.Addressed{To: t.PlayerIDs(),
				Event: mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(t)})})
			change.reopen = t.ID
		case errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrConflict):
			// The ticket already ended, or its party exists: nothing to cancel.
		default:
			return lobbyChange{}, err
		}
	}
	after, deleted, err := ls.store.LeaveLobby(ctx, l.ID, player, by)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		after, deleted = l, false // already out: a retried request
		if fresh, err := ls.store.Lobby(ctx, l.ID); err == nil {
			after = fresh
		} else if errors.Is(err, domain.ErrNotFound) {
			deleted = true
		}
	case err != nil:
		return lobbyChange{}, err
	}
	change.lobby, change.deleted = after, deleted
	if change.reopen != "" && !deleted {
		if reopened, changed, err := ls.store.LobbyTicketDone(ctx, l.ID, change.reopen, domain.LobbyOpen); err != nil {
			return change, err
		} else if changed {
			change.lobby = reopened
		}
	}
	if reason != "" {
		change.events = append(change.events, domain.Addressed{To: []string{player}, Event: mustJSON(lobbyRemovedEvent{
			Type: "lobby.removed", LobbyID: l.ID, Reason: reason,
		})})
	}
	return change, nil
}

// lobbyChange is what a lobby change must announce.
type lobbyChange struct {
	lobby   domain.Lobby
	deleted bool
	reopen  string // the cancelled ticket whose lobby reopened
	events  []domain.Addressed
}

// announce sends a change's events and, unless the lobby is gone, its state.
func (ls *lobbyService) announce(ctx context.Context, c lobbyChange) error {
	if c.deleted {
		return ls.store.SendToPlayers(ctx, c.events)
	}
	return ls.lobbyEvents(ctx, c.lobby, c.events...)
}

// leaveLobby removes a player from their lobby and announces it at once;
// the grace sweeper uses it.
func (ls *lobbyService) leaveLobby(ctx context.Context, l domain.Lobby, player string) error {
	change, err := ls.removeMember(ctx, l, player, "", "")
	if err != nil {
		return err
	}
	return ls.announce(ctx, change)
}

// liveTicket reports whether the player holds a ticket that still binds them.
func (ls *lobbyService) liveTicket(ctx context.Context, player string) (bool, error) {
	t, err := ls.store.PlayerTicket(ctx, player)
	if errors.Is(err, domain.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return t.Status == domain.TicketSearching || t.Status == domain.TicketMatched, nil
}

func validProps(props map[string]string) error {
	if len(props) > maxProps {
		return errorf(CodeTooLarge, fmt.Sprintf("at most %d props", maxProps))
	}
	for k, v := range props {
		if k == "" || utf8.RuneCountInString(k) > maxPropKey || utf8.RuneCountInString(v) > maxPropValue {
			return errorf(CodeTooLarge, fmt.Sprintf("prop keys are 1-%d characters, values at most %d", maxPropKey, maxPropValue))
		}
	}
	if len(props) > 0 && len(mustJSON(props)) > maxPropsBytes {
		return errorf(CodeTooLarge, fmt.Sprintf("props are at most %d bytes as JSON", maxPropsBytes))
	}
	return nil
}

func validVisibility(v string) bool { return v == "public" || v == "private" }

type lobbyCreateRequest struct {
	Queue      string            `json:"queue"`
	Visibility string            `json:"visibility"`
	MaxMembers *int              `json:"maxMembers"`
	Props      map[string]string `json:"props"`
	Skill      *float64          `json:"skill"`
}

func handleLobbyCreate(ctx context.Context, s *session, frame []byte) (any, error) {
	var req lobbyCreateRequest
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	maxUsers, ok := s.g.Queues.MaxLobbyMembers(req.Queue)
	if !ok {
		return nil, errorf(CodeNotFound, "unknown queue")
	}
	if req.Visibility == "" {
		req.Visibility = "public"
	}
	if !validVisibility(req.Visibility) {
		return nil, errorf(CodeBadRequest, "visibility must be public or private")
	}
	maxMembers := maxUsers
	if req.MaxMembers != nil {
		maxMembers = *req.MaxMembers
	}
	if maxMembers < 1 || maxMembers > maxUsers {
		return nil, errorf(CodeBadRequest, fmt.Sprintf("maxMembers must be between 1 and %d, the most a lobby of this queue holds (its match size, or its team size)", maxUsers))
	}
	if err := validProps(req.Props); err != nil {
		return nil, err
	}
	if err := s.g.validSkill(req.Skill); err != nil {
		return nil, err
	}
	if err := s.g.noClientSkill(req.Queue, req.Skill); err != nil {
		return nil, err
	}
	if live, err := s.g.lobbies.liveTicket(ctx, s.id.PlayerID); err != nil {
		return nil, err
	} else if live {
		return nil, errorf(CodeConflict, "you are in a queue: leave it first")
	}
	now := time.Now().UnixMilli()
	owner := s.member(now)
	owner.Skill = req.Skill
	l, err := s.g.lobbies.store.CreateLobby(ctx, domain.Lobby{
		ID: uuid.NewString(), Queue: req.Queue, Visibility: req.Visibility, OwnerID: s.id.PlayerID,
		MaxMembers: maxMembers, Props: req.Props, Status: domain.LobbyOpen, CreatedAt: now,
		Members: []domain.LobbyMember{owner},
	})
	if err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return nil, errorf(CodeConflict, "you are in a lobby already: leave it first")
		}
		return nil, err
	}
	return s.lobbyReply(ctx, l)
}

// member is the player as a lobby member, with their token's matchmaking
// claims (for queues that take skill or attributes from the token).
func (s *session) member(joinedAt int64) domain.LobbyMember {
	return domain.LobbyMember{PlayerID: s.id.PlayerID, Name: s.id.Name, PlayFabEntity: s.id.PlayFabEntity, JoinedAt: joinedAt,
		TokenSkill: s.id.Skill, TokenAttrs: s.id.Attrs}
}

// lobbyReply answers with the lobby and broadcasts it to its members.
func (s *session) lobbyReply(ctx context.Context, l domain.Lobby) (any, error) {
	obj, err := s.g.lobbies.snapshot(ctx, l)
	if err != nil {
		return nil, err
	}
	s.broadcastAfterReply(l)
	return map[string]any{"lobby": obj}, nil
}

func handleLobbyJoin(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		LobbyID string   `json:"lobbyId"`
		Code    string   `json:"code"`
		Skill   *float64 `json:"skill"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	if err := s.g.validSkill(req.Skill); err != nil {
		return nil, err
	}
	var l domain.Lobby
	var err error
	switch {
	case req.Code != "":
		l, err = s.lobbyByCode(ctx, req.Code)
	case req.LobbyID != "":
		l, err = s.g.lobbies.store.Lobby(ctx, req.LobbyID)
		if errors.Is(err, domain.ErrNotFound) || (err == nil && l.Visibility != "public") {
			return nil, errorf(CodeNotFound, "no such lobby") // private lobbies are joined by code only
		}
	default:
		return nil, errorf(CodeBadRequest, "lobbyId or code is required")
	}
	if err != nil {
		return nil, err
	}
	if err := s.g.noClientSkill(l.Queue, req.Skill); err != nil {
		return nil, err
	}
	if live, err := s.g.lobbies.liveTicket(ctx, s.id.PlayerID); err != nil {
		return nil, err
	} else if live {
		return nil, errorf(CodeConflict, "you are in a queue: leave it first")
	}
	if _, err := s.g.lobbies.store.PlayerLobby(ctx, s.id.PlayerID); err == nil {
		return nil, errorf(CodeConflict, "you are in a lobby already: leave it first")
	} else if !errors.Is(err, domain.ErrNotFound) {
		return nil, err
	}
	m := s.member(time.Now().UnixMilli())
	m.Skill = req.Skill
	l, err = s.g.lobbies.store.JoinLobby(ctx, l.ID, m)
	if err != nil {
		return nil, err
	}
	return s.lobbyReply(ctx, l)
}

// codeWindow is the window of Gateway.CodeGuessesPerMinute.
const codeWindow = time.Minute

// lobbyByCode finds the lobby a typed code names. Codes that name no lobby
// are counted per player, across connections and nodes: past
// CodeGuessesPerMinute of them, lookups are refused (rate_limited) until
// the window ends, so codes cannot be found by guessing.
func (s *session) lobbyByCode(ctx context.Context, typed string) (domain.Lobby, error) {
	ok, retry, err := s.g.lobbies.store.CheckCodeGuesses(ctx, s.id.PlayerID, s.g.CodeGuessesPerMinute)
	if err != nil {
		return domain.Lobby{}, err
	}
	if !ok {
		return domain.Lobby{}, errorf(CodeRateLimited, fmt.Sprintf("too many codes that match no lobby: try again in %d s", int(retry.Seconds())+1))
	}
	l, err := domain.Lobby{}, domain.ErrNotFound
	if code, valid := domain.NormalizeCode(typed); valid {
		l, err = s.g.lobbies.store.LobbyByCode(ctx, code)
	}
	if !errors.Is(err, domain.ErrNotFound) {
		return l, err
	}
	if _, _, err := s.g.lobbies.store.SpendCodeGuess(ctx, s.id.PlayerID, s.g.CodeGuessesPerMinute, codeWindow); err != nil {
		return domain.Lobby{}, err
	}
	return domain.Lobby{}, errorf(CodeNotFound, "no lobby has that code")
}

// myLobby is the requester's lobby, or not_found.
func (s *session) myLobby(ctx context.Context) (domain.Lobby, error) {
	l, err := s.g.lobbies.store.PlayerLobby(ctx, s.id.PlayerID)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Lobby{}, errorf(CodeNotFound, "you are not in a lobby")
	}
	return l, err
}

func handleLobbyLeave(ctx context.Context, s *session, _ []byte) (any, error) {
	l, err := s.myLobby(ctx)
	if err != nil {
		return nil, err
	}
	change, err := s.g.lobbies.removeMember(ctx, l, s.id.PlayerID, "", "")
	if err != nil {
		return nil, err
	}
	s.announceAfterReply(change)
	return nil, nil
}

func handleLobbyKick(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		PlayerID string `json:"playerId"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	if req.PlayerID == "" {
		return nil, errorf(CodeBadRequest, "playerId is required")
	}
	l, err := s.myLobby(ctx)
	if err != nil {
		return nil, err
	}
	// Checked before a queued lobby's ticket is cancelled, with the rule
	// the store applies after it.
	if err := l.Check(domain.KickRule(s.id.PlayerID, req.PlayerID)); err != nil {
		return nil, err
	}
	change, err := s.g.lobbies.removeMember(ctx, l, req.PlayerID, s.id.PlayerID, "kicked")
	if err != nil {
		return nil, err
	}
	s.announceAfterReply(change)
	return nil, nil
}

// announceAfterReply announces a lobby change once the reply is queued.
func (s *session) announceAfterReply(c lobbyChange) {
	s.afterReplyDo(func(ctx context.Context) {
		if err := s.g.lobbies.announce(ctx, c); err != nil {
			s.logger().Warn("announce lobby change", "lobby", c.lobby.ID, "err", err)
		}
	})
}

func handleLobbyPromote(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		PlayerID string `json:"playerId"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	l, err := s.myLobby(ctx)
	if err != nil {
		return nil, err
	}
	if l, err = s.g.lobbies.store.PromoteInLobby(ctx, l.ID, s.id.PlayerID, req.PlayerID); err != nil {
		return nil, err
	}
	s.broadcastAfterReply(l)
	return nil, nil
}

func handleLobbyReady(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		Ready *bool    `json:"ready"`
		Skill *float64 `json:"skill"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	if req.Ready == nil {
		return nil, errorf(CodeBadRequest, "ready (true or false) is required")
	}
	if err := s.g.validSkill(req.Skill); err != nil {
		return nil, err
	}
	l, err := s.myLobby(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.g.noClientSkill(l.Queue, req.Skill); err != nil {
		return nil, err
	}
	if l, err = s.g.lobbies.store.SetReady(ctx, l.ID, s.id.PlayerID, *req.Ready, req.Skill); err != nil {
		return nil, err
	}
	s.broadcastAfterReply(l)
	return nil, nil
}

func handleLobbyUpdate(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		Props      map[string]string `json:"props"`
		Visibility string            `json:"visibility"`
		MaxMembers *int              `json:"maxMembers"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	if req.Visibility != "" && !validVisibility(req.Visibility) {
		return nil, errorf(CodeBadRequest, "visibility must be public or private")
	}
	if err := validProps(req.Props); err != nil {
		return nil, err
	}
	l, err := s.myLobby(ctx)
	if err != nil {
		return nil, err
	}
	maxMembers := 0
	if req.MaxMembers != nil {
		maxUsers, _ := s.g.Queues.MaxLobbyMembers(l.Queue)
		if *req.MaxMembers < 1 || *req.MaxMembers > maxUsers {
			return nil, errorf(CodeBadRequest, fmt.Sprintf("maxMembers must be between the member count and %d, the most a lobby of this queue holds (its match size, or its team size)", maxUsers))
		}
		maxMembers = *req.MaxMembers
	}
	if l, err = s.g.lobbies.store.UpdateLobby(ctx, l.ID, s.id.PlayerID, req.Props, req.Visibility, maxMembers); err != nil {
		return nil, err
	}
	return s.lobbyReply(ctx, l)
}

func handleLobbyList(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		Queue string `json:"queue"`
		Limit int    `json:"limit"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = defaultListSize
	}
	limit = min(limit, maxListSize)
	queues := s.g.Queues.QueueNames()
	if req.Queue != "" {
		if _, ok := s.g.Queues.MaxLobbyMembers(req.Queue); !ok {
			return nil, errorf(CodeNotFound, "unknown queue")
		}
		queues = []string{req.Queue}
	}
	out := []lobbyJSON{}
	for _, q := range queues {
		lobbies, err := s.g.lobbies.store.PublicLobbies(ctx, q, limit-len(out))
		if err != nil {
			return nil, err
		}
		for _, l := range lobbies {
			obj, err := s.g.lobbies.snapshot(ctx, l)
			if err != nil {
				return nil, err
			}
			// A listed lobby is joined by id. Its code is for those its
			// members give it to: handed to every lister, it would still
			// let them in once the lobby turns private (it changes then,
			// but a lister could join, learn the new code, and leave).
			obj.Code = ""
			out = append(out, obj)
		}
		if len(out) >= limit {
			break
		}
	}
	return map[string]any{"lobbies": out}, nil
}

func handleLobbyChat(ctx context.Context, s *session, frame []byte) (any, error) {
	var req struct {
		Text string `json:"text"`
	}
	if err := decode(frame, &req); err != nil {
		return nil, err
	}
	if req.Text == "" {
		return nil, errorf(CodeBadRequest, "text is required")
	}
	if utf8.RuneCountInString(req.Text) > maxChatRunes {
		return nil, errorf(CodeTooLarge, fmt.Sprintf("text is at most %d characters", maxChatRunes))
	}
	if !s.budget.take(&s.budget.chat, s.g.Limits.Chat, 1) {
		return nil, errorf(CodeRateLimited, "too many chat messages, slow down")
	}
	l, err := s.myLobby(ctx)
	if err != nil {
		return nil, err
	}
	event := mustJSON(lobbyChatEvent{
		Type: "lobby.chat", LobbyID: l.ID, From: playerJSON{PlayerID: s.id.PlayerID, Name: s.id.Name},
		Text: req.Text, TS: time.Now().UTC().Format(time.RFC3339Nano),
	})
	if err := s.g.lobbies.store.SendToPlayers(ctx, []domain.Addressed{{To: l.MemberIDs(), Event: json.RawMessage(event)}}); err != nil {
		return nil, err
	}
	return nil, nil
}

// queueLobby is queue.join from a member of a lobby: the owner queues the
// whole lobby as one ticket once every member is ready.
func (s *session) queueLobby(ctx context.Context, l domain.Lobby, req queueJoinRequest, t domain.Ticket) (any, error) {
	// Checked before the ticket is created, with the rule the store
	// applies when it attaches the ticket (no ticket id yet).
	if err := l.Check(domain.QueueRule(s.id.PlayerID, "", l.MemberIDs())); err != nil {
		return nil, err
	}
	if req.Queue != l.Queue {
		return nil, errorf(CodeBadRequest, fmt.Sprintf("this lobby queues in %q", l.Queue))
	}
	t.Players = t.Players[:0]
	in := matchmaker.JoinInput{ClientSkill: req.Skill, ClientAttributes: req.Attributes}
	for _, m := range l.Members {
		t.Players = append(t.Players, domain.Player{ID: m.PlayerID, Name: m.Name, PlayFabEntity: m.PlayFabEntity})
		in.Members = append(in.Members, matchmaker.MemberInput{PlayerID: m.PlayerID, Skill: m.Skill,
			TokenSkill: m.TokenSkill, TokenAttrs: m.TokenAttrs})
	}
	// A lobby's skill and number attributes are its members' means, its
	// token attributes merged from their tokens (see matchmaker.Queue.Resolve).
	var err error
	if t.Skill, t.Attributes, err = s.g.Queues.Resolve(t.Queue, in); err != nil {
		return nil, err
	}
	t.LobbyID = l.ID
	ticket, err := s.g.Queues.Join(ctx, t)
	if err != nil {
		return nil, err
	}
	l, err = s.g.lobbies.store.AttachLobbyTicket(ctx, l.ID, s.id.PlayerID, ticket.ID, l.MemberIDs())
	if err != nil {
		// The lobby changed between our read and the ticket: take it back.
		if _, cerr := s.g.lobbies.store.CancelPlayerTicket(ctx, s.id.PlayerID); cerr != nil {
			s.logger().Warn("withdraw lobby ticket", "ticket", ticket.ID, "err", cerr)
		}
		return nil, err
	}
	state := domain.Addressed{To: ticket.PlayerIDs(), Event: mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(ticket)})}
	s.broadcastAfterReply(l, state)
	ticket.LobbyID = l.ID
	s.watchTicket(ticket) // the owner's node watches the lobby's ticket for every member
	return map[string]any{"ticket": ticketObject(ticket)}, nil
}
