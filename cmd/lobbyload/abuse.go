package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lobbyd/lobbyd/internal/wait"
)

// The abuse scenario (-abusers, -pingers) measures what hostile clients cost
// everyone else: well-behaved players ping at a steady pace and record the
// round trip, while abusers flood lobbyd with invalid frames as fast as the
// socket takes them and reconnect as soon as they are closed, ignoring
// Retry-After, as an attacker would.

// pingInterval is the well-behaved players' pace: far within the default
// request budget (20/s).
const pingInterval = 100 * time.Millisecond

// abuseReport is the outcome of an abuse run.
type abuseReport struct {
	URL        string  `json:"url"`
	Scenario   string  `json:"scenario"`
	ElapsedSec float64 `json:"elapsedSeconds"`
	Pingers    int     `json:"pingers"`
	Abusers    int     `json:"abusers"`
	// Ping is the well-behaved players' ping round trip, in ms.
	Ping        percentiles `json:"pingMs"`
	PingErrors  int         `json:"pingErrors"`
	AbuseFrames int64       `json:"abuseFrames"`
	// Closes counts the close codes abusers got; Refused the HTTP statuses
	// of their refused handshakes; Upgrades their accepted ones.
	Closes   map[string]int `json:"closes"`
	Refused  map[string]int `json:"refusedHandshakes"`
	Upgrades int            `json:"upgrades"`
}

type abuseRun struct {
	l *load

	mu       sync.Mutex
	rtts     []time.Duration
	pingErrs int
	frames   int64
	closes   map[string]int
	refused  map[string]int
	upgrades int
}

// runAbuse plays the abuse scenario for the configured duration.
func (l *load) runAbuse(ctx context.Context) (*abuseReport, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Duration)
	defer cancel()
	a := &abuseRun{l: l, closes: map[string]int{}, refused: map[string]int{}}
	conns := make([]*websocket.Conn, 0, l.cfg.Pingers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < l.cfg.Pingers; i++ {
		token, _, err := l.token(ctx, 0, fmt.Sprintf("pinger-%d", i), "")
		if err != nil {
			return nil, err
		}
		c, err := a.dial(ctx, token)
		if err != nil {
			return nil, fmt.Errorf("connect pinger %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); a.ping(ctx, c) }()
	}
	for i := 0; i < l.cfg.Abusers; i++ {
		token, _, err := l.token(ctx, 0, fmt.Sprintf("abuser-%d", i), "")
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.abuse(ctx, token) }()
	}
	wg.Wait()
	return &abuseReport{
		URL: l.cfg.URL, Scenario: fmt.Sprintf("%d players pinging every %v, %d flooding invalid frames", l.cfg.Pingers, pingInterval, l.cfg.Abusers),
		ElapsedSec: time.Since(start).Seconds(), Pingers: l.cfg.Pingers, Abusers: l.cfg.Abusers,
		Ping: newPercentiles(a.rtts), PingErrors: a.pingErrs, AbuseFrames: a.frames,
		Closes: a.closes, Refused: a.refused, Upgrades: a.upgrades,
	}, nil
}

// dial opens a socket and reads its welcome.
func (a *abuseRun) dial(ctx context.Context, token string) (*websocket.Conn, error) {
	c, resp, err := a.l.dialer().DialContext(ctx, a.l.wsURL(0), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if resp != nil {
			return nil, &refusedError{status: resp.StatusCode}
		}
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil {
		c.Close()
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

type refusedError struct{ status int }

func (e *refusedError) Error() string { return "handshake refused: HTTP " + strconv.Itoa(e.status) }

// ping sends a ping every pingInterval and records each round trip. Events
// are ignored; only replies count.
func (a *abuseRun) ping(ctx context.Context, c *websocket.Conn) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id := strconv.Itoa(n)
		sent := time.Now()
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"`+id+`"}`)); err != nil {
			a.pingFailed(ctx)
			return
		}
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				a.pingFailed(ctx)
				return
			}
			var f struct {
				Type string `json:"type"`
				ID   string `json:"id"`
				OK   bool   `json:"ok"`
			}
			if json.Unmarshal(data, &f) != nil || f.Type != "reply" || f.ID != id {
				continue
			}
			a.mu.Lock()
			if f.OK {
				a.rtts = append(a.rtts, time.Since(sent))
			} else {
				a.pingErrs++
			}
			a.mu.Unlock()
			break
		}
	}
}

func (a *abuseRun) pingFailed(ctx context.Context) {
	if ctx.Err() != nil {
		return // the run ended
	}
	a.mu.Lock()
	a.pingErrs++
	a.mu.Unlock()
}

// abuse connects with token again and again until ctx is done, and floods
// each connection with invalid frames until the server closes it.
func (a *abuseRun) abuse(ctx context.Context, token string) {
	for ctx.Err() == nil {
		c, err := a.dial(ctx, token)
		var refused *refusedError
		switch {
		case errors.As(err, &refused):
			a.count(a.refused, strconv.Itoa(refused.status))
			continue // an attacker does not honour Retry-After
		case err != nil:
			a.count(a.refused, "error")
			_ = wait.Sleep(ctx, 10*time.Millisecond)
			continue
		}
		a.mu.Lock()
		a.upgrades++
		a.mu.Unlock()
		a.flood(ctx, c)
	}
}

// flood writes invalid frames until the socket fails, while a reader
// drains replies and notes the close code.
func (a *abuseRun) flood(ctx context.Context, c *websocket.Conn) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	closed := make(chan string, 1)
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				code := "dropped"
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code = strconv.Itoa(ce.Code)
				}
				closed <- code
				return
			}
		}
	}()
	frame := []byte(`{"type":"not-a-request","garbage":` + "[[[[[[[[[[")
	var sent int64
	for {
		if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
			break
		}
		sent++
		select {
		case code := <-closed:
			a.finishFlood(sent, code)
			return
		default:
		}
	}
	c.Close()
	a.finishFlood(sent, <-closed)
}

func (a *abuseRun) finishFlood(sent int64, code string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frames += sent
	a.closes[code]++
}

func (a *abuseRun) count(m map[string]int, key string) {
	a.mu.Lock()
	m[key]++
	a.mu.Unlock()
}

// writeText prints the abuse report.
func (r *abuseReport) writeText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `lobbyload abuse run against %s
scenario: %s, %.1fs
ping round trip (ms): n=%d p50=%.2f p90=%.2f p99=%.2f max=%.2f; ping errors: %d
abusers: %d frames sent, %d upgrades, closes by code %v, refused handshakes by status %v
`, r.URL, r.Scenario, r.ElapsedSec, r.Ping.Count, r.Ping.P50, r.Ping.P90, r.Ping.P99, r.Ping.Max, r.PingErrors,
		r.AbuseFrames, r.Upgrades, r.Closes, r.Refused)
	return err
}

// verdict fails the run when well-behaved players were hurt outright.
func (r *abuseReport) verdict() error {
	if r.PingErrors > 0 {
		return fmt.Errorf("%d pings of well-behaved players failed", r.PingErrors)
	}
	return nil
}
