package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	bin := lobbydBinary(t)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "LOBBYD_DEV_AUTH=true")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "lobbyd listening on ")
	require.True(t, ok, line)
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

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 1001, c.CloseCode(), "sockets are told to reconnect elsewhere")
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status; stderr:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("lobbyd did not exit within 30s of SIGTERM")
	}
	assert.Contains(t, stderr.String(), "shutting down")
}
