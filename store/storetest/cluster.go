package storetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lobbyd/lobbyd/store"
)

// Cluster is a Redis Cluster of redis-server processes on loopback ports,
// started for tests (see StartCluster). Its nodes are numbered in the order
// they were started; Kill, Start and Failover take that number.
type Cluster struct {
	// URL reaches the cluster as a LOBBYD_REDIS_URL:
	// redis+cluster://127.0.0.1:P1,127.0.0.1:P2,... with every node as a seed.
	URL string
	// Addrs are the nodes' host:port, by number.
	Addrs []string

	bin, cli string
	dir      string
	ownsDir  bool // remove dir at Stop (the shared cluster's; a test's is t.TempDir)

	mu    sync.Mutex
	nodes []*clusterNode
}

type clusterNode struct {
	addr string
	proc *redisProcess // nil while the node is not running
}

// clusterNodeTimeout is the cluster-node-timeout of every cluster started
// here. It is short so that the nodes agree quickly: a node that has just
// joined waits about this long (at least 500 ms) before it serves, and a
// killed primary is taken for failed after it. Far shorter would risk a
// busy test machine (the race detector on two cores) stalling a node long
// enough for the others to mark it failed.
const clusterNodeTimeout = 2 * time.Second

// clusterSlots is the number of hash slots of every Redis Cluster.
const clusterSlots = 16384

// StartCluster starts a Redis Cluster for the test and stops it at cleanup:
// primaries primaries (at least 3, as redis-cli requires) with
// replicasPerPrimary replicas each, every node a redis-server without
// persistence on a free loopback port (and its cluster bus port, the port
// plus 10000), joined by `redis-cli --cluster create`. It returns once the
// cluster is ready (see WaitReady), in about 2-4 s. Without redis-server or
// redis-cli the test is skipped, except in CI (CI set), where it fails, as
// for StartRedis. Nodes are started as StartRedis starts redis-server: on a
// port the kernel handed out a moment before, ready only when INFO answers
// with the child's own process id, on another port if it could not bind.
func StartCluster(t testing.TB, primaries, replicasPerPrimary int) *Cluster {
	t.Helper()
	bin, cli := clusterBinaries(t)
	c, err := startCluster(bin, cli, t.TempDir(), false, primaries, replicasPerPrimary)
	if err != nil {
		t.Fatalf("start redis cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// clusterBinaries finds redis-server and redis-cli, or skips the test (fails
// it in CI).
func clusterBinaries(t testing.TB) (bin, cli string) {
	t.Helper()
	var missing []string
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing = append(missing, "redis-server")
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		missing = append(missing, "redis-cli")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed; CI must install it (.ci/run does)", strings.Join(missing, " and "))
		}
		t.Skipf("%s not installed: skipping the Redis Cluster tier (apt-get install redis-server)", strings.Join(missing, " and "))
	}
	return bin, cli
}

func startCluster(bin, cli, dir string, ownsDir bool, primaries, replicas int) (*Cluster, error) {
	if primaries < 3 || replicas < 0 {
		return nil, fmt.Errorf("a cluster of %d primaries with %d replicas each: redis-cli needs at least 3 primaries", primaries, replicas)
	}
	c := &Cluster{bin: bin, cli: cli, dir: dir, ownsDir: ownsDir}
	for range primaries * (1 + replicas) {
		n, err := c.startNewNode()
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.Addrs = append(c.Addrs, n.addr)
	}
	c.URL = "redis+cluster://" + strings.Join(c.Addrs, ",")

	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	if err := c.WaitReady(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// startNewNode starts a node on a free port (see onFreePort).
func (c *Cluster) startNewNode() (*clusterNode, error) {
	n := &clusterNode{}
	err := onFreePort(freeClusterPort, func(addr string) error {
		n.addr = addr
		return c.startNode(n)
	})
	if err != nil {
		return nil, fmt.Errorf("start a cluster node: %w", err)
	}
	return n, nil
}

// freeClusterPort returns a loopback port that is free, as is the port
// 10000 above it, which the node's cluster bus listens on.
func freeClusterPort() (int, error) {
	for attempt := 0; attempt < 100; attempt++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if port+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port with a free cluster bus port (port+10000)")
}

// startNode starts n's redis-server on its address, with its cluster
// configuration file (so a restarted node comes back as the same node), and
// waits until it is ready (see startRedisProcess).
func (c *Cluster) startNode(n *clusterNode) error {
	_, port, _ := net.SplitHostPort(n.addr)
	proc, err := startRedisProcess(c.bin, c.dir, n.addr, filepath.Join(c.dir, "redis-"+port+".log"),
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(c.dir, "nodes-"+port+".conf"),
		"--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10),
		// A replica's first sync starts at once, not after the default 5s
		// wait for other replicas to share it.
		"--repl-diskless-sync-delay", "0")
	if err != nil {
		return err
	}
	n.proc = proc
	return nil
}

// PID returns the process id of node i, 0 while it is not running.
func (c *Cluster) PID(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.nodes[i].proc; p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Kill kills node i with SIGKILL (kill -9 of its process id) and waits for
// it to exit. Its data is lost (no persistence); its cluster configuration
// file stays, for Start. Killing a node that is not running does nothing.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[i].kill()
}

func (n *clusterNode) kill() {
	if n.proc == nil {
		return
	}
	n.proc.kill()
	n.proc = nil
}

// Start restarts node i (killed by Kill) on its address, as the same
// cluster node, and returns once it answers. It comes back empty, and
// rejoins the cluster by itself: a primary whose slots were taken over
// meanwhile comes back as a replica of its successor. Call WaitReady to
// wait until the cluster has settled.
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i].proc != nil {
		return nil
	}
	return c.startNode(c.nodes[i])
}

// Failover asks replica i to take over from its primary (CLUSTER FAILOVER;
// with FORCE when its primary is down, so that it need not wait for the
// primary to be voted failed), and waits until it serves as a primary and
// the cluster is ready again (see WaitReady).
func (c *Cluster) Failover(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := c.client(i)
	defer cl.Close()
	err := cl.Do(ctx, "CLUSTER", "FAILOVER").Err()
	if err != nil && strings.Contains(err.Error(), "FORCE") { // "Master is down or failed, please use CLUSTER FAILOVER FORCE"
		err = cl.Do(ctx, "CLUSTER", "FAILOVER", "FORCE").Err()
	}
	if err != nil {
		return fmt.Errorf("CLUSTER FAILOVER on node %d (%s): %w", i, c.Addrs[i], err)
	}
	for {
		role, err := cl.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("node %d (%s) did not take over within 30s (ROLE: %v, %v)", i, c.Addrs[i], role, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a process for readiness
	}
	return c.WaitReady(30 * time.Second)
}

// Primaries returns the numbers of the nodes that serve slots, as the
// first running node's CLUSTER NODES says.
func (c *Cluster) Primaries() ([]int, error) {
	view, err := c.view(c.anyRunning())
	if err != nil {
		return nil, err
	}
	var out []int
	for _, n := range view {
		if n.primary && len(n.slots) > 0 {
			out = append(out, c.number(n.addr))
		}
	}
	slices.Sort(out)
	return out, nil
}

// PrimaryOf returns the number of the node serving key's hash slot (a
// channel name maps to a slot the same way).
func (c *Cluster) PrimaryOf(key string) (int, error) {
	i := c.anyRunning()
	if i < 0 {
		return 0, errors.New("no node is running")
	}
	cl := c.client(i)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("CLUSTER KEYSLOT: %w", err)
	}
	view, err := c.view(i)
	if err != nil {
		return 0, err
	}
	for _, n := range view {
		if !n.primary {
			continue
		}
		for _, r := range n.slots {
			from, to, found := strings.Cut(r, "-")
			if !found {
				to = from
			}
			lo, err1 := strconv.ParseInt(from, 10, 64)
			hi, err2 := strconv.ParseInt(to, 10, 64)
			if err1 == nil && err2 == nil && lo <= slot && slot <= hi {
				return c.number(n.addr), nil
			}
		}
	}
	return 0, fmt.Errorf("no primary serves slot %d", slot)
}

// ReplicasOf returns the numbers of the replicas of node primary.
func (c *Cluster) ReplicasOf(primary int) ([]int, error) {
	view, err := c.view(c.anyRunning())
	if err != nil {
		return nil, err
	}
	var id string
	for _, n := range view {
		if n.addr == c.Addrs[primary] {
			id = n.id
		}
	}
	var out []int
	for _, n := range view {
		if id != "" && n.primaryID == id {
			out = append(out, c.number(n.addr))
		}
	}
	slices.Sort(out)
	return out, nil
}

// WaitReady polls every running node until each one says cluster_state:ok
// with every slot assigned and ok, they all agree on the running nodes'
// roles (which primary serves which slots, which replica follows which
// primary) and flag none of them failing, every primary serving slots is
// running, and every running replica's link to its primary is up; or
// returns an error saying what was not so at the deadline.
func (c *Cluster) WaitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		why := c.ready()
		if why == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis cluster not ready within %v: %w", within, why)
		}
		time.Sleep(20 * time.Millisecond) // polling processes for readiness
	}
}

func (c *Cluster) ready() error {
	running := c.running()
	if len(running) == 0 {
		return errors.New("no node is running")
	}
	isRunning := make(map[string]bool)
	for _, i := range running {
		isRunning[c.Addrs[i]] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var first string
	for _, i := range running {
		cl := c.client(i)
		err := func() error {
			defer cl.Close()
			raw, err := cl.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: CLUSTER INFO: %w", c.Addrs[i], err)
			}
			info := infoFields(raw)
			if info["cluster_state"] != "ok" || info["cluster_slots_assigned"] != strconv.Itoa(clusterSlots) ||
				info["cluster_slots_ok"] != strconv.Itoa(clusterSlots) {
				return fmt.Errorf("%s: cluster_state:%s cluster_slots_assigned:%s cluster_slots_ok:%s", c.Addrs[i],
					info["cluster_state"], info["cluster_slots_assigned"], info["cluster_slots_ok"])
			}
			view, err := parseClusterNodes(cl.ClusterNodes(ctx).Val())
			if err != nil {
				return fmt.Errorf("%s: CLUSTER NODES: %w", c.Addrs[i], err)
			}
			addrOf := make(map[string]string)
			for _, n := range view {
				addrOf[n.id] = n.addr
			}
			var topology []string
			for _, n := range view {
				if n.myself && !n.primary {
					repl := infoFields(cl.Info(ctx, "replication").Val())
					if repl["master_link_status"] != "up" {
						return fmt.Errorf("%s: replica's link to its primary is %q", c.Addrs[i], repl["master_link_status"])
					}
				}
				if n.primary && len(n.slots) > 0 && (n.failing || !isRunning[n.addr]) {
					return fmt.Errorf("%s: primary %s serves slots but is failing or not running", c.Addrs[i], n.addr)
				}
				if !isRunning[n.addr] {
					continue // how far the others got in marking it failed varies
				}
				if n.failing {
					return fmt.Errorf("%s: takes %s, which is running, for failing", c.Addrs[i], n.addr)
				}
				if n.primary {
					topology = append(topology, n.addr+" primary of "+strings.Join(n.slots, " "))
				} else {
					topology = append(topology, n.addr+" replica of "+addrOf[n.primaryID])
				}
			}
			slices.Sort(topology)
			if sig := strings.Join(topology, "; "); first == "" {
				first = sig
			} else if sig != first {
				return fmt.Errorf("nodes disagree: %s sees %s; another sees %s", c.Addrs[i], sig, first)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// clusterNodeLine is one line of CLUSTER NODES.
type clusterNodeLine struct {
	id, addr, primaryID      string
	myself, primary, failing bool
	slots                    []string
}

func parseClusterNodes(raw string) ([]clusterNodeLine, error) {
	var out []clusterNodeLine
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@") // ip:port@cport[,hostname]
		n := clusterNodeLine{id: f[0], addr: addr, primaryID: f[3]}
		for _, flag := range strings.Split(f[2], ",") {
			switch flag {
			case "myself":
				n.myself = true
			case "master":
				n.primary = true
			case "fail", "fail?":
				n.failing = true
			}
		}
		for _, s := range f[8:] {
			if !strings.HasPrefix(s, "[") { // not a slot being migrated
				n.slots = append(n.slots, s)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

func infoFields(raw string) map[string]string {
	out := make(map[string]string)
	for _, line := range strings.Split(raw, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// view is node i's CLUSTER NODES.
func (c *Cluster) view(i int) ([]clusterNodeLine, error) {
	if i < 0 {
		return nil, errors.New("no node is running")
	}
	cl := c.client(i)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", c.Addrs[i], err)
	}
	return parseClusterNodes(raw)
}

func (c *Cluster) number(addr string) int { return slices.Index(c.Addrs, addr) }

func (c *Cluster) running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, n := range c.nodes {
		if n.proc != nil {
			out = append(out, i)
		}
	}
	return out
}

func (c *Cluster) anyRunning() int {
	if r := c.running(); len(r) > 0 {
		return r[0]
	}
	return -1
}

// client is a plain client of node i alone, for the harness's own commands.
func (c *Cluster) client(i int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: c.Addrs[i], DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 1})
}

// Stop kills every node (by process id) and waits for them to exit.
// Stopping twice is fine.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.kill()
	}
	if c.ownsDir {
		os.RemoveAll(c.dir)
	}
}

// The shared cluster: one 3-primary cluster per test binary, started by the
// first test that asks for it, for Each's "redis-cluster" tier.
var shared struct {
	once    sync.Once
	mu      sync.Mutex
	cluster *Cluster
	err     error
	stopped bool
	// managed: a TestMain stops the cluster (see Main).
	managed atomic.Bool
	// prefixes numbers the key prefixes of the stores opened on it.
	prefixes atomic.Int64
}

// Main runs a package's tests (m.Run) and then stops the shared cluster,
// if a test started it; a TestMain calls it as os.Exit(storetest.Main(m)).
// On Linux the cluster's processes die with the test binary anyway (they
// are started with a parent-death signal); elsewhere a package that uses
// Each needs this TestMain, or the cluster tier is skipped.
func Main(m *testing.M) int {
	shared.managed.Store(true)
	defer stopSharedCluster()
	return m.Run()
}

// stopSharedCluster stops the shared cluster, if it was started. Tests
// that ask for it afterwards fail.
func stopSharedCluster() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.stopped = true
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
}

// SharedCluster returns the test binary's shared cluster of 3 primaries
// without replicas, starting it on first use. Tests must not kill, restart
// or fail over its nodes (use StartCluster for that), and must keep to keys
// of their own: OnCluster gives each store its own key prefix.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, cli := clusterBinaries(t)
	if !diesWithTestBinary && !shared.managed.Load() {
		t.Skip("the shared Redis Cluster needs a TestMain that calls storetest.Main to stop it on this OS")
	}
	shared.once.Do(func() {
		removeOrphanedSharedDirs()
		dir, err := os.MkdirTemp("", sharedDirPrefix)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		}
		if err != nil {
			shared.err = err
			return
		}
		start := time.Now()
		c, err := startCluster(bin, cli, dir, true, 3, 0)
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if err != nil {
			os.RemoveAll(dir)
			shared.err = err
			return
		}
		if shared.stopped {
			c.Stop()
			shared.err = errors.New("the shared cluster was stopped")
			return
		}
		shared.cluster = c
		t.Logf("started the shared Redis Cluster (%s) in %v", c.URL, time.Since(start).Round(time.Millisecond))
	})
	shared.mu.Lock()
	defer shared.mu.Unlock()
	switch {
	case shared.err != nil:
		t.Fatalf("start the shared redis cluster: %v", shared.err)
	case shared.stopped:
		t.Fatalf("the shared redis cluster was stopped (see Main)")
	}
	return shared.cluster
}

// sharedDirPrefix starts the name of a shared cluster's directory, under
// os.TempDir; it holds owner.pid, the process id of its test binary.
const sharedDirPrefix = "storetest-cluster-"

// removeOrphanedSharedDirs removes the directories of shared clusters whose
// test binary is gone without stopping them (no TestMain calling Main, a
// panic, a -timeout): their nodes died with it (see startChild), their
// files stayed.
func removeOrphanedSharedDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue // not written yet, or not ours
		}
		if pid, err := strconv.Atoi(string(b)); err == nil && !processAlive(pid) {
			os.RemoveAll(dir)
		}
	}
}

// OnCluster opens a store on the shared cluster (see SharedCluster) under
// a key prefix of its own ("case<n>:", see store.Config.KeyPrefix), so
// that its keys and channels are apart from every other store's: stores
// opened by tests running in parallel never see each other's data, and
// nothing needs flushing.
func OnCluster(t testing.TB) *store.Store {
	t.Helper()
	c := SharedCluster(t)
	prefix := fmt.Sprintf("case%d:", shared.prefixes.Add(1))
	s, err := store.Open(context.Background(), store.Config{URL: c.URL, KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("open store on the shared redis cluster: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
