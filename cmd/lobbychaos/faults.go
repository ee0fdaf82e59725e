package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lobbyd/lobbyd/internal/wait"
)

// Fault kinds.
const (
	faultNodeKill     = "node kill"
	faultRedisRestart = "Redis restart"
)

// faultEvent is one fault injected, with the times that measure recovery.
type faultEvent struct {
	Kind string
	Node int // the node killed (0-based); -1 for Redis
	At   time.Time
	// UpAt is when the restarted process accepted connections again.
	UpAt time.Time
	// ReadyAt is when every node's /readyz answered 200 again.
	ReadyAt time.Time
	Err     string // the restart failed: the run cannot go on
}

// target names what the fault hit.
func (e faultEvent) target() string {
	if e.Node < 0 {
		return "redis"
	}
	return fmt.Sprintf("node %d", e.Node+1)
}

// injectFaults runs the fault schedule until ctx ends: every FaultEvery a
// fault, node kills (taking the nodes in turn) and Redis restarts
// alternating, starting with a node kill. It returns the events; a fault
// whose restart failed ends the schedule. A fault that started runs its
// whole course (down time, restart) even if ctx ends meanwhile.
func (r *chaosRun) injectFaults(ctx context.Context) []faultEvent {
	var events []faultEvent
	ticker := time.NewTicker(r.cfg.FaultEvery)
	defer ticker.Stop()
	nextNode := 0
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return events
		case <-ticker.C:
		}
		if ctx.Err() != nil {
			return events // the tick and the end of play came together
		}
		var e faultEvent
		if n%2 == 0 {
			e = r.killNode(ctx, nextNode)
			nextNode = (nextNode + 1) % r.cfg.Nodes
		} else {
			e = r.restartRedis(ctx)
		}
		events = append(events, e)
		r.logf("fault: %s %s at +%.1fs: up after %v, all nodes ready after %v %s", e.Kind, e.target(), e.At.Sub(r.start).Seconds(),
			e.UpAt.Sub(e.At).Round(time.Millisecond), e.ReadyAt.Sub(e.At).Round(time.Millisecond), e.Err)
		if e.Err != "" {
			return events
		}
	}
}

// killNode kills node i with SIGKILL, keeps it down for NodeDown and starts
// it again on the same port.
func (r *chaosRun) killNode(ctx context.Context, i int) faultEvent {
	e := faultEvent{Kind: faultNodeKill, Node: i, At: time.Now()}
	r.cluster.killNode(i)
	_ = wait.Sleep(context.WithoutCancel(ctx), r.cfg.NodeDown) // the planned down time, not a synchronisation
	if err := r.cluster.startNode(context.WithoutCancel(ctx), r.lobbydBin, i); err != nil {
		e.Err = err.Error()
		return e
	}
	e.UpAt = time.Now()
	r.waitAllReady(ctx, &e)
	return e
}

// restartRedis kills redis-server with SIGKILL, keeps it down for
// RedisDown, and starts it again on the same port and append-only file.
func (r *chaosRun) restartRedis(ctx context.Context) faultEvent {
	e := faultEvent{Kind: faultRedisRestart, Node: -1, At: time.Now()}
	r.cluster.redis.kill()
	_ = wait.Sleep(context.WithoutCancel(ctx), r.cfg.RedisDown) // likewise
	if err := r.cluster.startRedis(context.WithoutCancel(ctx)); err != nil {
		e.Err = err.Error()
		return e
	}
	e.UpAt = time.Now()
	r.waitAllReady(ctx, &e)
	return e
}

// waitAllReady records when every node is ready again, within a bound.
func (r *chaosRun) waitAllReady(ctx context.Context, e *faultEvent) {
	const within = 60 * time.Second
	if err := waitFor(context.WithoutCancel(ctx), within, r.cluster.allReady); err != nil {
		e.Err = fmt.Sprintf("not every node was ready within %v of the restart", within)
		return
	}
	e.ReadyAt = time.Now()
}
