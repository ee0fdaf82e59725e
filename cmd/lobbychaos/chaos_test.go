package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce             sync.Once
	builtDir, buildErrMsg string
)

// binariesForTest builds lobbyd and fakeplayfab once for the package's
// tests (TestMain removes them), or skips without redis-server (failing in CI, which installs it).
func binariesForTest(t *testing.T) (lobbyd, fake string) {
	t.Helper()
	if testing.Short() {
		t.Skip("the chaos run starts real processes for a minute or more")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed; CI must install it (.ci/run does)")
		}
		t.Skip("redis-server not installed")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lobbychaos-bin-")
		if err != nil {
			buildErrMsg = err.Error()
			return
		}
		builtDir = dir
		if _, _, err := buildBinaries(context.Background(), dir); err != nil {
			buildErrMsg = err.Error()
		}
	})
	require.Empty(t, buildErrMsg, "build the binaries")
	return filepath.Join(builtDir, "lobbyd"), filepath.Join(builtDir, "fakeplayfab")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// The short chaos run of CI: three nodes, each killed once, Redis
// restarted twice, PlayFab faults on; every invariant must hold.
func TestChaosShort(t *testing.T) {
	t.Parallel()
	lobbyd, fake := binariesForTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	err := run(ctx, []string{"-lobbyd", lobbyd, "-fakeplayfab", fake, "-dir", t.TempDir(), "-players", "40",
		"-duration", "48s", "-fault-every", "8s", "-drain-timeout", "30s"}, &out, &errOut)
	t.Log("\n" + out.String() + errOut.String())
	require.NoError(t, err)
	assert.Contains(t, out.String(), "PASS")
}

// A stray second RequestPartyService call, in the mode where each call
// makes a new party, must fail the run: the check can fail end to end.
func TestChaosCatchesASecondParty(t *testing.T) {
	t.Parallel()
	lobbyd, fake := binariesForTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	err := run(ctx, []string{"-lobbyd", lobbyd, "-fakeplayfab", fake, "-dir", t.TempDir(), "-players", "8", "-nodes", "2",
		"-duration", "5s", "-no-kills", "-fake-mode", "new", "-drop-rate", "0", "-inject-second-party", "1",
		"-drain-timeout", "20s"}, &out, &errOut)
	t.Log("\n" + out.String() + errOut.String())
	require.Error(t, err)
	assert.Contains(t, err.Error(), invSecondParty)
	assert.Contains(t, out.String(), "FAIL")
}
