package envflag

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadFileAndLayers(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("listen-addr", "", "")
	known := Known(fs, "X_", "X_SECRET")
	assert.True(t, known("X_LISTEN_ADDR"))
	assert.True(t, known("X_SECRET"))
	assert.False(t, known("X_LISTEN"))

	path := filepath.Join(t.TempDir(), "x.env")
	require.NoError(t, os.WriteFile(path, []byte("# comment\n\nX_LISTEN_ADDR=':1' \nexport X_SECRET=\"s=1\"\n"), 0o600))
	file, err := ReadFile(path, "X_", known)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"X_LISTEN_ADDR": ":1", "X_SECRET": "s=1"}, file, "quotes taken off, '=' in a value kept")

	getenv := Layered(func(k string) string { return map[string]string{"X_SECRET": "env"}[k] }, file)
	assert.Equal(t, "env", getenv("X_SECRET"), "the environment wins")
	assert.Equal(t, ":1", getenv("X_LISTEN_ADDR"), "the file fills in")
	assert.Empty(t, getenv("X_OTHER"))
}
