package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveLobbydBinary()
	os.Exit(code)
}

// ctl runs lobbyctl with args until it returns or ctx ends.
func ctl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut testutil.SyncBuffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

var partyLine = regexp.MustCompile(`ready: party (\S+)`)

// The walkthrough with lobbyctl against the real binary: a token, then
// four players who play in the default queue (four to a match) all end
// with match.ready for one party.
func TestPlayFourToAMatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	url := testutil.StartLobbyd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	token, stderr, err := ctl(ctx, "token", "alice", "-url", url)
	require.NoError(t, err, stderr)
	assert.Len(t, strings.Split(strings.TrimSpace(token), "."), 3, "a JWT: %q", token)
	assert.Contains(t, stderr, "player id:")

	var wg sync.WaitGroup
	outs := make([]string, 4)
	errs := make([]error, 4)
	for i := range outs {
		args := []string{"play", "-url", url, "-queue", "default"}
		if i == 0 {
			args = append(args, "-token", strings.TrimSpace(token))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _, errs[i] = ctl(ctx, args...)
		}()
	}
	wg.Wait()
	parties := map[string]bool{}
	for i, out := range outs {
		require.NoError(t, errs[i], out)
		assert.Contains(t, out, "welcome")
		assert.Contains(t, out, "searching")
		assert.Contains(t, out, "match.found")
		m := partyLine.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		parties[m[1]] = true
		assert.Contains(t, out, "networkDescriptor: ")
		assert.Contains(t, out, "invitationId: ")
	}
	assert.Len(t, parties, 1, "one party for the four")
}

// watch prints a player's events until the socket ends: here a second
// connection of the same player replaces it.
func TestWatchTailsEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	url := testutil.StartLobbyd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, _, err := ctl(ctx, "token", "-url", url, "watcher")
	require.NoError(t, err)
	token = strings.TrimSpace(token)

	out := testutil.NewLineWriter()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"watch", "-url", url, "-token", token}, out, &bytes.Buffer{}) }()
	select {
	case line := <-out.Lines():
		assert.Contains(t, line, "welcome")
	case <-ctx.Done():
		t.Fatal("no welcome")
	}
	// The same player plays elsewhere: the watched socket is replaced.
	_, _, err = ctl(ctx, "play", "-url", url, "-token", token, "-queue", "nope")
	assert.Error(t, err, "an unknown queue is refused")
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "4001")
	case <-ctx.Done():
		t.Fatal("watch did not end")
	}
	assert.Contains(t, out.String(), "session.replaced")
}

// Bad usage says what is wrong.
func TestUsage(t *testing.T) {
	_, stderr, err := ctl(context.Background())
	assert.Error(t, err)
	assert.Contains(t, stderr, "Usage: lobbyctl")
	_, _, err = ctl(context.Background(), "fly")
	assert.ErrorContains(t, err, `unknown command "fly"`)
	_, _, err = ctl(context.Background(), "token", "-url", "http://127.0.0.1:1", "x")
	assert.ErrorContains(t, err, "get a token")
	_, _, err = ctl(context.Background(), "play", "alice")
	assert.ErrorContains(t, err, "did you mean -name alice", "no argument silently ignored")
	_, _, err = ctl(context.Background(), "watch", "tok")
	assert.ErrorContains(t, err, "only flags")
}
