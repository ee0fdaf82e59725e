package lobby

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// What an operator does to players, lobbies and this node (the admin API of
// cmd/lobbyd calls these). Each works from any node: a player connected
// elsewhere is reached through the node channel, like a delivery.

// Connections returns the number of sockets this node holds.
func (g *Gateway) Connections() int {
	g.init()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// Draining reports whether Drain was called.
func (g *Gateway) Draining() bool {
	g.init()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.draining
}

// Drain stops this node taking sockets (handshakes get 503, so a load
// balancer sends players elsewhere) and closes the ones it holds with
// 1001, spread evenly over period (0: DrainPeriod) so that their
// reconnects do not arrive at the other nodes at once. It returns false
// if the node was draining already. Run does the closing; it stops when
// Run returns.
func (g *Gateway) Drain(period time.Duration) bool {
	g.init()
	if period <= 0 {
		period = g.DrainPeriod
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		return false
	}
	g.draining = true
	g.metrics.draining.Set(1)
	g.drain <- period // buffered: the only send
	return true
}

// drainStep is how often a drain closes its next share of connections.
const drainStep = 100 * time.Millisecond

// runDrain waits for Drain, then closes the node's connections a share at
// a time until period has passed; the last step closes whatever is left.
func (g *Gateway) runDrain(ctx context.Context) {
	var period time.Duration
	select {
	case period = <-g.drain:
	case <-ctx.Done():
		return
	}
	end := time.Now().Add(period)
	g.Logger.Info("draining: closing connections", "period", period)
	tick := time.NewTicker(drainStep)
	defer tick.Stop()
	for {
		// A step that runs late (a busy machine) closes the rest at once.
		steps := max(1, int(time.Until(end)/drainStep)+1)
		// A socket admitted just before the drain began registers after
		// it: wait for every admitted one, not only the registered ones.
		if g.hub.closeConns(ctx, closeRequest{steps: steps, code: closeGoingAway, text: "node draining, reconnect"}) <= 0 && g.Connections() == 0 {
			g.Logger.Info("drained: no connection left")
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// DrainNode drains the node nodeID: this one at once, another through its
// node channel (a node of an earlier version ignores it). period 0 is the
// draining node's DrainPeriod.
func (g *Gateway) DrainNode(ctx context.Context, nodeID string, period time.Duration) error {
	g.init()
	if nodeID == g.NodeID {
		g.Drain(period)
		return nil
	}
	return g.Store.Publish(ctx, nodeID, domain.NodeMessage{Drain: &domain.Drain{PeriodMs: period.Milliseconds()}})
}

// DisconnectPlayer closes the player's socket, on whichever node holds it,
// with 4005. It reports false when the player is not connected.
func (g *Gateway) DisconnectPlayer(ctx context.Context, playerID string) (bool, error) {
	g.init()
	p, found, err := g.Store.PresenceOf(ctx, playerID)
	if err != nil || !found {
		return false, err
	}
	msg := domain.NodeMessage{Disconnect: &domain.Disconnect{PlayerID: playerID}}
	if p.NodeID == g.NodeID {
		g.hub.send(ctx, msg)
		return true, nil
	}
	if err := g.Store.Publish(ctx, p.NodeID, msg); err != nil {
		return false, err
	}
	return true, nil
}

// CancelTicket ends the player's ticket as queue.leave would, and tells
// its players with queue.state cancelled, reason "operator". A lobby's
// ticket takes the lobby out of the queue, as when a member leaves it.
func (g *Gateway) CancelTicket(ctx context.Context, playerID string) (domain.Ticket, error) {
	g.init()
	t, err := g.Queues.Leave(ctx, playerID)
	if err != nil {
		return domain.Ticket{}, err
	}
	state := mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(t), Reason: "operator"})
	return t, g.ticketLeft(ctx, t, state)
}

// ticketLeft tells a cancelled ticket's players (state is their
// queue.state) and reopens its lobby, if it has one (see ticketEnded).
func (g *Gateway) ticketLeft(ctx context.Context, t domain.Ticket, state []byte) error {
	return ticketEnded(ctx, g.Store, t, state, g.lobbies.lobbyEvents)
}

// KickFromLobby takes a member out of a lobby, as its owner's lobby.kick
// would: the player gets lobby.removed (reason kicked), the others
// lobby.state. ErrNotFound when there is no such lobby or member.
func (g *Gateway) KickFromLobby(ctx context.Context, lobbyID, playerID string) error {
	g.init()
	l, err := g.Store.Lobby(ctx, lobbyID)
	if err != nil {
		return err
	}
	if _, member := l.Member(playerID); !member {
		return fmt.Errorf("%s is not in lobby %s: %w", playerID, lobbyID, domain.ErrNotFound)
	}
	change, err := g.lobbies.removeMember(ctx, l, playerID, "", "kicked")
	if err != nil {
		return err
	}
	return g.lobbies.announce(ctx, change)
}

// CloseLobby ends a lobby: every member is taken out of it (its ticket
// cancelled, if it is queued) and gets lobby.removed with reason closed.
// ErrNotFound when there is no such lobby.
func (g *Gateway) CloseLobby(ctx context.Context, lobbyID string) error {
	g.init()
	l, err := g.Store.Lobby(ctx, lobbyID)
	if err != nil {
		return err
	}
	var errs []error
	for _, player := range l.MemberIDs() {
		change, err := g.lobbies.removeMember(ctx, l, player, "", "closed")
		if err == nil {
			err = g.lobbies.announce(ctx, change)
			l = change.lobby
		}
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove %s: %w", player, err))
		}
	}
	return errors.Join(errs...)
}
