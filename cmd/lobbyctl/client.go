package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// common are the flags every command that connects takes.
type common struct {
	url   string
	token string
	name  string
	raw   bool
}

func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "lobbyd's base URL")
	fs.StringVar(&c.token, "token", "", "the player's token; empty: get a development token (needs LOBBYD_DEV_AUTH)")
	fs.StringVar(&c.name, "name", "", "with no -token, the new player's name (default: one lobbyd makes up)")
	fs.BoolVar(&c.raw, "json", false, "print each frame as the JSON lobbyd sent")
}

// newFlagSet makes a command's flag set, printing its usage to stderr.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("lobbyctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: lobbyctl %s [flags]\n\n%s\n\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token NAME", "Gets a development token for a new player (lobbyd with LOBBYD_DEV_AUTH). Prints the token; the player id goes to stderr.", stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "lobbyd's base URL")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("token takes one NAME, got %q", fs.Args())
	}
	token, id, err := devToken(ctx, *base, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintln(stderr, "player id:", id)
	return nil
}

// reorder puts flags before positional arguments, so "token alice -url U"
// works as well as "token -url U alice".
func reorder(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			flags = append(flags, args[i])
			if !strings.Contains(args[i], "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		rest = append(rest, args[i])
	}
	return append(flags, rest...)
}

// devToken asks lobbyd's development endpoint for a token.
func devToken(ctx context.Context, base, name string) (token, playerID string, err error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	if name == "" {
		body = nil // every field is optional
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/dev/token", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("get a token: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Token    string `json:"token"`
		PlayerID string `json:"playerId"`
		Error    *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && resp.StatusCode == http.StatusOK {
		return "", "", fmt.Errorf("get a token: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", "", errors.New("get a token: lobbyd does not serve development tokens (start it with LOBBYD_DEV_AUTH=true, as make run does, or pass -token)")
	case resp.StatusCode != http.StatusOK && out.Error != nil:
		return "", "", fmt.Errorf("get a token: HTTP %d: %s", resp.StatusCode, out.Error.Message)
	case resp.StatusCode != http.StatusOK:
		return "", "", fmt.Errorf("get a token: HTTP %d", resp.StatusCode)
	}
	return out.Token, out.PlayerID, nil
}

// session is a player's socket.
type session struct {
	conn   *websocket.Conn
	out    io.Writer
	raw    bool
	seq    int
	frames chan frame
	done   chan error    // the reader's end
	stop   chan struct{} // closed by close: the reader and closer end
}

type frame map[string]any

func (f frame) str(key string) string { s, _ := f[key].(string); return s }
func (f frame) obj(key string) frame  { m, _ := f[key].(map[string]any); return m }

// connect gets a token if needed and opens the player's socket; the reader
// runs until the socket closes.
func (c *common) connect(ctx context.Context, stdout io.Writer) (*session, error) {
	if c.token == "" {
		token, _, err := devToken(ctx, c.url, c.name)
		if err != nil {
			return nil, err
		}
		c.token = token
	}
	u, err := url.Parse(strings.TrimRight(c.url, "/") + "/v1/ws")
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.DialContext(ctx, u.String(), http.Header{"Authorization": {"Bearer " + c.token}})
	if err != nil {
		if resp != nil {
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			return nil, fmt.Errorf("connect: HTTP %d %s: %s", resp.StatusCode, body.Error.Code, body.Error.Message)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	s := &session{conn: conn, out: stdout, raw: c.raw, frames: make(chan frame, 64), done: make(chan error, 1), stop: make(chan struct{})}
	go s.read()
	go func() {
		select {
		case <-ctx.Done():
			s.close()
		case <-s.stop:
		}
	}()
	return s, nil
}

// close says goodbye (1000) and closes the socket; the reader and the
// closer end. The commands defer it.
func (s *session) close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	s.conn.Close()
}

// read hands frames to s.frames until the socket closes, then reports why.
func (s *session) read() {
	defer close(s.frames)
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			s.done <- err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = frame{"type": "?", "raw": string(data)}
		}
		if s.raw {
			fmt.Fprintln(s.out, string(data))
		}
		select {
		case s.frames <- f:
		case <-s.stop:
			return
		}
	}
}

// send sends a request with a fresh id and returns the id.
func (s *session) send(typ string, fields map[string]any) (string, error) {
	s.seq++
	id := fmt.Sprint(s.seq)
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	return id, s.conn.WriteJSON(msg)
}

// closed describes why the socket ended.
func (s *session) closed() error {
	var err error
	select {
	case err = <-s.done:
	case <-s.stop:
		return errors.New("closed")
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Errorf("lobbyd closed the connection: %d %s", ce.Code, ce.Text)
	}
	return fmt.Errorf("connection lost: %w", err)
}
