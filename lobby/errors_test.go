package lobby_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store"
)

// While Redis answers that it cannot serve now (loading its data after a
// restart, a replica during a failover, a cluster reconfiguring), requests
// get unavailable, which a client retries, never internal; once Redis
// serves again, so does the gateway.
func TestRedisNotServingIsUnavailable(t *testing.T) {
	for _, reply := range []string{
		"LOADING Redis is loading the dataset in memory",
		"READONLY You can't write against a read only replica.",
		"CLUSTERDOWN The cluster is down",
		"TRYAGAIN Multiple keys request during rehashing of slot",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
	} {
		t.Run(reply[:len("LOADING")], func(t *testing.T) {
			mr := miniredis.RunT(t)
			st, err := store.Open(context.Background(), store.Config{URL: "redis://" + mr.Addr()})
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			a := startNode(t, st, "node-a", nil)
			c, _ := lobbytest.Connect(t, a.url, token(t, "p1"))

			mr.SetError(reply)
			r := c.Request("queue.join", map[string]any{"queue": "default"})
			assert.Equal(t, "unavailable", r.ErrorCode(), "%v", r)
			assert.Equal(t, "unavailable", c.Request("queue.leave", nil).ErrorCode())

			mr.SetError("")
			assert.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK())
		})
	}
}
