package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/lobby/lobbytest"
)

// The binary, as `make run` starts it (embedded Redis, fake PlayFab, dev
// auth): it serves, answers a socket, and exits 0 on SIGTERM after closing
// that socket with 1001.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	node := testutil.StartLobbydNode(t, "LOBBYD_LOG_LEVEL=info")
	base := node.URL
	srv := &server{URL: base}

	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	var ready map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ready))
	resp.Body.Close()
	assert.Equal(t, "ready", ready["status"])
	resp, err = http.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the bundled UI")

	token, _ := srv.devToken(t, "bin", "")
	c, _ := lobbytest.Connect(t, srv.wsURL(), token)
	assert.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK())

	require.NoError(t, node.Stop(), "exit status (Stop sends SIGTERM); stderr:\n%s", node.Log())
	assert.Equal(t, 1001, c.CloseCode(), "sockets are told to reconnect elsewhere")
	assert.Contains(t, node.Log(), "shutting down")
}
