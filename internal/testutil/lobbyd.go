package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	cmd := exec.Command(LobbydBinary(t), "-addr", "127.0.0.1:0")
	cmd.Env = append(append(os.Environ(), "LOBBYD_DEV_AUTH=true", "LOBBYD_LOG_LEVEL=warn"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("lobbyd's log:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "lobbyd listening on ")
		if !ok {
			t.Fatalf("unexpected first line %q; stderr:\n%s", line, stderr.String())
		}
		return url
	case <-time.After(20 * time.Second):
		t.Fatalf("lobbyd did not start within 20s; stderr:\n%s", stderr.String())
		return ""
	}
}
