package lobby

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/wait"
)

// presenceStore is what presence and grace need from Redis.
type presenceStore interface {
	RefreshPresence(ctx context.Context, entries map[string]domain.Presence, ttl time.Duration) (map[string]domain.Presence, error)
	ClearPresence(ctx context.Context, playerID string, p domain.Presence) (bool, error)
	Connected(ctx context.Context, players []string) (map[string]bool, error)
	SetGraceDeadlines(ctx context.Context, deadlines map[string]time.Time) error
	LeaseExpiredGraces(ctx context.Context, now time.Time, limit int) ([]domain.ExpiredGrace, error)
	GraceHandled(ctx context.Context, g domain.ExpiredGrace) error
	PlayerLobby(ctx context.Context, playerID string) (domain.Lobby, error)
	PlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error)
	CancelPlayerTicket(ctx context.Context, playerID string) (domain.Ticket, error)
}

// presence keeps the players this node holds reachable and ends the grace
// period of those who stayed away. It refreshes their presence and grace
// deadlines (and has delivery push what they missed), and sweeps expired
// graces: the player leaves their lobby and their solo ticket is
// cancelled. The gateway's Run owns its goroutines (refresh, sweepGraces).
type presence struct {
	store  presenceStore
	hub    *hub
	logger *slog.Logger
	// ttl is a presence's lifetime (refreshed every third), grace a
	// disconnected player's grace period, sweep how often expired graces
	// are looked for.
	ttl, grace, sweep time.Duration
	// redeliver pushes the stored results of connected players (delivery).
	redeliver func(ctx context.Context, entries map[string]domain.Presence)
	// leaveLobby takes a player whose grace ran out out of their lobby (the
	// lobby service).
	leaveLobby func(ctx context.Context, l domain.Lobby, player string) error
}

// refresh renews the presence and grace deadline of every player the hub
// holds, every third of a presence lifetime, until ctx is done.
func (p *presence) refresh(ctx context.Context) {
	wait.Every(ctx, p.ttl/3, func(time.Time) {
		entries := p.hub.presences(ctx)
		rctx, cancel := context.WithTimeout(ctx, p.ttl/3)
		defer cancel()
		restored, err := p.store.RefreshPresence(rctx, entries, p.ttl)
		if err != nil {
			p.logger.Warn("refresh presence", "err", err)
		}
		p.undoStaleRestores(rctx, restored)
		deadlines := make(map[string]time.Time, len(entries))
		for player := range entries {
			deadlines[player] = p.connectedGraceDeadline()
		}
		if err := p.store.SetGraceDeadlines(rctx, deadlines); err != nil {
			p.logger.Warn("extend grace deadlines", "err", err)
		}
		p.redeliver(rctx, entries)
	})
}

// undoStaleRestores clears presences the refresh restored for players whose
// socket closed while the refresh was under way: it worked from a snapshot
// of the hub, and restoring a presence that had just been cleared would show
// a departed player connected for a minute.
func (p *presence) undoStaleRestores(ctx context.Context, restored map[string]domain.Presence) {
	if len(restored) == 0 {
		return
	}
	now := p.hub.presences(ctx)
	for player, was := range restored {
		if now[player] != was {
			if _, err := p.store.ClearPresence(ctx, player, was); err != nil {
				p.logger.Warn("clear stale presence", "player", player, "err", err)
			}
		}
	}
}

// connectedGraceDeadline is the grace deadline of a connected player: their
// node renews it while they stay; if the node dies, it passes one presence
// lifetime plus the grace period after the last renewal.
func (p *presence) connectedGraceDeadline() time.Time {
	return time.Now().Add(p.ttl + p.grace)
}

// sweepGraces ends the grace period of players who stayed away: they leave
// their lobby and their solo ticket is cancelled. Every node sweeps; each
// expired grace is handed to one of them.
func (p *presence) sweepGraces(ctx context.Context) {
	wait.Every(ctx, p.sweep, func(time.Time) {
		for {
			graces, err := p.store.LeaseExpiredGraces(ctx, time.Now(), 100)
			if err != nil {
				if ctx.Err() == nil {
					p.logger.Warn("sweep graces", "err", err)
				}
				return
			}
			for _, gr := range graces {
				if p.expire(ctx, gr.PlayerID) {
					if err := p.store.GraceHandled(ctx, gr); err != nil && ctx.Err() == nil {
						p.logger.Warn("finish grace", "player", gr.PlayerID, "err", err)
					}
				}
			}
			if len(graces) < 100 {
				return
			}
		}
	})
}

// expire ends one player's grace period, unless they are connected. It
// reports whether the grace is done with (false: try again later).
func (p *presence) expire(ctx context.Context, player string) bool {
	connected, err := p.store.Connected(ctx, []string{player})
	if err != nil {
		return false
	}
	if connected[player] {
		return true // back: their node keeps a new deadline
	}
	log := p.logger.With("player", player)
	l, err := p.store.PlayerLobby(ctx, player)
	switch {
	case err == nil:
		log.Info("grace period over: leaving lobby", "lobby", l.ID)
		if err := p.leaveLobby(ctx, l, player); err != nil {
			log.Warn("remove player from lobby", "err", err)
			return false
		}
	case !errors.Is(err, domain.ErrNotFound):
		return false
	}
	t, err := p.store.PlayerTicket(ctx, player)
	switch {
	case err == nil && t.LobbyID == "" && (t.Status == domain.TicketSearching || t.Status == domain.TicketMatched):
		if _, err := p.store.CancelPlayerTicket(ctx, player); err == nil {
			log.Info("grace period over: ticket cancelled", "ticket", t.ID)
		} else if !errors.Is(err, domain.ErrConflict) && !errors.Is(err, domain.ErrNotFound) {
			return false
		}
	case err != nil && !errors.Is(err, domain.ErrNotFound):
		return false
	}
	return true
}
