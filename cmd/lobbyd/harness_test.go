package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// server is a lobbyd started in-process through run, as production starts it.
type server struct {
	URL    string // http://127.0.0.1:port
	stderr *syncBuffer
	stdout *syncBuffer
	stop   context.CancelFunc
	exited chan error
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
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "lobbyd did not start; stderr:\n%s", s.stderr.String())
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "lobbyd listening on ")
	require.True(t, ok, "unexpected first line %q", line)
	s.URL = addr
	t.Cleanup(func() { s.shutdown(t) })
	return s
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

// frame is any server frame, decoded loosely.
type frame map[string]any

func (f frame) str(key string) string { s, _ := f[key].(string); return s }

func (f frame) obj(key string) frame {
	m, _ := f[key].(map[string]any)
	return frame(m)
}

// client is a test player: a socket with a reader goroutine, so frames
// can be awaited with a deadline.
type client struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	closed chan struct{}
	mu     sync.Mutex
	err    error // the read error that ended the reader (a close code)
	seq    int
	// backlog holds frames read while waiting for another type, in order.
	backlog []frame
}

func dial(t testing.TB, url string, header http.Header) (*client, *http.Response, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, conn: conn, frames: make(chan frame, 256), closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { conn.Close() })
	return c, resp, nil
}

// connect dials as the holder of token and returns the client and its welcome.
func (s *server) connect(t testing.TB, token string) (*client, frame) {
	t.Helper()
	c, _, err := dial(t, s.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	require.NoError(t, err)
	w := c.next("welcome")
	return c, w
}

func (c *client) read() {
	defer close(c.closed)
	defer close(c.frames)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = frame{"type": "!invalid-json", "raw": string(data)}
		}
		c.frames <- f
	}
}

// next returns the first frame of the given type, keeping frames of other
// types for later calls, in order.
func (c *client) next(typ string) frame {
	c.t.Helper()
	for i, f := range c.backlog {
		if f.str("type") == typ {
			c.backlog = append(c.backlog[:i], c.backlog[i+1:]...)
			return f
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("socket closed while waiting for %s: %v (backlog %v)", typ, c.readErr(), c.backlog)
			}
			if f.str("type") == typ {
				return f
			}
			c.backlog = append(c.backlog, f)
		case <-deadline:
			c.t.Fatalf("no %s frame within 10s (backlog %v)", typ, c.backlog)
		}
	}
}

// count returns how many frames of the given type are in the backlog.
func (c *client) count(typ string) int {
	n := 0
	for _, f := range c.backlog {
		if f.str("type") == typ {
			n++
		}
	}
	return n
}

// request sends a request with a fresh id and returns its reply.
func (c *client) request(typ string, fields map[string]any) frame {
	c.t.Helper()
	c.seq++
	id := fmt.Sprint(c.seq)
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	require.NoError(c.t, c.conn.WriteJSON(msg))
	r := c.next("reply")
	require.Equal(c.t, id, r.str("id"), "reply to the request just sent")
	return r
}

// closeCode waits for the server to close the socket and returns the code.
func (c *client) closeCode() int {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			var ce *websocket.CloseError
			if err := c.readErr(); err != nil && asCloseError(err, &ce) {
				return ce.Code
			}
			c.t.Fatalf("socket ended without a close frame: %v", c.readErr())
		case <-time.After(10 * time.Second):
			c.t.Fatalf("socket not closed within 10s")
		}
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

func (c *client) readErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
