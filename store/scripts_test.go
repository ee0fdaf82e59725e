package store_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// luaFiles reads store/scripts from disk: name (without ".lua") -> SHA1 of
// its source, which is what Redis knows a script by.
func luaFiles(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("scripts")
	require.NoError(t, err)
	out := make(map[string]string)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".lua") {
			continue
		}
		src, err := os.ReadFile(filepath.Join("scripts", e.Name()))
		require.NoError(t, err)
		sum := sha1.Sum(src)
		out[strings.TrimSuffix(e.Name(), ".lua")] = hex.EncodeToString(sum[:])
	}
	require.NotEmpty(t, out)
	return out
}

func TestEveryLuaFileIsRegistered(t *testing.T) {
	assert.Equal(t, luaFiles(t), store.ScriptHashes(),
		"every file in store/scripts is registered, with its current source, and nothing else")
}

// After SCRIPT FLUSH (what a restart or failover does to a Redis that kept
// its data) the first pipeline that calls a script gets NOSCRIPT and loads
// them all again: every file in store/scripts must be among them, on every
// primary of a cluster, not only the one that answered NOSCRIPT.
func TestEveryLuaFileIsReloadedAfterScriptFlush(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		raw := store.RedisClient(s)
		primaries, err := storetest.PrimaryClients(ctx, raw)
		require.NoError(t, err)

		files := luaFiles(t)
		names := make([]string, 0, len(files))
		hashes := make([]string, 0, len(files))
		for name, sha := range files {
			names = append(names, name)
			hashes = append(hashes, sha)
		}
		// loadedOn reports, by primary, which scripts it has.
		loadedOn := func() map[string][]bool {
			out := make(map[string][]bool)
			for _, p := range primaries {
				loaded, err := p.ScriptExists(ctx, hashes...).Result()
				require.NoError(t, err)
				out[p.Options().Addr] = loaded
			}
			return out
		}
		require.NoError(t, s.LoadScripts(ctx))
		for addr, loaded := range loadedOn() {
			for i, ok := range loaded {
				assert.True(t, ok, "LoadScripts loads %s.lua on %s", names[i], addr)
			}
		}

		require.NoError(t, storetest.FlushScripts(ctx, raw))
		for addr, loaded := range loadedOn() {
			require.NotContains(t, loaded, true, "SCRIPT FLUSH forgot every script on %s", addr)
		}

		// A pipelined EVALSHA (no EVAL fallback inside a pipeline) meets
		// NOSCRIPT (from alice's primary alone, on a cluster) and recovers.
		require.NoError(t, s.AckPendingMatches(ctx, []domain.MatchAck{{PlayerID: "alice", MatchID: "m1"}}))
		for addr, loaded := range loadedOn() {
			for i, ok := range loaded {
				assert.True(t, ok, "NOSCRIPT recovery reloads %s.lua on %s", names[i], addr)
			}
		}
	})
}
