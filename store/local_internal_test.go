package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// TestPublishToOwnNodeSkipsRedis: a message for a node subscribed through
// the same store is handed over in-process; once that subscription is
// closed, messages for the node go through Redis again.
func TestPublishToOwnNodeSkipsRedis(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Config{})
	require.NoError(t, err)
	defer s.Close()
	sub, err := s.Subscribe(ctx, "n1")
	require.NoError(t, err)
	// A plain subscriber sees what goes through Redis on that channel.
	raw := s.rdb.Subscribe(ctx, s.keys.nodeChannel("n1"))
	defer raw.Close()
	_, err = raw.Receive(ctx)
	require.NoError(t, err)

	local := domain.NodeMessage{Events: []domain.Addressed{{To: []string{"p"}, Event: []byte(`{"type":"x"}`)}}}
	require.NoError(t, s.Publish(ctx, "n1", local))
	got, ok, err := sub.Next(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, local, got)

	require.NoError(t, sub.Close())
	require.NoError(t, s.Publish(ctx, "n1", domain.NodeMessage{Replace: &domain.Replace{PlayerID: "p", ConnID: "c"}}))
	m, err := raw.ReceiveMessage(ctx)
	require.NoError(t, err)
	assert.Contains(t, m.Payload, `"c"`, "the first message through Redis is the one sent after Close: the local one never went there")
}
