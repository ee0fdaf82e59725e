package testutil

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Command is a command's run function started by a test, with its output
// captured line by line.
type Command struct {
	Stdout, Stderr *LineWriter

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// commandWait bounds each wait on a Command.
const commandWait = 10 * time.Second

// StartCommand calls run in a goroutine and waits until it prints a line
// starting with ready ("… listening on "), whose rest it returns (the
// address). Every earlier line goes to onLine, if not nil. The command is
// stopped at cleanup.
func StartCommand(t testing.TB, ready string, onLine func(string), run func(ctx context.Context, stdout, stderr io.Writer) error) (*Command, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Command{Stdout: NewLineWriter(), Stderr: NewLineWriter(), cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- run(ctx, c.Stdout, c.Stderr) }()
	t.Cleanup(func() { _ = c.Stop() })
	deadline := time.After(commandWait)
	for {
		select {
		case line := <-c.Stdout.Lines():
			if rest, ok := strings.CutPrefix(line, ready); ok {
				return c, rest
			}
			if onLine != nil {
				onLine(line)
			}
		case err := <-c.done:
			t.Fatalf("run returned before printing %q: %v\nstderr: %s", ready, err, c.Stderr.String())
		case <-deadline:
			t.Fatalf("run did not print %q\nstdout: %s\nstderr: %s", ready, c.Stdout.String(), c.Stderr.String())
		}
	}
}

// Stop cancels the command's context and returns what run returned, or an
// error if it did not return in time. Calling it again returns the same.
func (c *Command) Stop() error {
	c.once.Do(func() {
		c.cancel()
		select {
		case c.err = <-c.done:
		case <-time.After(commandWait):
			c.err = errors.New("run did not return after cancel")
		}
	})
	return c.err
}
