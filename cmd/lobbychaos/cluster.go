package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// startWait bounds how long a process may take to accept connections.
const startWait = 20 * time.Second

// cluster is the system under test: one redis-server, the fake PlayFab and
// the lobbyd nodes, on loopback ports picked at the start and kept across
// restarts. Its methods are called from one goroutine at a time (the run's,
// then the fault schedule's, then the run's again), except the read-only
// ones noted.
type cluster struct {
	cfg  config
	dir  string
	http *http.Client

	redisAddr string
	redis     *process
	fakeURL   string
	fake      *process
	nodeAddrs []string
	nodes     []*process
	starts    []int // per node, how many times it was started

	jwtSecret, titleSecret string

	mu sync.Mutex // guards nodes against the final stop from another goroutine
}

// newCluster prepares a cluster; its addresses are found as its processes
// first start (startRedis, startNode), and kept for their restarts.
func newCluster(cfg config, dir string) (*cluster, error) {
	return &cluster{
		cfg: cfg, dir: dir,
		http:        &http.Client{Timeout: 5 * time.Second},
		nodeAddrs:   make([]string, cfg.Nodes),
		nodes:       make([]*process, cfg.Nodes),
		starts:      make([]int, cfg.Nodes),
		jwtSecret:   randomHex(32),
		titleSecret: randomHex(16),
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startRedis starts (or restarts) redis-server with an append-only file in
// the work directory (appendfsync everysec: a killed process loses nothing
// it acknowledged, since its writes are in the kernel already), and waits
// until it answers. A restart keeps the port. redis-server cannot bind
// port 0 and report it, so the first start takes a port the kernel handed
// out a moment before, and tries another if redis-server cannot bind it.
func (c *cluster) startRedis(ctx context.Context) error {
	if c.redisAddr != "" {
		return c.startRedisOn(ctx, c.redisAddr)
	}
	var err error
	for range 10 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err = c.startRedisOn(ctx, addr); err == nil {
			c.redisAddr = addr
			return nil
		}
	}
	return err
}

// startRedisOn starts redis-server on addr and waits until it answers there
// as itself (its process id), not as some other listener on the port.
func (c *cluster) startRedisOn(ctx context.Context, addr string) error {
	_, port, _ := strings.Cut(addr, ":")
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "everysec", "--dir", c.dir,
		"--maxmemory-policy", "noeviction", "--protected-mode", "yes"}
	p, err := startProcess("redis-server", c.cfg.RedisBin, args, nil, filepath.Join(c.dir, "redis.log"), nil)
	if err != nil {
		return err
	}
	pid := 0
	if err := waitFor(ctx, startWait, func() bool {
		pid = redisPID(ctx, addr)
		return pid != 0 || exited(p)
	}); err != nil || pid != p.pid() {
		p.kill()
		return fmt.Errorf("redis-server did not start on %s (see %s)", addr, filepath.Join(c.dir, "redis.log"))
	}
	c.redis = p
	return nil
}

// exited reports whether p has exited.
func exited(p *process) bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// startFake starts the fake PlayFab on a free port with the run's faults.
func (c *cluster) startFake(ctx context.Context, bin string) error {
	args := []string{"-addr", "127.0.0.1:0", "-mode", c.cfg.FakeMode,
		"-error-rate", fmt.Sprint(c.cfg.ErrorRate), "-throttle-rate", fmt.Sprint(c.cfg.ThrottleRate),
		"-drop-rate", fmt.Sprint(c.cfg.DropRate), "-retry-after", c.cfg.RetryAfter.String(),
		"-latency", "20ms", "-jitter", "15ms", "-log-level", "warn"}
	line := make(chan string, 1)
	p, err := startProcess("fakeplayfab", bin, args, []string{"FAKEPLAYFAB_SECRET_KEY=" + c.titleSecret},
		filepath.Join(c.dir, "fakeplayfab.log"), line)
	if err != nil {
		return err
	}
	c.fake = p
	select {
	case l, ok := <-line:
		url, found := strings.CutPrefix(l, "fakeplayfab listening on ")
		if !ok || !found {
			return fmt.Errorf("fakeplayfab did not start (see %s)", filepath.Join(c.dir, "fakeplayfab.log"))
		}
		c.fakeURL = url
	case <-time.After(startWait):
		return fmt.Errorf("fakeplayfab did not start within %v", startWait)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// startNode starts node i on a port it reports, or restarts it on the same
// port, and waits until its
// /readyz answers 200.
func (c *cluster) startNode(ctx context.Context, bin string, i int) error {
	c.starts[i]++
	env := []string{
		"LOBBYD_REDIS_URL=redis://" + c.redisAddr,
		fmt.Sprintf("LOBBYD_NODE_ID=chaos-%d-%d", i+1, c.starts[i]),
		"LOBBYD_JWT_SECRET=" + c.jwtSecret,
		"LOBBYD_PLAYFAB_TITLE_ID=FAKE",
		"LOBBYD_PLAYFAB_SECRET_KEY=" + c.titleSecret,
		"LOBBYD_PLAYFAB_BASE_URL=" + c.fakeURL,
		"LOBBYD_RECONNECT_GRACE=" + c.cfg.Grace.String(),
		"LOBBYD_ALLOCATION_DEADLINE=" + c.cfg.AllocationDeadline.String(),
		"LOBBYD_REQUEUE_HOLD=1s",
		// Every simulated player comes from 127.0.0.1 (docs/operations.md,
		// "Abuse and limits"), and players play a round every few seconds
		// and reconnect after every kill: the per-player budgets are not
		// what this run tests.
		"LOBBYD_ADDR_HANDSHAKE_RATE=0", "LOBBYD_MAX_CONNS_PER_ADDR=0",
		"LOBBYD_HANDSHAKE_RATE=0", "LOBBYD_QUEUE_JOIN_RATE=0",
		"LOBBYD_SHUTDOWN_TIMEOUT=5s",
		"LOBBYD_DEV_AUTH=false",
	}
	addr := c.nodeAddrs[i]
	if addr == "" {
		addr = "127.0.0.1:0" // the first start: lobbyd reports the port it got
	}
	env = append(env, "LOBBYD_ADDR="+addr)
	line := make(chan string, 1)
	p, err := startProcess(fmt.Sprintf("lobbyd-%d", i+1), bin, nil, env, filepath.Join(c.dir, fmt.Sprintf("lobbyd-%d.log", i+1)), line)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[i] = p
	c.mu.Unlock()
	select {
	case l, ok := <-line:
		url, found := strings.CutPrefix(l, "lobbyd listening on http://")
		if !ok || !found {
			return fmt.Errorf("lobbyd node %d did not start (see %s)", i+1, filepath.Join(c.dir, fmt.Sprintf("lobbyd-%d.log", i+1)))
		}
		c.nodeAddrs[i] = url
	case <-time.After(startWait):
		return fmt.Errorf("lobbyd node %d did not start within %v", i+1, startWait)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := waitFor(ctx, startWait, func() bool { return exited(p) || c.nodeReady(i) }); err != nil || exited(p) {
		return fmt.Errorf("lobbyd node %d did not become ready on %s (see %s)", i+1, c.nodeAddrs[i], filepath.Join(c.dir, fmt.Sprintf("lobbyd-%d.log", i+1)))
	}
	return nil
}

// nodeReady reports whether node i's /readyz answers 200. Safe from any
// goroutine.
func (c *cluster) nodeReady(i int) bool {
	return httpOK(c.http, "http://"+c.nodeAddrs[i]+"/readyz")
}

// allReady reports whether every node's /readyz answers 200.
func (c *cluster) allReady() bool {
	for i := range c.nodeAddrs {
		if !c.nodeReady(i) {
			return false
		}
	}
	return true
}

// killNode kills node i with SIGKILL and waits for it to exit.
func (c *cluster) killNode(i int) {
	c.mu.Lock()
	p := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	p.kill()
}

// stopAll stops the nodes (SIGTERM, as an operator would), then the fake
// and Redis. Every process it stops is one this run started.
func (c *cluster) stopAll() {
	c.mu.Lock()
	nodes := append([]*process(nil), c.nodes...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range nodes {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(10 * time.Second) }()
		}
	}
	wg.Wait()
	c.fake.stop(5 * time.Second)
	c.redis.stop(5 * time.Second)
}

// fakeStats reads the fake's call counts.
func (c *cluster) fakeStats(ctx context.Context) (fakeplayfab.Stats, error) {
	var st fakeplayfab.Stats
	err := c.getJSON(ctx, c.fakeURL+"/_fake/stats", &st)
	return st, err
}

// fakeParty is what the fake recorded for one PartyId.
type fakeParty struct {
	Party *struct {
		PartyID                     string `json:"PartyId"`
		SerializedNetworkDescriptor string `json:"SerializedNetworkDescriptor"`
		InvitationID                string `json:"InvitationId"`
	} `json:"party"`
	Request struct {
		NetworkConfiguration struct {
			MaxUsers                     int `json:"MaxUsers"`
			PartyInvitationConfiguration *struct {
				EntityKeys []struct {
					ID string `json:"Id"`
				} `json:"EntityKeys"`
			} `json:"PartyInvitationConfiguration"`
		} `json:"NetworkConfiguration"`
	} `json:"request"`
}

// fakePartyOf reads what the fake recorded for partyID.
func (c *cluster) fakePartyOf(ctx context.Context, partyID string) (fakeParty, error) {
	var fp fakeParty
	err := c.getJSON(ctx, c.fakeURL+"/_fake/parties/"+partyID, &fp)
	return fp, err
}

func (c *cluster) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (c *cluster) postJSON(ctx context.Context, url string, header http.Header, body, out any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// injectSecondParty calls RequestPartyService for partyID as a stray
// second allocator would (faults off first, so the call succeeds and is
// not excused as a retry after a dropped reply).
func (c *cluster) injectSecondParty(ctx context.Context, partyID string, maxUsers int) error {
	if _, err := c.postJSON(ctx, c.fakeURL+"/_fake/faults", nil,
		map[string]any{"ErrorRate": 0, "ThrottleRate": 0, "DropResponseRate": 0}, nil); err != nil {
		return err
	}
	var tok struct {
		Data struct {
			EntityToken string `json:"EntityToken"`
		} `json:"data"`
	}
	status, err := c.postJSON(ctx, c.fakeURL+"/Authentication/GetEntityToken", http.Header{"X-SecretKey": {c.titleSecret}}, map[string]any{}, &tok)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GetEntityToken: HTTP %d: %v", status, err)
	}
	body := map[string]any{
		"PartyId": partyID,
		"NetworkConfiguration": map[string]any{
			"MaxUsers": maxUsers, "MaxDevices": maxUsers, "MaxUsersPerDevice": 1, "MaxDevicesPerUser": 1,
		},
		"PreferredRegions": []string{"EastUs"},
	}
	status, err = c.postJSON(ctx, c.fakeURL+"/Party/RequestPartyService", http.Header{"X-EntityToken": {tok.Data.EntityToken}}, body, nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("RequestPartyService: HTTP %d: %v", status, err)
	}
	return nil
}

// nodeURL is node i's WebSocket endpoint.
func (c *cluster) nodeURL(i int) string { return "ws://" + c.nodeAddrs[i] + "/v1/ws" }
