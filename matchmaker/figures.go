package matchmaker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// The operator console's figures of a queue: what its leader saw over the
// last minutes, written to Redis about once a second so that any node's
// admin API can show them. They start again when the lead moves to another
// node (a new leader has seen nothing yet).

// Figures is what a queue's leader reports about it.
type Figures struct {
	// At is when the leader wrote them; Leader is the node.
	At     time.Time `json:"at"`
	Leader string    `json:"leader"`
	// WaitingTickets and WaitingPlayers are the searching tickets and
	// their players at the leader's last pass (held tickets included).
	WaitingTickets int `json:"waitingTickets"`
	WaitingPlayers int `json:"waitingPlayers"`
	// TimeToMatchP50Ms and TimeToMatchP99Ms are the waits of the tickets
	// matched in the last FiguresWindow, from queue.join to match; absent
	// when none was.
	TimeToMatchP50Ms *int64 `json:"timeToMatchP50Ms,omitempty"`
	TimeToMatchP99Ms *int64 `json:"timeToMatchP99Ms,omitempty"`
	// Matched and Expired count the tickets matched and expired in the
	// last FiguresWindow.
	Matched int `json:"matchedLast5m"`
	Expired int `json:"expiredLast5m"`
	// Series has one point per FiguresBucket over the last FiguresSeries,
	// oldest first: the matches formed and tickets expired in it.
	Series []FiguresPoint `json:"series"`
}

// FiguresPoint is one bucket of Figures.Series.
type FiguresPoint struct {
	// Start is the bucket's start, Unix seconds.
	Start   int64 `json:"t"`
	Matches int   `json:"matches"`
	Expired int   `json:"expired"`
}

// The figures' windows.
const (
	FiguresWindow = 5 * time.Minute
	FiguresBucket = 10 * time.Second
	FiguresSeries = 10 * time.Minute
	// figuresEvery is how often a leader writes them, and figuresTTL how
	// long they outlive a leader that stopped.
	figuresEvery = time.Second
	figuresTTL   = 10 * time.Second
	// waitSamples bounds the waits kept for the percentiles: the newest.
	waitSamples = 4096
)

// figures collects one queue's figures on its leader; the Service's mu
// guards it.
type figures struct {
	buckets  []FiguresPoint // oldest first, at most FiguresSeries/FiguresBucket
	waits    []waitSample   // oldest first, at most waitSamples
	tickets  int
	players  int
	lastSent time.Time
}

type waitSample struct {
	at time.Time
	ms int64
}

// bucket returns the bucket of now, adding it (and dropping old ones).
func (f *figures) bucket(now time.Time) *FiguresPoint {
	start := now.Truncate(FiguresBucket).Unix()
	if n := len(f.buckets); n == 0 || f.buckets[n-1].Start != start {
		f.buckets = append(f.buckets, FiguresPoint{Start: start})
		cut := now.Add(-FiguresSeries).Unix()
		i := 0
		for i < len(f.buckets) && f.buckets[i].Start < cut {
			i++
		}
		f.buckets = slices.Delete(f.buckets, 0, i)
	}
	return &f.buckets[len(f.buckets)-1]
}

// matched records a formed match and its tickets' waits.
func (f *figures) matched(now time.Time, waits []time.Duration) {
	f.bucket(now).Matches++
	for _, w := range waits {
		if len(f.waits) == waitSamples {
			f.waits = slices.Delete(f.waits, 0, waitSamples/4)
		}
		f.waits = append(f.waits, waitSample{at: now, ms: w.Milliseconds()})
	}
}

// report returns the figures as of now.
func (f *figures) report(now time.Time, leader string) Figures {
	out := Figures{At: now.UTC(), Leader: leader, WaitingTickets: f.tickets, WaitingPlayers: f.players}
	since := now.Add(-FiguresWindow)
	var ms []int64
	for _, w := range f.waits {
		if !w.at.Before(since) {
			ms = append(ms, w.ms)
		}
	}
	out.Matched = len(ms)
	if len(ms) > 0 {
		slices.Sort(ms)
		p50, p99 := ms[(len(ms)-1)*50/100], ms[(len(ms)-1)*99/100]
		out.TimeToMatchP50Ms, out.TimeToMatchP99Ms = &p50, &p99
	}
	f.bucket(now) // the series ends now, even when nothing happened lately
	for _, b := range f.buckets {
		if b.Start >= since.Unix() {
			out.Expired += b.Expired
		}
	}
	out.Series = slices.Clone(f.buckets)
	return out
}

// figuresOf returns the queue's figures, creating them. s.mu is held.
func (s *Service) figuresOf(queue string) *figures {
	f := s.figures[queue]
	if f == nil {
		f = &figures{}
		s.figures[queue] = f
	}
	return f
}

// noteDepth records the queue's waiting tickets and players at a pass.
func (s *Service) noteDepth(queue string, tickets []*domain.Ticket) {
	players := 0
	for _, t := range tickets {
		players += len(t.Players)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.figuresOf(queue)
	f.tickets, f.players = len(tickets), players
}

// noteExpired records an expired ticket.
func (s *Service) noteExpired(queue string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.figuresOf(queue).bucket(now).Expired++
}

// writeFigures stores the queue's figures if they are due.
func (s *Service) writeFigures(ctx context.Context, queue string, now time.Time) {
	s.mu.Lock()
	f := s.figuresOf(queue)
	if now.Sub(f.lastSent) < figuresEvery {
		s.mu.Unlock()
		return
	}
	f.lastSent = now
	report := f.report(now, s.NodeID)
	s.mu.Unlock()
	b, err := json.Marshal(report)
	if err != nil {
		return
	}
	if err := s.Store.SetQueueFigures(ctx, queue, b, figuresTTL); err != nil && ctx.Err() == nil {
		s.Logger.Warn("store queue figures", "queue", queue, "err", err)
	}
}

// QueueFigures returns the figures the queue's leader last wrote, or
// domain.ErrNotFound when none did within their time to live (no leader).
func (s *Service) QueueFigures(ctx context.Context, queue string) (Figures, error) {
	b, err := s.Store.QueueFigures(ctx, queue)
	if err != nil {
		return Figures{}, err
	}
	var f Figures
	if err := json.Unmarshal(b, &f); err != nil {
		return Figures{}, errors.Join(domain.ErrNotFound, err)
	}
	return f, nil
}

// Leading lists the queues this node leads now, sorted.
func (s *Service) Leading() []string {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for q, led := range s.leading {
		if led {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out
}

// setLeading records whether this node leads the queue.
func (s *Service) setLeading(queue string, led bool) {
	s.mu.Lock()
	s.leading[queue] = led
	if !led {
		delete(s.figures, queue) // a later lead starts afresh
	}
	s.mu.Unlock()
	v := 0.0
	if led {
		v = 1
	}
	s.metrics.leader.WithLabelValues(queue).Set(v)
}
