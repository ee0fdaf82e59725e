package lobby

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/lobbyd/lobbyd/internal/batch"
	"github.com/lobbyd/lobbyd/internal/domain"
)

// deliveryStore is what delivery needs from Redis.
type deliveryStore interface {
	// PendingMatches returns the undelivered match.ready of each player
	// that has one.
	PendingMatches(ctx context.Context, players []string) (map[string]domain.Addressed, error)
	// AckPendingMatch and AckPendingMatches mark match.ready frames as
	// written to their players' sockets.
	AckPendingMatch(ctx context.Context, playerID, matchID string) error
	AckPendingMatches(ctx context.Context, acks []domain.MatchAck) error
}

// delivery gets every result to the players this node holds: it hands
// node-channel messages to the hub, pushes again the stored results whose
// publish was lost, and acknowledges the match.ready frames written to
// sockets, in batches. The gateway's Run owns its goroutines (relay,
// runAcks).
type delivery struct {
	store   deliveryStore
	hub     *hub
	logger  *slog.Logger
	metrics *gatewayMetrics
	timeout time.Duration // bounds one Redis call
	acks    chan matchAck // delivered match.ready frames, for runAcks
}

func newDelivery(st deliveryStore, h *hub, logger *slog.Logger, m *gatewayMetrics, timeout time.Duration) *delivery {
	return &delivery{store: st, hub: h, logger: logger, metrics: m, timeout: timeout, acks: make(chan matchAck, 4*ackBatch)}
}

// relay hands node-channel messages to the hub.
func (d *delivery) relay(ctx context.Context, sub domain.Subscription) {
	for {
		msg, ok, err := sub.Next(ctx)
		if !ok {
			return
		}
		if err != nil {
			d.logger.Warn("node message", "err", err)
			continue
		}
		if msg.Resubscribed {
			// Whatever was published to this node while the subscription was
			// down is lost: push the stored results of local players now
			// rather than at the next sweep.
			d.logger.Info("node channel resubscribed; redelivering stored match results")
			rctx, cancel := context.WithTimeout(ctx, d.timeout)
			d.redeliver(rctx, d.hub.presences(ctx))
			cancel()
			continue
		}
		d.hub.send(ctx, msg)
	}
}

// redeliver pushes results stored for connected players but never written
// to their sockets: a publish is lost if it happens while this node's
// subscription is reconnecting to Redis. Each connection still shows a
// match.ready once.
func (d *delivery) redeliver(ctx context.Context, entries map[string]domain.Presence) {
	players := make([]string, 0, len(entries))
	for p := range entries {
		players = append(players, p)
	}
	pending, err := d.store.PendingMatches(ctx, players)
	if err != nil {
		d.logger.Warn("look for undelivered matches", "err", err)
		return
	}
	if len(pending) == 0 {
		return
	}
	msg := domain.NodeMessage{Events: make([]domain.Addressed, 0, len(pending))}
	for _, a := range pending {
		msg.Events = append(msg.Events, a)
	}
	d.metrics.redelivered.Add(float64(len(pending)))
	d.hub.send(ctx, msg)
}

// ack clears the player's undelivered copy of a match once its
// match.ready is written, and returns a channel closed when that is done
// (or has failed: the copy then only means a duplicate that the client
// ignores). Acks are batched by runAcks, one pipeline for the acks of
// many sessions; when its queue is full the ack is made at once instead.
func (d *delivery) ack(ctx context.Context, playerID, matchID string) <-chan struct{} {
	d.metrics.matchesDelivered.Inc()
	a := matchAck{MatchAck: domain.MatchAck{PlayerID: playerID, MatchID: matchID}, done: make(chan struct{})}
	select {
	case d.acks <- a:
		return a.done
	default:
	}
	defer close(a.done)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if err := d.store.AckPendingMatch(ctx, playerID, matchID); err != nil && !errors.Is(err, context.Canceled) {
		d.logger.Warn("ack delivered match", "player", playerID, "match", matchID, "err", err)
	}
	return a.done
}

type matchAck struct {
	domain.MatchAck
	done chan struct{} // closed once sent
}

// ackBatch bounds the acks sent in one pipeline.
const ackBatch = 512

// runAcks sends queued acks in batches until acks is closed (after the
// last connection ended) and every ack queued before has been sent. Each
// batch is tried once, so the sessions waiting on it move on; acks that
// failed because Redis was unavailable go to retryAcks, which sends them
// again with backoff while the gateway runs. An ack never made leaves a
// copy that is shown again on a later connection, but only until the
// player queues again (see store.DeliverMatch).
func (d *delivery) runAcks(ctx context.Context) {
	failed := make(chan []domain.MatchAck, 16)
	retried := make(chan struct{})
	go func() { defer close(retried); d.retryAcks(ctx, failed) }()
	defer func() { close(failed); <-retried }()
	batch.Each(d.acks, ackBatch, func(batch []matchAck) {
		acks := make([]domain.MatchAck, len(batch))
		for i, a := range batch {
			acks[i] = a.MatchAck
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout)
		err := d.store.AckPendingMatches(actx, acks)
		cancel()
		for _, a := range batch {
			close(a.done)
		}
		switch {
		case err == nil:
		case errors.Is(err, domain.ErrUnavailable) && ctx.Err() == nil:
			select {
			case failed <- acks:
			default:
				d.logger.Warn("ack delivered matches: retry queue full, dropped", "matches", len(acks), "err", err)
			}
		default:
			d.logger.Warn("ack delivered matches", "matches", len(acks), "err", err)
		}
	})
}

// maxAckRetries bounds the acks retryAcks holds; beyond it the oldest are
// dropped (each only means a duplicate on a later connection).
const maxAckRetries = 100 * ackBatch

// retryAcks sends again, with backoff, the acks that failed while Redis was
// unavailable, until they go through or ctx is done, and returns once
// failed is closed.
func (d *delivery) retryAcks(ctx context.Context, failed <-chan []domain.MatchAck) {
	var pending []domain.MatchAck
	var wait <-chan time.Time
	retry := 0
	for {
		select {
		case acks, ok := <-failed:
			if !ok {
				if len(pending) > 0 {
					d.logger.Warn("ack delivered matches: gave up at shutdown", "matches", len(pending))
				}
				return
			}
			if ctx.Err() != nil {
				continue
			}
			if drop := len(pending) + len(acks) - maxAckRetries; drop > 0 {
				pending = pending[min(drop, len(pending)):]
			}
			pending = append(pending, acks...)
			if wait == nil {
				retry = 1
				wait = time.After(ackBackoff(retry))
				d.logger.Warn("ack delivered matches: retrying while Redis is unavailable", "matches", len(pending))
			}
		case <-wait:
			wait = nil
			if ctx.Err() != nil {
				continue
			}
			for len(pending) > 0 {
				n := min(len(pending), ackBatch)
				actx, cancel := context.WithTimeout(ctx, d.timeout)
				err := d.store.AckPendingMatches(actx, pending[:n])
				cancel()
				if err != nil && errors.Is(err, domain.ErrUnavailable) {
					retry++
					wait = time.After(ackBackoff(retry))
					break
				}
				if err != nil {
					d.logger.Warn("ack delivered matches", "matches", n, "err", err)
				}
				pending = pending[n:]
			}
		}
	}
}

// ackBackoff is the wait before the retry-th try of failed acks: doubling
// from 50ms up to 2s, with jitter so that nodes do not retry in step.
func ackBackoff(retry int) time.Duration {
	d := min(50*time.Millisecond<<min(retry-1, 6), 2*time.Second)
	return d/2 + rand.N(d/2+1)
}
