package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

// lobbyTTL bounds how long a lobby, its code and its members' claims live:
// 24 hours from creation (changes keep the TTL), documented as the most a
// lobby lasts.
const lobbyTTL = 24 * time.Hour

// CreateLobby records l, owned by its only member, under a fresh code that
// is unique among live lobbies, and returns it. ErrConflict if the owner is
// in a lobby already.
func (s *Store) CreateLobby(ctx context.Context, l domain.Lobby) (domain.Lobby, error) {
	owner := l.Members[0].PlayerID
	l.Version = 1
	if err := s.claimLobby(ctx, owner, l.ID); err != nil {
		return domain.Lobby{}, err
	}
	code, err := s.reserveCode(ctx, l.ID, lobbyTTL)
	if err != nil {
		s.releaseLobby(ctx, owner, l.ID)
		return domain.Lobby{}, err
	}
	l.Code = code
	raw, err := json.Marshal(l)
	if err != nil {
		return domain.Lobby{}, fmt.Errorf("encode lobby: %w", err)
	}
	if err := s.rdb.Set(ctx, s.keys.lobbyKey(l.ID), raw, lobbyTTL).Err(); err != nil {
		s.releaseLobby(ctx, owner, l.ID)
		s.releaseCode(ctx, l.Code, l.ID)
		return domain.Lobby{}, fmt.Errorf("create lobby: %w", err)
	}
	s.indexLobby(ctx, l, false)
	return l, nil
}

// reserveCode takes a code no live lobby has for lobbyID, for ttl.
func (s *Store) reserveCode(ctx context.Context, lobbyID string, ttl time.Duration) (string, error) {
	for attempt := 0; attempt < 10; attempt++ {
		code := domain.NewCode()
		ok, err := s.rdb.SetNX(ctx, s.keys.lobbyCodeKey(code), lobbyID, ttl).Result()
		if err != nil {
			return "", fmt.Errorf("reserve lobby code: %w", err)
		}
		if ok {
			return code, nil
		}
	}
	return "", errors.New("reserve lobby code: no free code after 10 tries")
}

// releaseCode frees a code if it still names lobbyID.
func (s *Store) releaseCode(ctx context.Context, code, lobbyID string) {
	err := compareDeleteScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.lobbyCodeKey(code)}, lobbyID).Err()
	s.undoFailed(ctx, "release lobby code", err, "lobby", lobbyID)
}

func (s *Store) claimLobby(ctx context.Context, playerID, lobbyID string) error {
	key := s.keys.playerLobbyKey(playerID)
	ok, err := s.rdb.SetNX(ctx, key, lobbyID, lobbyTTL).Result()
	if err != nil {
		return fmt.Errorf("claim lobby place of %s: %w", playerID, err)
	}
	if ok {
		return nil
	}
	// A claim on a lobby that no longer exists, or no longer lists the
	// player (a crash between two steps), does not bind.
	old, age, err := s.lobbyClaim(ctx, playerID)
	if err != nil {
		return err
	}
	if old == lobbyID {
		return nil // already this lobby's: a repeated join
	}
	if old != "" {
		if binds, err := s.claimBinds(ctx, playerID, old, age); err != nil {
			return err
		} else if binds {
			return domain.ErrConflict
		}
	}
	replaced, err := replaceClaimScript.Run(ctx, s.rdb, []string{key}, old, lobbyID, int(lobbyTTL.Seconds())).Int()
	if err != nil {
		return fmt.Errorf("replace lobby place of %s: %w", playerID, err)
	}
	if replaced == 0 {
		return domain.ErrConflict
	}
	return nil
}

func (s *Store) releaseLobby(ctx context.Context, playerID, lobbyID string) {
	err := compareDeleteScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.keys.playerLobbyKey(playerID)}, lobbyID).Err()
	s.undoFailed(ctx, "release lobby claim", err, "player", playerID, "lobby", lobbyID)
}

// indexLobby keeps the public listing in step with the lobby: listed while
// public, open and not full. It is best effort; lobby.list re-checks.
func (s *Store) indexLobby(ctx context.Context, l domain.Lobby, deleted bool) {
	key := s.keys.publicLobbiesKey(l.Queue)
	if !deleted && l.Visibility == "public" && l.Status == domain.LobbyOpen && len(l.Members) < l.MaxMembers {
		s.rdb.ZAdd(ctx, key, redis.Z{Score: float64(l.CreatedAt), Member: l.ID})
	} else {
		s.rdb.ZRem(ctx, key, l.ID)
	}
}

// Lobby reads one lobby, or ErrNotFound.
func (s *Store) Lobby(ctx context.Context, lobbyID string) (domain.Lobby, error) {
	raw, err := s.rdb.Get(ctx, s.keys.lobbyKey(lobbyID)).Result()
	if errors.Is(err, redis.Nil) {
		return domain.Lobby{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Lobby{}, fmt.Errorf("read lobby %s: %w", lobbyID, err)
	}
	return decodeLobby(raw)
}

func decodeLobby(raw string) (domain.Lobby, error) {
	// Lua's cjson cannot tell an empty object from an empty array, and
	// implementations differ ({} in Redis, [] in miniredis): props, the one
	// field that may be empty, is decoded either way.
	var l struct {
		domain.Lobby
		Props json.RawMessage `json:"props"`
	}
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return domain.Lobby{}, fmt.Errorf("decode lobby: %w", err)
	}
	l.Lobby.Props = map[string]string{}
	if p := string(l.Props); p != "" && p != "[]" && p != "null" {
		if err := json.Unmarshal(l.Props, &l.Lobby.Props); err != nil {
			return domain.Lobby{}, fmt.Errorf("decode lobby props: %w", err)
		}
	}
	return l.Lobby, nil
}

// LobbyByCode finds a live lobby by its join code, or ErrNotFound. A code
// the lobby no longer has (it went private and got a new one) is not found,
// even while its key is still there (a crash before it was freed).
func (s *Store) LobbyByCode(ctx context.Context, code string) (domain.Lobby, error) {
	id, err := s.rdb.Get(ctx, s.keys.lobbyCodeKey(code)).Result()
	if errors.Is(err, redis.Nil) {
		return domain.Lobby{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Lobby{}, fmt.Errorf("look up lobby code: %w", err)
	}
	l, err := s.Lobby(ctx, id)
	if err != nil {
		return domain.Lobby{}, err
	}
	if l.Code != code {
		s.releaseCode(ctx, code, id)
		return domain.Lobby{}, domain.ErrNotFound
	}
	return l, nil
}

// PlayerLobby returns the lobby the player is a member of, or ErrNotFound.
func (s *Store) PlayerLobby(ctx context.Context, playerID string) (domain.Lobby, error) {
	id, err := s.rdb.Get(ctx, s.keys.playerLobbyKey(playerID)).Result()
	if errors.Is(err, redis.Nil) {
		return domain.Lobby{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Lobby{}, fmt.Errorf("read lobby place of %s: %w", playerID, err)
	}
	return s.LobbyOf(ctx, playerID, id)
}

// LobbyOf reads the lobby a player's lobby claim names (as
// Attachment.LobbyID holds it), or returns ErrNotFound if it is gone or no
// longer has the player as a member.
func (s *Store) LobbyOf(ctx context.Context, playerID, lobbyID string) (domain.Lobby, error) {
	l, err := s.Lobby(ctx, lobbyID)
	if err != nil {
		return domain.Lobby{}, err
	}
	if _, member := l.Member(playerID); !member {
		return domain.Lobby{}, domain.ErrNotFound
	}
	return l, nil
}

// DropStaleLobbyClaim removes the player's lobby claim if it names a lobby
// that is gone or no longer has them as a member (a claim can outlive its
// lobby) and is older than lobbyClaimGrace. It returns ErrInLobby if the
// claim binds.
func (s *Store) DropStaleLobbyClaim(ctx context.Context, playerID string) error {
	id, age, err := s.lobbyClaim(ctx, playerID)
	if err != nil || id == "" {
		return err
	}
	if binds, err := s.claimBinds(ctx, playerID, id, age); err != nil {
		return err
	} else if binds {
		return domain.ErrInLobby
	}
	s.releaseLobby(ctx, playerID, id)
	return nil
}

// lobbyClaimGrace is how long a new lobby claim binds its player even
// though its lobby does not list them: creating or joining a lobby claims
// the place first and writes the lobby just after, and another connection
// of the same player (a reconnect replacing this one) must not take the
// claim for stale in between.
const lobbyClaimGrace = 10 * time.Second

// lobbyClaim returns the lobby the player holds a claim on ("" for none)
// and the claim's age, from its remaining lifetime (claims are set for
// lobbyTTL and never extended), in one round trip.
func (s *Store) lobbyClaim(ctx context.Context, playerID string) (string, time.Duration, error) {
	pipe := s.rdb.Pipeline()
	get := pipe.Get(ctx, s.keys.playerLobbyKey(playerID))
	ttl := pipe.PTTL(ctx, s.keys.playerLobbyKey(playerID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, fmt.Errorf("read lobby place of %s: %w", playerID, err)
	}
	age := lobbyTTL // no TTL (-1): as old as can be
	if left := ttl.Val(); left > 0 {
		age = lobbyTTL - left
	}
	return get.Val(), age, nil
}

// claimBinds reports whether a player's claim on a lobby still binds them:
// the lobby lists them, or the claim is younger than lobbyClaimGrace.
func (s *Store) claimBinds(ctx context.Context, playerID, lobbyID string, age time.Duration) (bool, error) {
	if age < lobbyClaimGrace {
		return true, nil
	}
	l, err := s.Lobby(ctx, lobbyID)
	if errors.Is(err, domain.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, member := l.Member(playerID)
	return member, nil
}

// JoinLobby adds m to the lobby. ErrNotFound, ErrFull, or ErrConflict when
// the player is in another lobby or the lobby is queued.
func (s *Store) JoinLobby(ctx context.Context, lobbyID string, m domain.LobbyMember) (domain.Lobby, error) {
	if err := s.claimLobby(ctx, m.PlayerID, lobbyID); err != nil {
		return domain.Lobby{}, err
	}
	_, l, _, err := s.applyLobbyRule(ctx, lobbyID, domain.JoinRule(m))
	if err == nil || errors.Is(err, domain.ErrUnchanged) {
		s.indexLobby(ctx, l, false)
		return l, nil
	}
	s.releaseLobby(ctx, m.PlayerID, lobbyID)
	return domain.Lobby{}, err
}

// LeaveLobby takes the player (or, with by set, the owner removing them)
// out of the lobby and releases their place. It reports whether the lobby
// was deleted (nobody left) and returns the lobby after the change (before
// it, when deleted). ErrNotFound if they are not a member; ErrForbidden or
// ErrInvalid for a kick the owner may not make.
func (s *Store) LeaveLobby(ctx context.Context, lobbyID, playerID, by string) (domain.Lobby, bool, error) {
	r := domain.LeaveRule(playerID)
	if by != "" && by != playerID {
		r = domain.KickRule(by, playerID)
	}
	before, l, deleted, err := s.applyLobbyRule(ctx, lobbyID, r)
	switch {
	case errors.Is(err, domain.ErrNotMember):
		s.releaseLobby(ctx, playerID, lobbyID)
		return domain.Lobby{}, false, domain.ErrNotFound
	case err != nil:
		return domain.Lobby{}, false, err
	}
	s.releaseLobby(ctx, playerID, lobbyID)
	if deleted {
		l = before
		s.releaseCode(ctx, l.Code, l.ID)
	}
	s.indexLobby(ctx, l, deleted)
	return l, deleted, nil
}

// UpdateLobby applies the owner's patch (props, visibility, maxMembers;
// nil fields are left alone). A public lobby that turns private gets a new
// code and its old one stops working at once: whoever saw the lobby listed
// (or was in it) may know the old one. A private lobby that turns public
// keeps its code; its members already share it.
func (s *Store) UpdateLobby(ctx context.Context, lobbyID, by string, props map[string]string, visibility string, maxMembers int) (domain.Lobby, error) {
	patch := domain.LobbyPatch{Props: props, Visibility: visibility, MaxMembers: maxMembers}
	if visibility == "private" {
		// Only the rule knows whether the lobby was public, so a code is
		// reserved either way and freed unless the lobby took it.
		code, err := s.reserveCode(ctx, lobbyID, lobbyTTL)
		if err != nil {
			return domain.Lobby{}, err
		}
		patch.NewCode = code
	}
	before, l, _, err := s.applyLobbyRule(ctx, lobbyID, domain.UpdateRule(by, patch))
	took := err == nil && patch.NewCode != "" && l.Code == patch.NewCode // a fresh code: never before.Code
	if patch.NewCode != "" && !took {
		s.releaseCode(ctx, patch.NewCode, lobbyID)
	}
	if err != nil {
		return l, err
	}
	if took {
		// The new code lives as long as the lobby. The old one is freed; a
		// crash before that leaves a key that LobbyByCode ignores.
		if l.CreatedAt > 0 {
			s.rdb.PExpireAt(ctx, s.keys.lobbyCodeKey(patch.NewCode), timeOfMs(l.CreatedAt).Add(lobbyTTL))
		}
		s.releaseCode(ctx, before.Code, lobbyID)
	}
	s.indexLobby(ctx, l, false)
	return l, nil
}

// PromoteInLobby makes target the owner (by must be the owner).
func (s *Store) PromoteInLobby(ctx context.Context, lobbyID, by, target string) (domain.Lobby, error) {
	return s.changeLobby(ctx, lobbyID, domain.PromoteRule(by, target))
}

// SetReady sets the player's readiness, and their skill if skill is not
// nil. ErrConflict while the lobby queues.
func (s *Store) SetReady(ctx context.Context, lobbyID, playerID string, ready bool, skill *float64) (domain.Lobby, error) {
	return s.changeLobby(ctx, lobbyID, domain.ReadyRule(playerID, ready, skill))
}

// AttachLobbyTicket marks the lobby queued with ticketID, if by is the owner,
// every member is ready and the members are still exactly memberIDs (the
// ticket's players). ErrForbidden, ErrConflict (not ready, already queued,
// or members changed meanwhile).
func (s *Store) AttachLobbyTicket(ctx context.Context, lobbyID, by, ticketID string, memberIDs []string) (domain.Lobby, error) {
	return s.changeLobby(ctx, lobbyID, domain.QueueRule(by, ticketID, memberIDs))
}

// LobbyTicketDone moves a lobby whose ticket ended to status (open: the
// ticket was cancelled; matched: its match is ready), if ticketID is still
// the lobby's ticket. A stale ticket leaves the lobby as it is.
func (s *Store) LobbyTicketDone(ctx context.Context, lobbyID, ticketID string, status domain.LobbyStatus) (domain.Lobby, bool, error) {
	_, l, _, err := s.applyLobbyRule(ctx, lobbyID, domain.TicketDoneRule(ticketID, status))
	switch {
	case errors.Is(err, domain.ErrStaleTicket):
		return l, false, nil
	case err != nil:
		return domain.Lobby{}, false, err
	}
	s.indexLobby(ctx, l, false)
	return l, true, nil
}

// changeLobby applies a rule that never deletes the lobby and returns the
// lobby after it (as it is, for a change already made).
func (s *Store) changeLobby(ctx context.Context, lobbyID string, r domain.LobbyRule) (domain.Lobby, error) {
	_, l, _, err := s.applyLobbyRule(ctx, lobbyID, r)
	switch {
	case errors.Is(err, domain.ErrUnchanged):
	case err != nil:
		return l, err
	}
	s.indexLobby(ctx, l, false)
	return l, nil
}

// maxLobbyConflicts bounds how often one change is re-applied because
// others changed the lobby first.
const maxLobbyConflicts = 16

// applyLobbyRule applies r to the lobby atomically: it reads the lobby,
// applies r to the copy read, and writes the result with a compare-and-set
// on what it read (lobby_cas.lua), reading and applying again when another
// change came first. Every applied change increments the version. A lobby
// left with no member is deleted. It returns the lobby as read and after
// the change (both as read when r refused or made no change, with r's
// error), and whether the lobby was deleted. ErrNotFound if there is no
// such lobby.
func (s *Store) applyLobbyRule(ctx context.Context, lobbyID string, r domain.LobbyRule) (before, after domain.Lobby, deleted bool, err error) {
	key := s.keys.lobbyKey(lobbyID)
	for range maxLobbyConflicts {
		raw, err := s.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return domain.Lobby{}, domain.Lobby{}, false, domain.ErrNotFound
		}
		if err != nil {
			return domain.Lobby{}, domain.Lobby{}, false, fmt.Errorf("read lobby %s: %w", lobbyID, err)
		}
		if before, err = decodeLobby(raw); err != nil {
			return domain.Lobby{}, domain.Lobby{}, false, err
		}
		after, _ = decodeLobby(raw) // a copy r may change
		if err := r(&after); err != nil {
			return before, before, false, err
		}
		after.Version = before.Version + 1
		next := ""
		if deleted = len(after.Members) == 0; !deleted {
			if after.Props == nil {
				after.Props = map[string]string{}
			}
			b, err := json.Marshal(after)
			if err != nil {
				return domain.Lobby{}, domain.Lobby{}, false, fmt.Errorf("encode lobby %s: %w", lobbyID, err)
			}
			next = string(b)
		}
		outcome, err := lobbyCASScript.Run(ctx, s.rdb, []string{key}, raw, next).Text()
		if err != nil {
			return domain.Lobby{}, domain.Lobby{}, false, fmt.Errorf("write lobby %s: %w", lobbyID, err)
		}
		switch outcome {
		case "ok":
			return before, after, deleted, nil
		case "missing":
			return domain.Lobby{}, domain.Lobby{}, false, domain.ErrNotFound
		}
	}
	return domain.Lobby{}, domain.Lobby{}, false, fmt.Errorf("lobby %s changed %d times while this change was applied, try again: %w", lobbyID, maxLobbyConflicts, domain.ErrConflict)
}

// PublicLobbies lists up to limit public, open, not full lobbies of the
// queue, newest first.
func (s *Store) PublicLobbies(ctx context.Context, queue string, limit int) ([]domain.Lobby, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.keys.publicLobbiesKey(queue), 0, int64(limit)*2-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list lobbies of %s: %w", queue, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, s.keys.lobbyKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read lobbies of %s: %w", queue, err)
	}
	var out []domain.Lobby
	for i, cmd := range cmds {
		raw, err := cmd.Result()
		if err != nil {
			s.rdb.ZRem(ctx, s.keys.publicLobbiesKey(queue), ids[i]) // gone: drop from the index
			continue
		}
		l, err := decodeLobby(raw)
		if err != nil || l.Visibility != "public" || l.Status != domain.LobbyOpen || len(l.Members) >= l.MaxMembers {
			continue
		}
		if len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}

// Connected reports which of the players have a live presence.
func (s *Store) Connected(ctx context.Context, players []string) (map[string]bool, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(players))
	for i, p := range players {
		cmds[i] = pipe.Exists(ctx, s.keys.presenceKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("look up presence: %w", err)
	}
	out := make(map[string]bool, len(players))
	for i, cmd := range cmds {
		out[players[i]] = cmd.Val() == 1
	}
	return out, nil
}

// SetGraceDeadlines records, per player, when they lose their lobby place
// and solo ticket unless connected by then: one ZADD per grace bucket that
// holds any of them, in one pipeline.
func (s *Store) SetGraceDeadlines(ctx context.Context, deadlines map[string]time.Time) error {
	if len(deadlines) == 0 {
		return nil
	}
	byBucket := make(map[string][]redis.Z)
	for p, d := range deadlines {
		key := s.keys.graceKeyOf(p)
		byBucket[key] = append(byBucket[key], redis.Z{Score: float64(msOf(d)), Member: p})
	}
	pipe := s.rdb.Pipeline()
	for key, zs := range byBucket {
		pipe.ZAdd(ctx, key, zs...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("set grace deadlines of %d players: %w", len(deadlines), err)
	}
	return nil
}

// graceRetry is how long a leased expired grace waits before it is handed
// out again, if its handler did not finish it.
const graceRetry = 30 * time.Second

// LeaseExpiredGraces hands out players whose grace deadline has passed, up
// to limit from each grace bucket (and from the legacy set an older lobbyd
// writes), in one pipeline: fewer than limit in all means none is left
// due. Each is handed to one caller at a time; the caller calls
// GraceHandled when done, or the player is handed out again after 30s (a
// lost reply or a crash only delays them).
//
// A legacy entry of a player who also has a bucket entry is outdated (the
// player has since connected to a node of this version, which keeps their
// deadline in the bucket): it is dropped, not handed out.
func (s *Store) LeaseExpiredGraces(ctx context.Context, now time.Time, limit int) ([]domain.ExpiredGrace, error) {
	lease := msOf(now.Add(graceRetry))
	keys := make([]string, 0, graceBuckets+1)
	for b := range graceBuckets {
		keys = append(keys, s.keys.graceBucketKey(b))
	}
	legacy := s.keys.legacyGracesKey()
	keys = append(keys, legacy)
	cmds := make([]*redis.Cmd, len(keys))
	err := s.execScripted(ctx, func(pipe redis.Pipeliner) {
		for i, key := range keys {
			cmds[i] = popDueScript.EvalSha(ctx, pipe, []string{key}, msOf(now), lease, limit)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("lease expired graces: %w", err)
	}
	var out, fromLegacy []domain.ExpiredGrace
	for i, cmd := range cmds {
		players, _ := cmd.StringSlice()
		for _, p := range players {
			g := domain.ExpiredGrace{PlayerID: p, Set: keys[i], Lease: lease}
			if keys[i] == legacy {
				fromLegacy = append(fromLegacy, g)
			} else {
				out = append(out, g)
			}
		}
	}
	if len(fromLegacy) == 0 {
		return out, nil
	}
	live, err := s.legacyGracesToHandle(ctx, fromLegacy)
	if err != nil {
		return out, nil // leased: handed out again after graceRetry
	}
	return append(out, live...), nil
}

// legacyGracesToHandle returns the legacy graces of players who have no
// bucket entry, and forgets the others'.
func (s *Store) legacyGracesToHandle(ctx context.Context, graces []domain.ExpiredGrace) ([]domain.ExpiredGrace, error) {
	pipe := s.rdb.Pipeline()
	scores := make([]*redis.FloatCmd, len(graces))
	for i, g := range graces {
		scores[i] = pipe.ZScore(ctx, s.keys.graceKeyOf(g.PlayerID), g.PlayerID)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("look up grace buckets: %w", err)
	}
	var live []domain.ExpiredGrace
	for i, g := range graces {
		if scores[i].Err() == nil {
			// Best effort: a leftover is leased again and dropped then.
			s.undoFailed(ctx, "drop outdated legacy grace", s.GraceHandled(ctx, g), "player", g.PlayerID)
			continue
		}
		live = append(live, g)
	}
	return live, nil
}

// GraceHandled forgets a handled grace, unless the player got a new
// deadline meanwhile (they reconnected).
func (s *Store) GraceHandled(ctx context.Context, g domain.ExpiredGrace) error {
	if err := removeIfScoreScript.Run(ctx, s.rdb, []string{g.Set}, g.PlayerID, g.Lease).Err(); err != nil {
		return fmt.Errorf("finish grace of %s: %w", g.PlayerID, err)
	}
	return nil
}
