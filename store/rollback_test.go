package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// warnings decodes the JSON log lines at level WARN.
func warnings(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["level"] == "WARN" {
			out = append(out, rec)
		}
	}
	return out
}

// A lobby ticket whose second player already holds a ticket is refused, and
// the claim taken for the first player is rolled back. When that rollback
// cannot reach Redis, a warning says what was left and whose it is.
func TestFailedRollbackIsLogged(t *testing.T) {
	lossy := storetest.StartLossyRedis(t)
	ctx := context.Background()
	var logs bytes.Buffer // the store logs in the calling goroutine only
	s, err := store.Open(ctx, store.Config{URL: lossy.URL, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.CreateTicket(ctx, soloTicket("q", "bob", time.Now())))
	lobbyTicket := func() domain.Ticket {
		return domain.Ticket{ID: uuid.NewString(), Queue: "q", CreatedAt: time.Now(), LobbyID: "l1",
			Players: []domain.Player{{ID: "alice", Name: "A"}, {ID: "bob", Name: "B"}}}
	}

	first := lobbyTicket()
	require.ErrorIs(t, s.CreateTicket(ctx, first), domain.ErrConflict)
	assert.Empty(t, warnings(t, &logs), "a rollback that worked logs nothing")
	_, err = s.PlayerTicket(ctx, "alice")
	require.ErrorIs(t, err, domain.ErrNotFound, "alice's claim was rolled back")

	// Every compare-and-delete (the rollback of a claim) is refused.
	lossy.RefuseCommandsWith(store.ScriptHashes()["compare_delete"])
	second := lobbyTicket()
	err = s.CreateTicket(ctx, second)
	lossy.RefuseCommandsWith("")
	require.ErrorIs(t, err, domain.ErrConflict)
	require.Positive(t, lossy.Refused(), "the rollback was sent and refused")

	ws := warnings(t, &logs)
	require.Len(t, ws, 1, logs.String())
	assert.Equal(t, "best-effort write failed: roll back ticket claim", ws[0]["msg"])
	assert.Equal(t, "alice", ws[0]["player"])
	assert.Equal(t, "q", ws[0]["queue"])
	assert.Equal(t, second.ID, ws[0]["ticket"])
	assert.NotEmpty(t, ws[0]["err"])
}
