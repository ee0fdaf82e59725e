package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
)

// waitFor bounds every wait on the server under test.
const waitFor = 10 * time.Second

// echoref is a run() under test.
type echoref struct {
	url  string
	stop func() error // cancels run and returns its error
}

// start calls run with args on a free port and waits until it prints the
// address it listens on.
func start(t *testing.T, args ...string) *echoref {
	t.Helper()
	cmd, url := testutil.StartCommand(t, "echoref listening on ", nil, func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, stdout, stderr)
	})
	return &echoref{url: url, stop: cmd.Stop}
}

// client is one test socket.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

// dial gets a dev token and connects, and returns the client and the
// playerId the token endpoint gave.
func (e *echoref) dial(t *testing.T) (*client, string) {
	t.Helper()
	resp, err := http.Post(e.url+"/v1/dev/token", "application/json", strings.NewReader(`{"name":"alice"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tok struct{ Token, PlayerID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.Len(t, strings.Split(tok.Token, "."), 3, "a JWT, like lobbyd's")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/v1/ws", http.Header{"Authorization": {"Bearer " + tok.Token}})
	require.NoError(t, err)
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}, tok.PlayerID
}

// next reads one frame, within waitFor.
func (c *client) next() map[string]any {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(waitFor))
	var f map[string]any
	require.NoError(c.t, c.ws.ReadJSON(&f))
	return f
}

// ask sends raw and returns the three frames that answer it.
func (c *client) ask(raw string) [3]map[string]any {
	c.t.Helper()
	require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(raw)))
	return [3]map[string]any{c.next(), c.next(), c.next()}
}

func types(fs [3]map[string]any) []any { return []any{fs[0]["type"], fs[1]["type"], fs[2]["type"]} }

func TestWelcomeThenThreeFramesPerRequest(t *testing.T) {
	e := start(t, "-max-users", "2")
	c, playerID := e.dial(t)
	welcome := c.next()
	assert.Equal(t, "welcome", welcome["type"])
	assert.Equal(t, playerID, welcome["playerId"])
	assert.EqualValues(t, 1, welcome["protocol"])
	assert.NotNil(t, welcome["state"])

	ping := c.ask(`{"type":"ping","id":"1"}`)
	assert.Equal(t, []any{"reply", "queue.state", "queue.state"}, types(ping))
	assert.Equal(t, "1", ping[0]["id"])
	assert.Equal(t, true, ping[0]["ok"])
	assert.Nil(t, ping[1]["ticket"], "no ticket before queue.join")

	join := c.ask(`{"type":"queue.join","id":"2","queue":"default"}`)
	assert.Equal(t, []any{"reply", "match.found", "match.ready"}, types(join))
	assert.Equal(t, "2", join[0]["id"])
	assert.Equal(t, true, join[0]["ok"])
	ready := join[2]
	for _, k := range []string{"matchId", "partyId", "invitationId", "networkDescriptor"} {
		assert.NotEmpty(t, ready[k], k)
	}
	assert.Equal(t, []any{map[string]any{"playerId": playerID, "name": "alice"}}, ready["players"])

	leave := c.ask(`{"type":"queue.leave","id":"3"}`)
	assert.Equal(t, []any{"reply", "queue.state", "queue.state"}, types(leave))
	assert.Equal(t, "conflict", leave[0]["error"].(map[string]any)["code"], "the match is ready at once")
	assert.Equal(t, "matched", leave[1]["ticket"].(map[string]any)["status"])

	bad := c.ask(`not json`)
	assert.Equal(t, "bad_request", bad[0]["error"].(map[string]any)["code"])
}

// Consecutive joiners, on any socket, share a match of -max-users.
func TestJoinersGroupedByMaxUsers(t *testing.T) {
	e := start(t, "-max-users", "2")
	var ready []map[string]any
	for range 3 {
		c, _ := e.dial(t)
		c.next() // welcome
		ready = append(ready, c.ask(`{"type":"queue.join","id":"1","queue":"default"}`)[2])
	}
	assert.Equal(t, ready[0]["matchId"], ready[1]["matchId"])
	assert.Equal(t, ready[0]["partyId"], ready[1]["partyId"])
	assert.Equal(t, ready[0]["invitationId"], ready[1]["invitationId"])
	assert.Equal(t, ready[0]["networkDescriptor"], ready[1]["networkDescriptor"])
	assert.NotEqual(t, ready[0]["matchId"], ready[2]["matchId"])
}

// Shutdown closes open sockets with 1001 and run returns cleanly.
func TestShutdownClosesSockets(t *testing.T) {
	e := start(t)
	c, _ := e.dial(t)
	c.next() // welcome
	require.NoError(t, e.stop())
	c.ws.SetReadDeadline(time.Now().Add(waitFor))
	_, _, err := c.ws.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
}

func TestInvalidFlags(t *testing.T) {
	for _, args := range [][]string{{"-max-users", "0"}, {"extra"}} {
		err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
}

// The generator, unchanged, passes against echoref with every check on: a
// preconnected run of a few hundred solo players, all matched in matches of
// -max-users.
func TestLobbyloadAgainstEchoref(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyload")
	}
	bin := filepath.Join(t.TempDir(), "lobbyload")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lobbyd/lobbyd/cmd/lobbyload").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	e := start(t, "-max-users", "4")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-url", e.url, "-players", "300", "-preconnect", "-max-connecting", "64",
		"-duration", "30s", "-progress", "off", "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())

	var rep struct {
		Preconnect       bool           `json:"preconnect"`
		ConnectPhaseSec  float64        `json:"connectPhaseSeconds"`
		Players          int            `json:"players"`
		Connected        int            `json:"connected"`
		Matched          int            `json:"matched"`
		Failed           int            `json:"failed"`
		Lost             int            `json:"lost"`
		Matches          int            `json:"matches"`
		MatchSize        int            `json:"matchSize"`
		ThroughputPerSec float64        `json:"throughputPerSecond"`
		Violations       map[string]int `json:"violations"`
		Latency          map[string]struct {
			Count int `json:"count"`
		} `json:"latencyMs"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	assert.True(t, rep.Preconnect)
	assert.Greater(t, rep.ConnectPhaseSec, 0.0)
	assert.Equal(t, 300, rep.Players)
	assert.Equal(t, 300, rep.Connected)
	assert.Equal(t, 300, rep.Matched)
	assert.Zero(t, rep.Failed)
	assert.Zero(t, rep.Lost)
	assert.Equal(t, 4, rep.MatchSize)
	assert.Equal(t, 75, rep.Matches, "300 players in matches of 4")
	assert.Empty(t, rep.Violations)
	assert.Greater(t, rep.ThroughputPerSec, 0.0)
	assert.Equal(t, 300, rep.Latency["connect"].Count)
	assert.Equal(t, 300, rep.Latency["queueJoinReply"].Count)
	assert.Equal(t, 300, rep.Latency["queueJoinToMatchReady"].Count)
}
