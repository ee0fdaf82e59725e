// Package storetest starts stores for tests: on miniredis for the fast unit
// tier, and on a real redis-server and a Redis Cluster (cluster.go) for the
// integration tiers.
package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lobbyd/lobbyd/store"
)

// Embedded opens a store on a fresh in-process Redis (miniredis).
func Embedded(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Real opens a store on a redis-server started for the test (see StartRedis).
func Real(t testing.TB) *store.Store {
	t.Helper()
	r := StartRedis(t)
	s, err := store.Open(context.Background(), store.Config{URL: r.URL})
	if err != nil {
		t.Fatalf("open store on %s: %v", r.Addr, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Each runs f as three subtests, "miniredis", "redis-server" and
// "redis-cluster", so one suite proves the same behaviour on each. The
// cluster tier runs on the test binary's shared 3-primary cluster (see
// SharedCluster), each case under a key prefix of its own (see OnCluster).
func Each(t *testing.T, f func(t *testing.T, s *store.Store)) {
	t.Run("miniredis", func(t *testing.T) { f(t, Embedded(t)) })
	t.Run("redis-server", func(t *testing.T) { f(t, Real(t)) })
	t.Run("redis-cluster", func(t *testing.T) { f(t, OnCluster(t)) })
}

// RedisServer is a redis-server process started for one test.
type RedisServer struct {
	// Addr is host:port; URL is the same as a LOBBYD_REDIS_URL.
	Addr, URL string

	bin, dir string
	proc     *redisProcess // nil while the server is not running
}

// StartRedis starts a redis-server on a free port for the test and stops it
// at cleanup (see startRedisProcess). Without the binary the test is
// skipped, except in CI (CI set), where the integration tier must run and
// the test fails instead.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed; CI must install it (.ci/run does)")
		}
		t.Skip("redis-server not installed: skipping the real-Redis tier (apt-get install redis-server)")
	}
	r := &RedisServer{bin: bin, dir: t.TempDir()}
	err = onFreePort(freePort, func(addr string) error {
		r.Addr, r.URL = addr, "redis://"+addr
		return r.Start()
	})
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on its address and waits until it accepts
// connections.
func (r *RedisServer) Start() error {
	var err error
	r.proc, err = startRedisProcess(r.bin, r.dir, r.Addr, filepath.Join(r.dir, "redis.log"))
	return err
}

// Stop kills the server and waits for it to exit. Stopping twice is fine.
func (r *RedisServer) Stop() {
	if r.proc == nil {
		return
	}
	r.proc.kill()
	r.proc = nil
}

// StopKeepingData saves the server's data to disk (SAVE) and kills it, so
// that Start brings it back with that data, as a Redis restarted with
// persistence comes back.
func (r *RedisServer) StopKeepingData() error {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nSAVE\r\n")); err != nil {
		return err
	}
	reply := make([]byte, 5)
	if _, err := io.ReadFull(c, reply); err != nil {
		return err
	}
	if string(reply) != "+OK\r\n" {
		return fmt.Errorf("redis SAVE answered %q", reply)
	}
	r.Stop()
	return nil
}

// redisProcess is a running redis-server child (see startRedisProcess).
type redisProcess struct {
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once it exits
}

// startRedisProcess starts bin, a redis-server without persistence, on the
// loopback address addr, with dir as its working directory, its log at
// logPath and extraArgs after the common ones, and waits until it is ready:
// until INFO server on addr answers with the child's own process id, so that
// a listener that took the port first is never taken for it. redis-server
// cannot bind port 0 and report it, so addr's port is one the kernel handed
// out a moment before (see onFreePort). The child is started by startChild,
// so on Linux it dies with the test binary even when the binary never runs
// its cleanups.
func startRedisProcess(bin, dir, addr, logPath string, extraArgs ...string) (*redisProcess, error) {
	_, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", logPath}, extraArgs...)
	p := &redisProcess{cmd: exec.Command(bin, args...), exited: make(chan error, 1)}
	if err := startChild(p.cmd); err != nil {
		return nil, err
	}
	go func() { p.exited <- p.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("redis-server on %s exited: %v: %s", addr, err, lastLines(string(log), 5))
		default:
		}
		if pid, err := serverPID(addr); err == nil {
			if pid == p.cmd.Process.Pid {
				return p, nil
			}
			// Another process listens on the port: this server cannot bind
			// it and is about to exit, or is already gone.
			p.kill()
			return nil, fmt.Errorf("port of %s is taken by process %d", addr, pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a process for readiness
	}
	p.kill()
	return nil, fmt.Errorf("redis-server did not listen on %s within 10s", addr)
}

// kill kills the process (SIGKILL) and waits for it to exit.
func (p *redisProcess) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// onFreePort calls start with a loopback address on a port from pick until
// it succeeds, up to 10 ports: a port free when pick returned it may be
// taken before redis-server binds it, which then fails to start.
func onFreePort(pick func() (int, error), start func(addr string) error) error {
	var lastErr error
	for range 10 {
		port, err := pick()
		if err != nil {
			return fmt.Errorf("find a free port: %w", err)
		}
		if lastErr = start(fmt.Sprintf("127.0.0.1:%d", port)); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// serverPID asks the Redis server on addr for its process id (INFO server).
func serverPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return 0, err
	}
	rd := bufio.NewReader(c)
	head, err := rd.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("INFO answered %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rd, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server lacks process_id")
}

// freePort returns a loopback port free at the time of asking, for
// processes that cannot bind port 0 and report it (see startRedisProcess).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Eventually polls cond every few milliseconds until it holds or the
// deadline passes; it is how tests wait on events, never a bare sleep.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
