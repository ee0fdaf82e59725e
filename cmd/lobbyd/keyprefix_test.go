package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigKeyPrefix(t *testing.T) {
	c, err := loadConfig(nil, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true"}), io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.KeyPrefix, "no prefix by default: the key names of earlier versions")

	c, err = loadConfig([]string{"-key-prefix", "eu1:"}, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "eu1:", c.KeyPrefix)

	_, err = loadConfig(nil, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_KEY_PREFIX": "{eu1}:"}), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LOBBYD_KEY_PREFIX (-key-prefix)")
	assert.Contains(t, err.Error(), "no braces")
}
