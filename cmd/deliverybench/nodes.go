package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildLobbyd builds cmd/lobbyd into dir and returns the binary's path.
func buildLobbyd(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "lobbyd")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/lobbyd/lobbyd/cmd/lobbyd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/lobbyd (run from the module, or give -lobbyd): %v\n%s", err, out)
	}
	return path, nil
}

// node is one receiving lobbyd process.
type node struct {
	index    int
	id       string // LOBBYD_NODE_ID
	url      string // http://127.0.0.1:port
	debugURL string // pprof, when profiling

	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{} // closed once the process was waited for
	err    error         // Wait's error, read after exited
	once   sync.Once
}

// nodeStartTimeout bounds a node's start (Redis reached, listening).
const nodeStartTimeout = 30 * time.Second

// startNode starts lobbyd number i with env (KEY=value; the inherited
// LOBBYD_ variables are dropped so only these count) and waits for its
// "lobbyd listening on" line. With debug, it serves pprof on a free
// loopback port.
func startNode(ctx context.Context, bin string, i int, env []string, debug bool) (*node, error) {
	n := &node{index: i, id: fmt.Sprintf("dbench-%d", i), stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	env = append(env, "LOBBYD_NODE_ID="+n.id)
	if debug {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("node %d: a port for pprof: %w", i, err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		n.debugURL = "http://" + addr
		env = append(env, "LOBBYD_DEBUG_ADDR="+addr)
	}
	n.cmd = exec.Command(bin)
	n.cmd.Env = append(withoutLobbydEnv(os.Environ()), env...)
	n.cmd.Stderr = n.stderr
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	lines := make(chan string, 1)
	go func() {
		rd := bufio.NewReader(stdout)
		line, _ := rd.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, rd) // whatever else it prints, so it never blocks
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	timer := time.NewTimer(nodeStartTimeout)
	defer timer.Stop()
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "lobbyd listening on ")
		if !ok {
			n.stop()
			return nil, fmt.Errorf("node %d: unexpected first line %q; its log:\n%s", i, line, n.stderr.String())
		}
		n.url = url
		return n, nil
	case <-timer.C:
		n.stop()
		return nil, fmt.Errorf("node %d did not start within %v; its log:\n%s", i, nodeStartTimeout, n.stderr.String())
	case <-ctx.Done():
		n.stop()
		return nil, ctx.Err()
	}
}

// withoutLobbydEnv drops the LOBBYD_ variables of this process's
// environment.
func withoutLobbydEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LOBBYD_") {
			out = append(out, kv)
		}
	}
	return out
}

// stop sends the node SIGTERM and waits until it exited, killing it after
// 20 s. Calling it again waits for the same exit.
func (n *node) stop() {
	n.once.Do(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(20 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
	})
	<-n.exited
}

// alive reports whether the process still runs.
func (n *node) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// cpuSeconds reads process_cpu_seconds_total from the node's /metrics.
func (n *node) cpuSeconds(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: %s", n.url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s/metrics has no process_cpu_seconds_total", n.url)
}

// cpuProfile fetches a CPU profile of the next d from the node's pprof
// listener into path.
func (n *node) cpuProfile(ctx context.Context, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", n.debugURL, secs), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("node %d profile: %s: %s", n.index, resp.Status, bytes.TrimSpace(b))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freePort returns a loopback port the kernel just handed out.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
