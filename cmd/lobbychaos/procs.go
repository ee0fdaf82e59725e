package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// process is one child process this run started. Only the run's own
// children are ever signalled, by their pid.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's error, read after exited
}

// startProcess starts bin with args and env (added to this process's
// environment), its stdout and stderr appended to logPath. stdoutLine, when
// set, gets the first line the process prints on stdout (the rest still
// goes to the log).
func startProcess(name, bin string, args, env []string, logPath string, stdoutLine chan<- string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logFile
	// Its own process group, so a terminal's ^C reaches only lobbychaos,
	// which then stops its children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if stdoutLine != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logFile.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	} else {
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan struct{})}
	copied := make(chan struct{})
	if stdout != nil {
		// Owned by the process: it ends when the child's stdout closes,
		// which Wait below waits for.
		go func() {
			defer close(copied)
			r := bufio.NewReader(stdout)
			line, err := r.ReadString('\n')
			if err == nil {
				stdoutLine <- strings.TrimSpace(line)
			} else {
				close(stdoutLine)
			}
			io.Copy(logFile, r)
		}()
	} else {
		close(copied)
	}
	go func() {
		<-copied
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// pid is the child's process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the child to exit.
func (p *process) kill() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM, waits up to grace for the child to exit, then kills
// it. It reports whether the child exited by itself.
func (p *process) stop(grace time.Duration) bool {
	if p == nil {
		return true
	}
	select {
	case <-p.exited:
		return true
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.exited:
		return true
	case <-timer.C:
		p.kill()
		return false
	}
}

// freePort returns a loopback port free at the time of asking, for
// redis-server, which cannot bind port 0 and report it (see startRedis).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// redisPID returns the process id of the Redis server answering on addr,
// or 0 if none answers.
func redisPID(ctx context.Context, addr string) int {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			pid, _ := strconv.Atoi(v)
			return pid
		}
	}
	return 0
}

// waitFor polls cond every pollEvery until it holds, ctx ends or within
// passes; it is how the run waits on processes, never a bare sleep.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) error {
	const pollEvery = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}

// httpOK reports whether GET url answers 200.
func httpOK(client *http.Client, url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// buildBinaries builds lobbyd and fakeplayfab into dir with the go tool,
// from the module root (the working directory or one of its parents).
func buildBinaries(ctx context.Context, dir string) (lobbyd, fake string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/lobbyd", "./cmd/fakeplayfab")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return filepath.Join(dir, "lobbyd"), filepath.Join(dir, "fakeplayfab"), nil
}

// moduleRoot finds the directory holding lobbyd's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/lobbyd/lobbyd") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside lobbyd's module: pass -lobbyd and -fakeplayfab")
		}
		dir = parent
	}
}
