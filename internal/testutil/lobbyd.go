package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Building and starting the real lobbyd binary, for the tests of the tools
// that talk to it (lobbyctl, lobbyload) and of lobbyd's own signals.

var lobbyd struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// LobbydBinary builds cmd/lobbyd once per test binary and returns its
// path; RemoveLobbydBinary (from TestMain) deletes it.
func LobbydBinary(t testing.TB) string {
	t.Helper()
	lobbyd.once.Do(func() {
		lobbyd.dir, lobbyd.err = os.MkdirTemp("", "lobbyd-bin-")
		if lobbyd.err != nil {
			return
		}
		lobbyd.path = filepath.Join(lobbyd.dir, "lobbyd")
		out, err := exec.Command("go", "build", "-o", lobbyd.path, "github.com/lobbyd/lobbyd/cmd/lobbyd").CombinedOutput()
		if err != nil {
			lobbyd.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if lobbyd.err != nil {
		t.Fatalf("build lobbyd: %v", lobbyd.err)
	}
	return lobbyd.path
}

// RemoveLobbydBinary deletes what LobbydBinary built.
func RemoveLobbydBinary() {
	if lobbyd.dir != "" {
		os.RemoveAll(lobbyd.dir)
	}
}

// StartLobbyd runs the lobbyd binary on a free loopback port with dev auth
// (as `make run` does) plus env ("KEY=value"), and returns its base URL
// (http://127.0.0.1:port). It is stopped with SIGTERM at cleanup.
func StartLobbyd(t testing.TB, env ...string) string {
	t.Helper()
	return StartLobbydNode(t, env...).URL
}

// LobbydNode is a lobbyd process started by StartLobbydNode, which a test
// may stop (SIGTERM: the node closes its sockets with 1001 and shuts down)
// or kill (SIGKILL) while other nodes go on.
type LobbydNode struct {
	// URL is the node's base URL (http://127.0.0.1:port).
	URL string
	// AdminURL is the base URL of the node's admin listener, which is on
	// when env sets LOBBYD_ADMIN_ADDR; empty otherwise.
	AdminURL string

	cmd    *exec.Cmd
	stderr *SyncBuffer
	exited chan struct{} // closed once the process was waited for
	err    error         // Wait's error, read after exited
	once   sync.Once
}

// StartLobbydNode is StartLobbyd returning a handle on the process: run
// twice with the same LOBBYD_REDIS_URL and LOBBYD_JWT_SECRET in env, it
// starts two nodes of one deployment. With LOBBYD_ADMIN_ADDR in env, it
// also waits for the admin listener and sets AdminURL. The node is stopped
// with SIGTERM at cleanup unless the test stopped it already.
func StartLobbydNode(t testing.TB, env ...string) *LobbydNode {
	t.Helper()
	cmd := exec.Command(LobbydBinary(t), "-addr", "127.0.0.1:0")
	cmd.Env = append(append(os.Environ(), "LOBBYD_DEV_AUTH=true", "LOBBYD_LOG_LEVEL=warn"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &LobbydNode{cmd: cmd, stderr: &SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The lines lobbyd prints once it listens, and the field each one's
	// URL goes to.
	type readyLine struct {
		prefix string
		url    *string
	}
	ready := []readyLine{{"lobbyd listening on ", &n.URL}}
	if lastEnv(cmd.Env, "LOBBYD_ADMIN_ADDR") != "" {
		ready = append(ready, readyLine{"lobbyd admin listening on ", &n.AdminURL})
	}
	lines := make(chan string, len(ready))
	go func() {
		rd := bufio.NewReader(stdout)
		for range ready {
			line, _ := rd.ReadString('\n')
			lines <- strings.TrimSpace(line)
		}
		io.Copy(io.Discard, rd) // whatever else it prints, so it never blocks
		n.err = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("lobbyd %s's log:\n%s", n.URL, n.stderr.String())
		}
	})
	deadline := time.After(20 * time.Second)
	for _, want := range ready {
		select {
		case line := <-lines:
			url, ok := strings.CutPrefix(line, want.prefix)
			if !ok {
				t.Fatalf("unexpected line %q, want %q…; stderr:\n%s", line, want.prefix, n.stderr.String())
			}
			*want.url = url
		case <-deadline:
			t.Fatalf("lobbyd did not start within 20s; stderr:\n%s", n.stderr.String())
		}
	}
	return n
}

// lastEnv returns key's value in env ("KEY=value"), where the last
// occurrence wins as it does for exec.Cmd.Env.
func lastEnv(env []string, key string) string {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// Stop sends the node SIGTERM and waits until it exited (killing it if it
// takes more than 20 s), and returns how it exited. Calling it again, or
// after Kill, returns the same.
func (n *LobbydNode) Stop() error {
	n.once.Do(func() { n.signalAndWait(syscall.SIGTERM) })
	<-n.exited
	return n.err
}

// Kill kills the node (SIGKILL, as a crash would end it) and waits until
// it exited.
func (n *LobbydNode) Kill() {
	n.once.Do(func() { n.signalAndWait(syscall.SIGKILL) })
	<-n.exited
}

func (n *LobbydNode) signalAndWait(sig syscall.Signal) {
	n.cmd.Process.Signal(sig)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// Signal sends the node sig (SIGHUP reloads its queue file). To stop or
// kill it, use Stop or Kill, which wait for it to exit.
func (n *LobbydNode) Signal(sig os.Signal) error { return n.cmd.Process.Signal(sig) }

// Pid is the node's process id.
func (n *LobbydNode) Pid() int { return n.cmd.Process.Pid }

// Log is what the node wrote to stderr so far.
func (n *LobbydNode) Log() string { return n.stderr.String() }
