package main

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/lobbyd/lobbyd/store"
)

// With -tap the bench also subscribes to every node's channel, as a
// second listener beside the node, and notes when each node's message of
// each match reaches it: the moment the publish has left Redis. That
// splits a frame's time in two: call start → published (the allocator's
// two round trips and Redis), and published → socket (Redis's fan-out,
// the node's relay, hub and writer, the socket). It costs Redis one more
// delivery per publish and the bench a read per message, so it is off for
// the figures.

// tap records, per match and node, when the node's message was seen.
type tap struct {
	seen    []atomic.Int64 // match × nodes
	unknown atomic.Int64
	ps      *redis.PubSub
	done    chan struct{}
}

var matchIDField = []byte(`"matchId":"`)

// startTap subscribes to the nodes' channels, named by st, and records
// their messages until stop.
func startTap(ctx context.Context, rdb *redis.Client, st *store.Store, nodes []*node, rec *recorder) (*tap, error) {
	t := &tap{seen: make([]atomic.Int64, len(rec.sent)*len(nodes)), done: make(chan struct{})}
	index := map[string]int{}
	var channels []string
	for i, n := range nodes {
		channel := st.NodeChannel(n.id)
		index[channel] = i
		channels = append(channels, channel)
	}
	t.ps = rdb.Subscribe(ctx, channels...)
	for range channels {
		if _, err := t.ps.Receive(ctx); err != nil {
			t.ps.Close()
			return nil, fmt.Errorf("tap: subscribe: %w", err)
		}
	}
	go func() {
		defer close(t.done)
		for {
			msg, err := t.ps.ReceiveMessage(context.Background())
			if err != nil {
				return // closed
			}
			at := rec.now()
			node, ok := index[msg.Channel]
			payload := []byte(msg.Payload)
			i := bytes.Index(payload, matchIDField)
			if !ok || i < 0 {
				t.unknown.Add(1)
				continue
			}
			rest := payload[i+len(matchIDField):]
			end := bytes.IndexByte(rest, '"')
			k := -1
			if end >= 0 {
				k = rec.matchIndex(string(rest[:end]))
			}
			if k < 0 {
				t.unknown.Add(1)
				continue
			}
			t.seen[k*len(nodes)+node].CompareAndSwap(0, at)
		}
	}()
	return t, nil
}

func (t *tap) stop() {
	t.ps.Close()
	<-t.done
}
