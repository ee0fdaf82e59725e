package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveLobbydBinary()
	os.Exit(code)
}

// TestEveryFrameArrivesOnce runs the tool for 2 s at a low rate on a
// redis-server of its own with two lobbyd nodes, and checks that every
// match.ready the allocator sent reached its player's socket once.
func TestEveryFrameArrivesOnce(t *testing.T) {
	r := storetest.StartRedis(t) // skips without redis-server, fails in CI
	bin := testutil.LobbydBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-redis-url", r.URL, "-lobbyd", bin, "-nodes", "2", "-players", "40",
		"-rate", "200", "-warmup", "0s", "-duration", "2s", "-grace", "5s", "-json"}, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	var rep report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())

	// 200 results/s for 2 s: 100 matches of 4.
	assert.Equal(t, 100, rep.Matches)
	assert.EqualValues(t, 400, rep.Expected)
	assert.Equal(t, 400, rep.Latency.N, "every frame timed once")
	assert.Zero(t, rep.Lost, "lost")
	assert.Zero(t, rep.Duplicates, "duplicates")
	assert.Zero(t, rep.Unknown, "frames of no match")
	assert.Empty(t, rep.CallErrors)
	assert.Empty(t, rep.SocketsEnded)
	assert.Empty(t, rep.OtherFrames)
	assert.Len(t, rep.CPU.Nodes, 2)
	assert.Positive(t, rep.Latency.P50)
	assert.LessOrEqual(t, rep.Latency.P50, rep.Latency.P99)
	assert.Empty(t, rep.Problems)
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
}

// TestMatchPlayers checks that a frame read back names the match and
// the slot it was sent for.
func TestMatchPlayers(t *testing.T) {
	rec := newRecorder(10, 7, "abcd1234")
	for k := range 7 {
		require.Equal(t, k, rec.matchIndex(rec.matchID(k)))
		for j := range playersPerMatch {
			rec.matchReady(rec.matchPlayer(k, j), rec.matchID(k), int64(k*10+j+1))
		}
	}
	assert.EqualValues(t, 7*playersPerMatch, rec.received.Load())
	rec.matchReady(rec.matchPlayer(3, 1), rec.matchID(3), 99) // again
	rec.matchReady(rec.matchPlayer(3, 0)+5, rec.matchID(3), 99)
	rec.matchReady(0, "another-match", 99)
	assert.EqualValues(t, 1, rec.dups.Load())
	assert.EqualValues(t, 2, rec.unknown.Load())
	assert.EqualValues(t, 3*10+1+1, rec.recv[3*playersPerMatch+1].Load())
	assert.Len(t, rec.matchID(0), 36, "as long as a uuid")
}
