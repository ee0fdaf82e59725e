package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
)

// role is what one simulated player does.
type role int

const (
	roleSolo        role = iota // queue.join, wait for match.ready
	roleLeaver                  // queue.join, queue.leave, queue.join again
	roleReconnecter             // queue.join, drop the socket, reconnect
	roleLobbyOwner              // lobby.create, lobby.ready, queue.join once all are ready
	roleLobbyMember             // lobby.join by code, lobby.ready
	roleIdle                    // -connect-only: connect and hold
)

// Reconnecting after a lost socket: exponential backoff with full jitter
// (docs/protocol.md asks clients for back-off and jitter after 1001),
// capped.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
)

// backoff is the wait before attempt n (0, 1, …) of a reconnection: a
// uniformly random duration below min(backoffMax, backoffBase·2ⁿ).
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 16 {
		d = min(backoffMax, backoffBase<<n)
	}
	return rand.N(d)
}

func (r role) String() string {
	return [...]string{"solo", "leaver", "reconnecter", "lobby owner", "lobby member", "idle"}[r]
}

// load is one run: the players, what they share, and the live counters the
// progress line shows.
type load struct {
	cfg    config
	stderr io.Writer
	check  *checker
	http   *http.Client
	// rdb reads Redis's CPU (-redis-url); nil without it.
	rdb *redis.Client
	// connecting bounds the connection attempts in flight (token, dial,
	// welcome), so starting all players at once is not a SYN flood.
	connecting chan struct{}
	nextSource atomic.Uint64
	// total is how many players this process plays: -players, or a
	// worker's share of them.
	total int
	start time.Time
	// queueStart is when players start queueing: the start of the run, or
	// with -preconnect the barrier after the connect phase.
	queueStart time.Time
	matchSize  int // the queue's maxUsers

	connected, searching, matched, failed atomic.Int64
	finished                              atomic.Int64
	// open counts the sockets open now (connected counts players who
	// ever connected).
	open atomic.Int64
	// away counts the players whose socket was lost and who have not had
	// welcome since; back the reconnections after a lost socket that got
	// welcome.
	away, back atomic.Int64
	// lateLeaves counts leaves seen to have landed after match.found only
	// once the player had queued again: each puts one player too many in
	// the queue (see startSettle).
	lateLeaves  atomic.Int64
	lastMatchAt atomic.Int64 // unix nanoseconds
	// lastLateAt is when the last late leave was seen (unix nanoseconds).
	lastLateAt atomic.Int64
	// allDone is closed once every player is matched or failed: matched
	// players hold their sockets until then, so late duplicates are seen.
	allDone     chan struct{}
	allDoneOnce sync.Once
	// holdEnd ends the matched players' hold: allDone, or in a worker of
	// -procs the parent's word that the players of every worker are done.
	holdEnd <-chan struct{}
	// urls counts, per -url, what happened there (see urlCounters).
	urls []urlCounters
	// link is the parent, in a worker of -procs; nil otherwise.
	link *workerLink
	// workers are the worker processes, in the parent of -procs: their
	// live counts feed the sampler and the progress line.
	workers []*workerProc

	// host and build describe the machine and the code, for the report.
	host  *hostInfo
	build *buildInfo
}

// urlCounters are the figures of one -url, as the report's urls give them.
type urlCounters struct {
	// connected: players whose first connection reached it; reconnects:
	// reconnections that reached it (after a lost socket, and
	// -reconnect-share's drops); lost: its sockets the server closed or
	// that broke under a player; failures: connection attempts to it that
	// failed (token, dial, handshake or welcome); matched: players whose
	// match.ready came on one of its sockets.
	connected, reconnects, lost, failures, matched atomic.Int64
}

func newLoad(cfg config, stderr io.Writer) *load {
	l := &load{
		cfg: cfg, stderr: stderr, check: newChecker(),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: cfg.MaxConnecting, IdleConnTimeout: 30 * time.Second,
		}},
		connecting: make(chan struct{}, cfg.MaxConnecting),
		allDone:    make(chan struct{}),
		urls:       make([]urlCounters, len(cfg.URLs)),
		total:      cfg.Players,
	}
	l.holdEnd = l.allDone
	return l
}

// prepare does what every run does first, in one process or as the parent
// of -procs workers: checks the queue, connects to -redis-url, reads the
// host and build; done releases what it took.
func (l *load) prepare(ctx context.Context) (done func(), err error) {
	done = func() { l.http.CloseIdleConnections() }
	if err := l.checkQueue(ctx); err != nil {
		done()
		return nil, err
	}
	if l.cfg.RedisURL != "" {
		rdb, err := openRedis(l.cfg.RedisURL)
		if err != nil {
			done()
			return nil, err
		}
		l.rdb = rdb
		done = func() { rdb.Close(); l.http.CloseIdleConnections() }
	}
	l.host, l.build = readHostInfo(l.cfg.URLs), readBuildInfo()
	return done, nil
}

// run plays the scenario until every player finished or the duration
// passed, and returns the report. Its error means the run could not start.
func (l *load) run(ctx context.Context) (*report, error) {
	done, err := l.prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	runCtx, cancel := context.WithTimeout(ctx, l.cfg.Duration)
	defer cancel()

	players := l.plan()
	l.total = len(players)
	l.start = time.Now()
	l.queueStart = l.start
	stopSampler := l.startSampler(ctx)
	stopProgress := l.startProgress()
	starting := players
	if l.cfg.Preconnect {
		starting = l.preconnect(runCtx, players)
		l.queueStart = time.Now()
		if l.progressOn() {
			fmt.Fprintf(l.stderr, "%6.0fs connected %d of %d: queueing\n", l.queueStart.Sub(l.start).Seconds(), l.connected.Load(), len(players))
		}
	}
	cpuFrom := l.sampleCPU(ctx)
	// The window ends when the last player is matched or failed, before
	// the goodbyes: disconnecting is left out as connecting is.
	cpuTo := make(chan cpuSample, 1)
	go func() {
		select {
		case <-l.allDone:
		case <-runCtx.Done():
		}
		cpuTo <- l.sampleCPU(ctx)
	}()
	l.play(runCtx, cancel, starting, 0)
	end := time.Now()
	stopProgress()
	r := l.buildReport(l.collect(players), end)
	r.CPU = cpuBetween(cpuFrom, <-cpuTo, r.Matched)
	r.Series = stopSampler()
	return r, nil
}

// play starts the players (at -rate from queueStart, the first of them
// being number offset of the run's schedule, or all at once) and returns
// once every one returned.
func (l *load) play(ctx context.Context, cancel context.CancelFunc, starting []*player, offset int) {
	var wg sync.WaitGroup
	if l.cfg.Rate > 0 && l.cfg.Preconnect {
		// Preconnected players hold their sockets until their turn: each
		// waits for it watching its socket, so that one lost meanwhile is
		// replaced at once, as a client would, and not at its turn.
		last := l.queueStart
		for i, p := range starting {
			at := l.queueStart.Add(time.Duration(float64(offset+i) / l.cfg.Rate * float64(time.Second)))
			last = at
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.waitTurn(ctx, at) {
					p.play(ctx)
				}
			}()
		}
		waitUntil(ctx, last)
		starting = nil
	}
	for i, p := range starting {
		if l.cfg.Rate > 0 {
			at := l.queueStart.Add(time.Duration(float64(offset+i) / l.cfg.Rate * float64(time.Second)))
			if !waitUntil(ctx, at) {
				// Players never started are failed: they count against the run.
				for _, q := range starting[i:] {
					q.fail("not started: run ended")
					q.release()
				}
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.play(ctx)
		}()
	}
	stopSettle := l.startSettle(ctx, cancel)
	wg.Wait()
	stopSettle()
}

// preconnect connects every player (at most -max-connecting at a time,
// from -source-ips) and returns, once each one is connected or failed, the
// connected ones in start order: the barrier before anyone queues.
func (l *load) preconnect(ctx context.Context, players []*player) []*player {
	var wg sync.WaitGroup
	for _, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.preconnect(ctx)
		}()
	}
	wg.Wait()
	var connected []*player
	for _, p := range players {
		if p.conn != nil {
			connected = append(connected, p)
		}
	}
	return connected
}

// startSettle ends the run early (through cancel) once nobody was matched
// for -settle after a leave that landed after match.found was followed by a
// new queue.join: that ticket is one too many, and the tickets left over
// may never form a match.
func (l *load) startSettle(ctx context.Context, cancel context.CancelFunc) (stop func()) {
	if l.cfg.Settle <= 0 || l.cfg.ConnectOnly {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		ticker := time.NewTicker(l.cfg.Settle / 4)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-ticker.C:
				waiting := int64(l.total) - l.finished.Load()
				// Quiet since the last match.ready, and since the late
				// leave: a run whose first match.ready is slow to come
				// (a loaded machine) is not ended before it starts.
				since := max(l.lastMatchAt.Load(), l.lastLateAt.Load(), l.queueStart.UnixNano())
				quiet := now.Sub(time.Unix(0, since)) >= l.cfg.Settle
				if waiting > 0 && l.lateLeaves.Load() > 0 && quiet {
					cancel()
					return
				}
			}
		}
	}()
	return func() { close(done); <-exited }
}

// waitUntil waits until t and reports whether ctx was still live then.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkQueue asks every lobbyd of -url for the queue, so a wrong URL or
// queue name fails at once instead of as thousands of errors. The match
// size is the first URL's.
func (l *load) checkQueue(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	errs := make([]error, len(l.cfg.URLs))
	sizes := make([]int, len(l.cfg.URLs))
	var wg sync.WaitGroup
	for u := range l.cfg.URLs {
		wg.Go(func() { sizes[u], errs[u] = l.checkQueueAt(ctx, u) })
	}
	wg.Wait()
	for u, err := range errs {
		if err != nil {
			if len(l.cfg.URLs) > 1 {
				return fmt.Errorf("%s: %w", l.cfg.URLs[u], err)
			}
			return err
		}
	}
	l.matchSize = sizes[0]
	return nil
}

// checkQueueAt asks the lobbyd of URL u for the queue and returns its
// match size.
func (l *load) checkQueueAt(ctx context.Context, u int) (int, error) {
	r, err := l.get(ctx, u, "/v1/queues")
	if err != nil {
		return 0, fmt.Errorf("reach lobbyd: %w", err)
	}
	defer r.Close()
	var body struct {
		Queues []struct {
			Name     string `json:"name"`
			MaxUsers int    `json:"maxUsers"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		return 0, fmt.Errorf("GET /v1/queues: %w", err)
	}
	var names []string
	for _, q := range body.Queues {
		if q.Name == l.cfg.Queue {
			if l.cfg.LobbyShare > 0 && l.cfg.LobbySize > q.MaxUsers {
				return 0, fmt.Errorf("-lobby-size %d is larger than queue %q's match size %d", l.cfg.LobbySize, q.Name, q.MaxUsers)
			}
			return q.MaxUsers, nil
		}
		names = append(names, q.Name)
	}
	return 0, fmt.Errorf("lobbyd has no queue %q (it has %s)", l.cfg.Queue, strings.Join(names, ", "))
}

// plan gives every player a role and returns them in start order: lobbies
// stay together (their members start one after another), and lobbies,
// leavers, reconnecters and plain players are shuffled among each other.
func (l *load) plan() []*player {
	cfg := l.cfg
	var units [][]*player
	newPlayer := func(r role, g *lobbyGroup) *player {
		return &player{load: l, role: r, group: g}
	}
	if cfg.ConnectOnly {
		for range cfg.Players {
			units = append(units, []*player{newPlayer(roleIdle, nil)})
		}
	} else {
		lobbies := int(math.Round(float64(cfg.Players)*cfg.LobbyShare)) / cfg.LobbySize
		for range lobbies {
			g := newLobbyGroup()
			unit := []*player{newPlayer(roleLobbyOwner, g)}
			for range cfg.LobbySize - 1 {
				unit = append(unit, newPlayer(roleLobbyMember, g))
			}
			units = append(units, unit)
		}
		solos := cfg.Players - lobbies*cfg.LobbySize
		leavers := min(solos, int(math.Round(float64(cfg.Players)*cfg.LeaveShare)))
		reconnecters := min(solos-leavers, int(math.Round(float64(cfg.Players)*cfg.ReconnectShare)))
		for i := range solos {
			r := roleSolo
			switch {
			case i < leavers:
				r = roleLeaver
			case i < leavers+reconnecters:
				r = roleReconnecter
			}
			units = append(units, []*player{newPlayer(r, nil)})
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed))
	rng.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
	var out []*player
	for _, u := range units {
		for _, p := range u {
			p.index = len(out)
			p.url = p.index % len(cfg.URLs)
			p.name = fmt.Sprintf("load-%d", len(out))
			out = append(out, p)
		}
	}
	return out
}

// share is worker w's share of n of the planned players: a contiguous run
// of about len(players)/n of them, of whole units (a unit, a lobby's
// members, belongs to the worker whose run holds its first member, so its
// members share one process).
func share(players []*player, w, n int) []*player {
	cut := func(i int) int {
		for i > 0 && i < len(players) && players[i].group != nil && players[i].group == players[i-1].group {
			i++
		}
		return i
	}
	return players[cut(len(players)*w/n):cut(len(players)*(w+1)/n)]
}

// finish counts a player as done (matched or failed) once; the last one
// closes allDone.
func (l *load) finish() {
	if l.finished.Add(1) == int64(l.total) {
		l.allDoneOnce.Do(func() { close(l.allDone) })
	}
}

// token returns a token for playerID (a new player when empty): signed here
// with -jwt-secret, or from the development endpoint of the lobbyd at URL
// u.
func (l *load) token(ctx context.Context, u int, name, playerID string) (token, id string, err error) {
	if l.cfg.JWTSecret != "" {
		if playerID == "" {
			playerID = uuid.NewString()
		}
		claims := jwt.MapClaims{"sub": playerID, "name": name, "exp": time.Now().Add(24 * time.Hour).Unix()}
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(l.cfg.JWTSecret))
		return token, playerID, err
	}
	body, _ := json.Marshal(map[string]string{"name": name, "playerId": playerID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.URLs[u]+"/v1/dev/token", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.http.Do(req)
	if err != nil {
		return "", "", &connectError{err: fmt.Errorf("dev token: %w", err), retry: true}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		err := fmt.Errorf("dev token: HTTP %d (is lobbyd started with LOBBYD_DEV_AUTH=true? otherwise pass -jwt-secret)", resp.StatusCode)
		return "", "", &connectError{err: err, retry: retryableStatus(resp.StatusCode)}
	}
	var out struct {
		Token    string `json:"token"`
		PlayerID string `json:"playerId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", "", fmt.Errorf("dev token: %w", err)
	}
	return out.Token, out.PlayerID, nil
}

// dialer returns a WebSocket dialer bound to the next source address, if
// any were given.
func (l *load) dialer() *websocket.Dialer {
	nd := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if n := len(l.cfg.SourceIPs); n > 0 {
		ip := l.cfg.SourceIPs[(l.nextSource.Add(1)-1)%uint64(n)]
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  1024,
	}
}

// wsURL is the socket endpoint of the lobbyd at URL u.
func (l *load) wsURL(u int) string {
	return "ws" + strings.TrimPrefix(l.cfg.URLs[u], "http") + "/v1/ws"
}

// startProgress prints a progress line to stderr every second when it is a
// terminal (or -progress on); the returned func stops it.
func (l *load) startProgress() (stop func()) {
	if !l.progressOn() {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		lastMatched, last := int64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				m := l.matched.Load()
				rate := float64(m-lastMatched) / now.Sub(last).Seconds()
				lastMatched, last = m, now
				// Once sockets were lost: the players still away (socket
				// lost, no welcome since) and the reconnections back.
				away, back := l.away.Load(), l.back.Load()
				storm := ""
				if away > 0 || back > 0 {
					storm = fmt.Sprintf("  away %d  back %d", away, back)
				}
				fmt.Fprintf(l.stderr, "%6.0fs connected %d  searching %d  matched %d  failed %d  rate %.0f/s%s\n",
					now.Sub(l.start).Seconds(), l.connected.Load(), l.searching.Load(), m, l.failed.Load(), rate, storm)
			}
		}
	}()
	return func() { close(done); <-exited }
}

// progressOn reports whether progress lines go to stderr.
func (l *load) progressOn() bool {
	return l.cfg.Progress == "on" || (l.cfg.Progress == "auto" && isTerminal(l.stderr))
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
