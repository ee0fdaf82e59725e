// Package lobbytest is a WebSocket test client of lobbyd's protocol: frames
// are read by a goroutine and awaited with deadlines, never with sleeps.
package lobbytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Wait is how long Next and CloseCode wait before failing the test.
var Wait = 10 * time.Second

// Frame is a server frame, decoded loosely.
type Frame map[string]any

// Str returns a string field ("" if absent).
func (f Frame) Str(key string) string { s, _ := f[key].(string); return s }

// Obj returns an object field (nil if absent).
func (f Frame) Obj(key string) Frame {
	m, _ := f[key].(map[string]any)
	return Frame(m)
}

// ErrorCode returns the error code of a failed reply.
func (f Frame) ErrorCode() string { return f.Obj("error").Str("code") }

// OK reports whether a reply succeeded.
func (f Frame) OK() bool { return f["ok"] == true }

// Client is one test player's socket.
type Client struct {
	t    testing.TB
	Conn *websocket.Conn
	// Wait overrides the package's Wait for this client when set.
	Wait time.Duration
	// Frames delivers frames as read; it is closed when the socket ends.
	Frames chan Frame
	mu     sync.Mutex
	err    error // the read error that ended the reader
	seq    int
	// backlog holds frames read while waiting for another type, in order.
	backlog []Frame
}

// Dial opens a socket; the response is returned even when the handshake
// fails, so tests can check its status.
func Dial(t testing.TB, url string, header http.Header) (*Client, *http.Response, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	c := &Client{t: t, Conn: conn, Frames: make(chan Frame, 256)}
	go c.read()
	t.Cleanup(func() { conn.Close() })
	return c, resp, nil
}

// Connect dials with a bearer token and returns the client and its welcome.
func Connect(t testing.TB, url, token string) (*Client, Frame) {
	t.Helper()
	c, resp, err := Dial(t, url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connect: %v (HTTP %d)", err, status)
	}
	return c, c.Next("welcome")
}

func (c *Client) read() {
	defer close(c.Frames)
	for {
		_, data, err := c.Conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var f Frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = Frame{"type": "!invalid-json", "raw": string(data)}
		}
		c.Frames <- f
	}
}

// Next returns the first frame of the given type, keeping frames of other
// types for later calls, in order.
func (c *Client) Next(typ string) Frame {
	c.t.Helper()
	return c.NextOf(typ)
}

// NextOf returns the first frame of any of the given types, keeping frames
// of other types for later calls, in order.
func (c *Client) NextOf(types ...string) Frame {
	c.t.Helper()
	for i, f := range c.backlog {
		if slices.Contains(types, f.Str("type")) {
			c.backlog = append(c.backlog[:i], c.backlog[i+1:]...)
			return f
		}
	}
	wait := Wait
	if c.Wait > 0 {
		wait = c.Wait
	}
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-c.Frames:
			if !ok {
				c.t.Fatalf("socket closed while waiting for %v: %v (backlog %v)", types, c.ReadErr(), c.backlog)
			}
			if slices.Contains(types, f.Str("type")) {
				return f
			}
			c.backlog = append(c.backlog, f)
		case <-deadline:
			c.t.Fatalf("no %v frame within %v (backlog %v)", types, wait, c.backlog)
		}
	}
}

// Drain moves every frame already received into the backlog, without
// waiting, so Count sees them.
func (c *Client) Drain() {
	for {
		select {
		case f, ok := <-c.Frames:
			if !ok {
				return
			}
			c.backlog = append(c.backlog, f)
		default:
			return
		}
	}
}

// Count returns how many frames of the given type wait in the backlog.
func (c *Client) Count(typ string) int {
	n := 0
	for _, f := range c.backlog {
		if f.Str("type") == typ {
			n++
		}
	}
	return n
}

// Request sends a request with a fresh id and returns its reply.
func (c *Client) Request(typ string, fields map[string]any) Frame {
	c.t.Helper()
	c.seq++
	id := fmt.Sprint(c.seq)
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	if err := c.Conn.WriteJSON(msg); err != nil {
		c.t.Fatalf("send %s: %v", typ, err)
	}
	r := c.Next("reply")
	if r.Str("id") != id {
		c.t.Fatalf("reply %v is not to request %s", r, id)
	}
	return r
}

// CloseCode waits for the server to close the socket and returns the code.
func (c *Client) CloseCode() int {
	c.t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case f, ok := <-c.Frames:
			if ok {
				c.backlog = append(c.backlog, f)
				continue
			}
			var ce *websocket.CloseError
			if errors.As(c.ReadErr(), &ce) {
				return ce.Code
			}
			c.t.Fatalf("socket ended without a close frame: %v", c.ReadErr())
		case <-deadline:
			c.t.Fatalf("socket not closed within %v", Wait)
		}
	}
}

// ReadErr is the error that ended the reader, once it has ended.
func (c *Client) ReadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
