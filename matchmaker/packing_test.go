package matchmaker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// TestGroupPacking is a property test: random mixes of lobbies of every
// size and solo players, in queues of several sizes, through the real
// formation and commit. Every match holds exactly MaxUsers players, no
// lobby is split, no ticket is in two matches, and whatever is left could
// not have formed another match.
func TestGroupPacking(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		q := DefaultQueues()[0]
		q.MaxUsers = []int{2, 4, 5, 8}[seed%4]
		t.Run(fmt.Sprintf("seed%d-max%d", seed, q.MaxUsers), func(t *testing.T) {
			st := storetest.Embedded(t)
			notifier := &recordingNotifier{}
			s := &Service{Store: st, Queues: []Queue{q}, NodeID: "n", Notifier: notifier}
			lead(t, s)
			s.init()
			ctx := context.Background()
			tickets := map[string]domain.Ticket{}
			base := time.Now().Add(-time.Hour)
			for i := 0; i < 150; i++ {
				size := 1
				if rng.IntN(2) == 0 { // half the tickets are lobbies of 1..MaxUsers
					size = 1 + rng.IntN(q.MaxUsers)
				}
				tk := domain.Ticket{Queue: q.Name, CreatedAt: base.Add(time.Duration(i) * time.Millisecond)}
				if size > 1 {
					tk.LobbyID = fmt.Sprint("lobby-", i)
				}
				for p := 0; p < size; p++ {
					tk.Players = append(tk.Players, domain.Player{ID: fmt.Sprintf("t%d-p%d", i, p)})
				}
				joined, err := s.Join(ctx, tk)
				require.NoError(t, err)
				tickets[joined.ID] = joined
			}
			for {
				formed := len(notifier.found())
				_, err := s.formOnce(ctx, q)
				require.NoError(t, err)
				if len(notifier.found()) == formed {
					break
				}
			}

			inMatch := map[string]string{}
			for _, m := range notifier.found() {
				assert.Len(t, m.Players, q.MaxUsers, "match %s holds exactly MaxUsers", m.ID)
				byTicket := map[string][]string{}
				for _, p := range m.Players {
					byTicket[p.TicketID] = append(byTicket[p.TicketID], p.ID)
				}
				assert.Len(t, byTicket, len(m.TicketIDs))
				for _, id := range m.TicketIDs {
					prev, twice := inMatch[id]
					assert.False(t, twice, "ticket %s in matches %s and %s", id, prev, m.ID)
					inMatch[id] = m.ID
					assert.Equal(t, tickets[id].PlayerIDs(), byTicket[id], "lobby %s is not split", tickets[id].LobbyID)
				}
				stored, err := st.Match(ctx, q.Name, m.ID)
				require.NoError(t, err)
				assert.ElementsMatch(t, m.TicketIDs, stored.TicketIDs, "what was announced is what was committed")
			}
			left, err := st.SearchingTickets(ctx, q.Name, 1000)
			require.NoError(t, err)
			assert.Equal(t, len(tickets), len(inMatch)+len(left), "every ticket is matched or still searching")
			assert.Empty(t, formMatches(q, left, time.Now()), "nothing left over could form a match")
		})
	}
}
