package matchmaker

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// Join stores only what can count: the regions, and the latencies of
// regions, that the queue serves. A ticket left with no acceptable region
// is refused, as before.
func TestJoinKeepsOnlyServedRegions(t *testing.T) {
	st := storetest.Embedded(t)
	q := DefaultQueues()[0] // EastUs, WestUs, NorthEurope, WestEurope
	s := &Service{Store: st, Queues: []Queue{q}, NodeID: "n", Notifier: nopNotifier{}}
	ctx := context.Background()
	junk := strings.Repeat("x", 118)
	for i, tc := range []struct {
		name          string
		regions       []string
		latencies     map[string]int
		wantRegions   []string
		wantLatencies map[string]int
		wantErr       error
	}{
		{name: "unknown regions dropped, order kept",
			regions: []string{junk, "WestUs", "Mars", "EastUs", "WestUs"}, wantRegions: []string{"WestUs", "EastUs"}},
		{name: "only unknown regions", regions: []string{junk, "Mars"}, wantErr: ErrBadRegion},
		{name: "latencies of unknown regions dropped",
			latencies: map[string]int{junk: 5, "NorthEurope": 30}, wantLatencies: map[string]int{"NorthEurope": 30}},
		{name: "only latencies of unknown regions", latencies: map[string]int{junk: 5}, wantErr: ErrBadRegion},
		{name: "regions, and latencies of unknown regions",
			regions: []string{"WestUs"}, latencies: map[string]int{junk: 5}, wantRegions: []string{"WestUs"}},
		{name: "nothing given: every region of the queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			player := fmt.Sprint("p", i)
			joined, err := s.Join(ctx, domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: player}},
				Regions: tc.regions, Latencies: tc.latencies})
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				_, err := st.PlayerTicket(ctx, player)
				assert.ErrorIs(t, err, domain.ErrNotFound, "nothing stored")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantRegions, joined.Regions)
			assert.Equal(t, tc.wantLatencies, joined.Latencies)
			stored, err := st.PlayerTicket(ctx, player)
			require.NoError(t, err)
			assert.Equal(t, tc.wantRegions, stored.Regions, "the ticket's record")
			assert.Equal(t, tc.wantLatencies, stored.Latencies, "the ticket's record")
			searching, err := st.Tickets(ctx, q.Name, []string{joined.ID})
			require.NoError(t, err)
			require.Len(t, searching, 1)
			assert.Equal(t, tc.wantRegions, searching[0].Regions, "what the leader reads")
			assert.Equal(t, tc.wantLatencies, searching[0].Latencies, "what the leader reads")
		})
	}
}
