package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/lobbyd/lobbyd/lobby"
)

// player is one connected socket of the bench.
type player struct {
	index int
	id    string
	node  *node
	conn  *websocket.Conn
	// welcomed is closed on the welcome frame; welcomeNode is the node it
	// names.
	welcomed    chan struct{}
	welcomeNode string
	// done is closed when the read loop has ended.
	done chan struct{}
}

func playerID(i int) string { return fmt.Sprintf("dbench-player-%05d", i) }

// ticketID is the one ticket id each player's matches name (see
// bench.match).
func ticketID(i int) string { return fmt.Sprintf("dbench-ticket-%05d", i) }

// connectPlayers opens a socket per player on node i % len(nodes), with a
// token signed by secret, and waits for each welcome. The read loops hand
// every frame to rec.
func connectPlayers(ctx context.Context, cfg config, nodes []*node, secret []byte, rec *recorder) ([]*player, error) {
	auth := &lobby.Authenticator{Secret: secret}
	players := make([]*player, cfg.Players)
	dialer := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.DialConcurrency)
	for i := range players {
		p := &player{index: i, id: playerID(i), node: nodes[i%len(nodes)], welcomed: make(chan struct{}), done: make(chan struct{})}
		players[i] = p
		g.Go(func() error {
			token, err := auth.Issue(lobby.Identity{PlayerID: p.id, Name: p.id}, 6*time.Hour)
			if err != nil {
				return err
			}
			ws := "ws" + strings.TrimPrefix(p.node.url, "http") + "/v1/ws"
			var lastErr error
			for attempt := range 5 {
				if attempt > 0 {
					select {
					case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				conn, resp, err := dialer.DialContext(gctx, ws, http.Header{"Authorization": {"Bearer " + token}})
				if err == nil {
					p.conn = conn
					break
				}
				lastErr = err
				if resp != nil {
					lastErr = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
				}
			}
			if p.conn == nil {
				close(p.done)
				return fmt.Errorf("connect %s to node %d: %w", p.id, p.node.index, lastErr)
			}
			go p.read(rec)
			select {
			case <-p.welcomed:
			case <-p.done:
				return fmt.Errorf("%s: socket to node %d closed before welcome", p.id, p.node.index)
			case <-time.After(15 * time.Second):
				return fmt.Errorf("%s: no welcome from node %d within 15s", p.id, p.node.index)
			case <-gctx.Done():
				return gctx.Err()
			}
			if p.welcomeNode != p.node.id {
				return fmt.Errorf("%s: welcome names node %q, want %q", p.id, p.welcomeNode, p.node.id)
			}
			return nil
		})
	}
	err := g.Wait()
	if err != nil {
		closePlayers(players)
		return nil, err
	}
	return players, nil
}

// closePlayers closes every socket and waits for the read loops.
func closePlayers(players []*player) {
	for _, p := range players {
		if p != nil && p.conn != nil {
			p.conn.Close()
		}
	}
	for _, p := range players {
		if p != nil && p.conn != nil {
			<-p.done
		}
	}
}

// matchReadyPrefix is how lobby marshals every match.ready: its first two
// fields, in this order (lobby.matchReadyEvent).
var matchReadyPrefix = []byte(`{"type":"match.ready","matchId":"`)

// read is the socket's read loop: the time a frame is received is taken
// as soon as its first bytes are there (NextReader returns), before it is
// read whole and parsed.
func (p *player) read(rec *recorder) {
	defer close(p.done)
	var buf bytes.Buffer
	for {
		_, r, err := p.conn.NextReader()
		if err != nil {
			if rec.closing.Load() == 0 {
				rec.socketEnded(p, err)
			}
			return
		}
		at := rec.now()
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			if rec.closing.Load() == 0 {
				rec.socketEnded(p, err)
			}
			return
		}
		data := buf.Bytes()
		if rest, ok := bytes.CutPrefix(data, matchReadyPrefix); ok {
			if end := bytes.IndexByte(rest, '"'); end >= 0 {
				rec.matchReady(p.index, string(rest[:end]), at)
				continue
			}
		}
		var f struct {
			Type    string `json:"type"`
			MatchID string `json:"matchId"`
			Node    string `json:"node"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			rec.other("not JSON")
			continue
		}
		switch f.Type {
		case "welcome":
			select {
			case <-p.welcomed:
				rec.other("welcome again")
			default:
				p.welcomeNode = f.Node
				close(p.welcomed)
			}
		case "match.ready":
			rec.matchReady(p.index, f.MatchID, at)
		default:
			rec.other(f.Type)
		}
	}
}

// recorder holds the send and receive times of every frame of a run, as
// durations since t0 on the monotonic clock (0: not yet).
type recorder struct {
	t0      time.Time
	players int
	runID   string
	sent    []atomic.Int64 // per match: when its MatchReady call started
	recv    []atomic.Int64 // per match × playersPerMatch + slot
	// received counts first receptions; dups, later ones of a frame
	// already received; unknown, match.ready frames of no match of this
	// run or for a player not in the match.
	received, dups, unknown atomic.Int64
	// closing is set once the bench closes the sockets itself.
	closing atomic.Int32

	mu     sync.Mutex
	others map[string]int64 // frames other than match.ready and welcome, by type
	ended  map[string]int64 // sockets that ended during the run, by error
}

func newRecorder(players, matches int, runID string) *recorder {
	return &recorder{t0: time.Now(), players: players, runID: runID,
		sent: make([]atomic.Int64, matches), recv: make([]atomic.Int64, matches*playersPerMatch),
		others: map[string]int64{}, ended: map[string]int64{}}
}

func (r *recorder) now() int64 { return int64(time.Since(r.t0)) }

// matchPlayer is the player in slot j of match k: the matches take the
// players in turn, so each player gets a frame every players/rate seconds
// and never two close together.
func (r *recorder) matchPlayer(k, j int) int { return (k*playersPerMatch + j) % r.players }

// matchID is match k's id, shaped like the uuids of real matches (same
// length): the run's id, then k.
func (r *recorder) matchID(k int) string {
	return fmt.Sprintf("%s-0000-4000-8000-%012d", r.runID, k)
}

// matchIndex reads k back from a match id, or -1.
func (r *recorder) matchIndex(id string) int {
	rest, ok := strings.CutPrefix(id, r.runID+"-0000-4000-8000-")
	if !ok {
		return -1
	}
	k, err := strconv.Atoi(rest)
	if err != nil || k < 0 || k >= len(r.sent) {
		return -1
	}
	return k
}

func (r *recorder) matchReady(playerIndex int, matchID string, at int64) {
	k := r.matchIndex(matchID)
	if k < 0 {
		r.unknown.Add(1)
		return
	}
	slot := ((playerIndex-k*playersPerMatch)%r.players + r.players) % r.players
	if slot >= playersPerMatch {
		r.unknown.Add(1)
		return
	}
	if r.recv[k*playersPerMatch+slot].CompareAndSwap(0, at) {
		r.received.Add(1)
	} else {
		r.dups.Add(1)
	}
}

func (r *recorder) other(kind string) {
	r.mu.Lock()
	r.others[kind]++
	r.mu.Unlock()
}

func (r *recorder) socketEnded(p *player, err error) {
	kind := err.Error()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		kind = fmt.Sprintf("close %d %s", ce.Code, ce.Text)
	}
	r.mu.Lock()
	r.ended[fmt.Sprintf("node %d: %s", p.node.index, kind)]++
	r.mu.Unlock()
}
