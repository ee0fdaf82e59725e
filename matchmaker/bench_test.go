package matchmaker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// BenchmarkFormMatches measures grouping alone: 1000 solo tickets into
// matches of 4, per pass.
func BenchmarkFormMatches(b *testing.B) {
	q := DefaultQueues()[0]
	tickets := make([]store.Ticket, 1000)
	for i := range tickets {
		tickets[i] = ticketOf(fmt.Sprint(i), 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := formMatches(q, tickets, time.Now()); len(got) != 250 {
			b.Fatalf("formed %d matches", len(got))
		}
	}
	b.ReportMetric(float64(b.N*len(tickets))/b.Elapsed().Seconds(), "tickets/s")
}

// BenchmarkFormAndCommit measures one formation pass end to end: read the
// oldest 1000 searching tickets from Redis, group them, commit the 250
// matches atomically. Tickets are created outside the timer.
func BenchmarkFormAndCommit(b *testing.B) {
	for _, tier := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{
		{"miniredis", storetest.Embedded},
		{"redis-server", storetest.Real},
	} {
		b.Run(tier.name, func(b *testing.B) {
			st := tier.open(b)
			s := &Service{Store: st, Queues: DefaultQueues(), NodeID: "bench", Notifier: nopNotifier{}}
			s.init()
			q := s.Queues[0]
			ctx := context.Background()
			const batch = 1000
			tickets := 0
			for b.Loop() {
				b.StopTimer()
				for i := 0; i < batch; i++ {
					t := store.Ticket{ID: uuid.NewString(), Queue: q.Name, CreatedAt: time.Now(),
						Players: []store.Player{{ID: uuid.NewString()}}}
					if err := st.CreateTicket(ctx, t); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if _, err := s.formOnce(ctx, q); err != nil {
					b.Fatal(err)
				}
				tickets += batch
			}
			b.StopTimer()
			if depth, _ := st.QueueDepth(ctx, q.Name); depth != 0 {
				b.Fatalf("%d tickets left unmatched", depth)
			}
			b.ReportMetric(float64(tickets)/b.Elapsed().Seconds(), "tickets/s")
		})
	}
}

type nopNotifier struct{}

func (nopNotifier) MatchFound(context.Context, store.Match) error     { return nil }
func (nopNotifier) TicketExpired(context.Context, store.Ticket) error { return nil }
