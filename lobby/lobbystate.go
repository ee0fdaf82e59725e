package lobby

import (
	"context"
	"sync"
	"time"
)

// lobbyStates paces each lobby's lobby.state on this node: the first change
// after a quiet interval is sent at once; the changes that follow within
// the interval are merged into one lobby.state, sent when it ends and
// carrying the lobby as stored then. So a member flipping readiness in a
// loop costs the lobby at most one snapshot per interval, the last change
// is always sent, and versions still only grow.
//
// One goroutine (run) owns the schedule; the requests that changed a lobby
// ask it whether to send now. The delayed sends run in goroutines that run
// waits for. When run's context ends, whatever is still pending is sent
// before it returns.
type lobbyStates struct {
	interval time.Duration
	// send reads a lobby and sends its lobby.state to its members.
	send  func(ctx context.Context, lobbyID string)
	admit chan admission
	done  chan struct{} // closed when run has returned
}

type admission struct {
	lobbyID string
	now     chan bool // buffered; true: send at once
}

// stateSlot is a lobby whose last lobby.state went out less than an
// interval ago.
type stateSlot struct {
	sentAt  time.Time
	pending bool // changed since: send when the interval ends
}

func newLobbyStates(interval time.Duration, send func(ctx context.Context, lobbyID string)) *lobbyStates {
	return &lobbyStates{interval: interval, send: send, admit: make(chan admission), done: make(chan struct{})}
}

// sendNow reports whether the lobby's state may go out now; if not, it is
// sent when the lobby's interval ends. Once run has stopped (or ctx ends
// first), every state goes out at once.
func (ls *lobbyStates) sendNow(ctx context.Context, lobbyID string) bool {
	a := admission{lobbyID: lobbyID, now: make(chan bool, 1)}
	select {
	case ls.admit <- a:
		return <-a.now
	case <-ls.done:
	case <-ctx.Done():
	}
	return true
}

// run serves admissions and sends delayed states until ctx is done, then
// sends what is still pending and returns once every send has ended.
func (ls *lobbyStates) run(ctx context.Context, timeout time.Duration) {
	defer close(ls.done)
	slots := make(map[string]*stateSlot)
	// order holds each slot's lobby once, by sentAt: every sentAt is set
	// to now, so the slot set last is always due last.
	var order []string
	timer := time.NewTimer(ls.interval)
	timer.Stop()
	var sends sync.WaitGroup
	sendCtx := context.WithoutCancel(ctx) // pending states still go out at shutdown
	flush := func(lobbyID string) {
		sends.Add(1)
		go func() {
			defer sends.Done()
			ctx, cancel := context.WithTimeout(sendCtx, timeout)
			defer cancel()
			ls.send(ctx, lobbyID)
		}()
	}
	for {
		select {
		case a := <-ls.admit:
			if slot := slots[a.lobbyID]; slot != nil {
				slot.pending = true
				a.now <- false
				continue
			}
			slots[a.lobbyID] = &stateSlot{sentAt: time.Now()}
			if len(order) == 0 {
				timer.Reset(ls.interval)
			}
			order = append(order, a.lobbyID)
			a.now <- true
		case <-timer.C:
			now := time.Now() // not the timer's: admissions may have come since
			for len(order) > 0 {
				id := order[0]
				slot := slots[id]
				if now.Sub(slot.sentAt) < ls.interval {
					break
				}
				order = order[1:]
				if !slot.pending {
					delete(slots, id) // quiet for an interval: the next change goes out at once
					continue
				}
				flush(id)
				slot.sentAt, slot.pending = now, false
				order = append(order, id)
			}
			if len(order) > 0 {
				timer.Reset(slots[order[0]].sentAt.Add(ls.interval).Sub(now))
			}
		case <-ctx.Done():
			timer.Stop()
			for id, slot := range slots {
				if slot.pending {
					flush(id)
				}
			}
			sends.Wait()
			return
		}
	}
}
