package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/lobby/lobbytest"
)

// server is a lobbyd started in-process through run, as production starts it.
type server struct {
	URL      string // http://127.0.0.1:port
	AdminURL string // http://127.0.0.1:port of the admin listener, if on
	stderr   *syncBuffer
	stdout   *syncBuffer
	stop     context.CancelFunc
	exited   chan error
}

// startServer runs lobbyd with the given environment (plus -addr on a free
// port) and waits until it listens. It is stopped at cleanup.
func startServer(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{stderr: &syncBuffer{}, stdout: &syncBuffer{}, stop: cancel, exited: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	go func() {
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), getenv, io.MultiWriter(pw, s.stdout), s.stderr)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		s.exited <- err
	}()
	out := bufio.NewReader(pr)
	line, err := out.ReadString('\n')
	require.NoError(t, err, "lobbyd did not start; stderr:\n%s", s.stderr.String())
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "lobbyd listening on ")
	require.True(t, ok, "unexpected first line %q", line)
	s.URL = addr
	if env["LOBBYD_ADMIN_ADDR"] != "" || slices.Contains(args, "-admin-addr") {
		line, err = out.ReadString('\n')
		require.NoError(t, err, "no admin line; stderr:\n%s", s.stderr.String())
		s.AdminURL, ok = strings.CutPrefix(strings.TrimSpace(line), "lobbyd admin listening on ")
		require.True(t, ok, "unexpected second line %q", line)
	}
	go io.Copy(io.Discard, out)
	t.Cleanup(func() {
		s.shutdown(t)
		if t.Failed() {
			t.Logf("lobbyd's log:\n%s", lastLines(s.stderr.String(), 40))
		}
	})
	return s
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// shutdown stops the server and waits for run to return.
func (s *server) shutdown(t *testing.T) {
	t.Helper()
	s.stop()
	select {
	case err, ok := <-s.exited:
		if ok {
			require.NoError(t, err)
			close(s.exited)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("lobbyd did not stop within 30s")
	}
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws" }

// metric reads one unlabelled metric from GET /metrics (-1 if absent).
func (s *server) metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// connect dials as the holder of token and returns the client and its welcome.
func (s *server) connect(t testing.TB, token string) (*lobbytest.Client, lobbytest.Frame) {
	t.Helper()
	return lobbytest.Connect(t, s.wsURL(), token)
}

// counter reads a labelled counter that is absent until first counted.
func (s *server) counter(t testing.TB, name string) float64 {
	return max(s.metric(t, name), 0)
}

// devToken gets a token from the development endpoint.
func (s *server) devToken(t testing.TB, name, playerID string) (token, id string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "playerId": playerID})
	resp, err := http.Post(s.URL+"/v1/dev/token", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct{ Token, PlayerID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Token, out.PlayerID
}

// syncBuffer captures output written concurrently.
type syncBuffer = testutil.SyncBuffer

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveLobbydBinary()
	os.Exit(code)
}
