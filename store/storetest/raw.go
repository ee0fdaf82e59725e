package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/lobbyd/lobbyd/store"
)

// Redis is a Redis deployment of one case's own (see EachRedis): only the
// case's stores use it, so the case may open several stores on it, under
// any key prefix (the empty one included), and read every key.
type Redis struct {
	// URL reaches it, as a store.Config URL.
	URL string
	// Client is a client of it, closed at cleanup: a cluster client on a
	// cluster, which sends each command to the primary of its key's slot
	// (see PrimaryClients for the commands that concern every primary).
	Client redis.UniversalClient
}

// Open opens a store on r under the key prefix, closed at cleanup.
func (r *Redis) Open(t testing.TB, prefix string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{URL: r.URL, KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("open store on %s under %q: %v", r.URL, prefix, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// EachRedis runs f as Each's three subtests, each on a Redis of the case's
// own: a miniredis (reached by URL, so several stores can share it; without
// the embedded store's clock, its keys never expire), a redis-server (see
// StartRedis) and a Redis Cluster of 3 primaries started for the case (see
// StartCluster; about 2 s more). It is for the cases that cannot keep to a
// key prefix of their own on the shared cluster, as Each's do: those that
// need the empty prefix, or look at every key.
func EachRedis(t *testing.T, f func(t *testing.T, r *Redis)) {
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		f(t, newRedis(t, "redis://"+m.Addr()))
	})
	t.Run("redis-server", func(t *testing.T) { f(t, newRedis(t, StartRedis(t).URL)) })
	t.Run("redis-cluster", func(t *testing.T) { f(t, newRedis(t, StartCluster(t, 3, 0).URL)) })
}

func newRedis(t testing.TB, url string) *Redis {
	t.Helper()
	opts, err := store.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	var c redis.UniversalClient
	if opts.IsClusterMode {
		c = redis.NewClusterClient(opts.Cluster())
	} else {
		c = redis.NewUniversalClient(opts)
	}
	t.Cleanup(func() { c.Close() })
	return &Redis{URL: url, Client: c}
}

// PrimaryClients returns a client of each primary that rdb sends commands
// to, ordered by address: every primary of a cluster client, or rdb itself.
// They are rdb's own (do not close them). Commands that act on one server
// rather than on a key (SCRIPT FLUSH, SCRIPT EXISTS, KEYS) go to each.
func PrimaryClients(ctx context.Context, rdb redis.UniversalClient) ([]*redis.Client, error) {
	switch c := rdb.(type) {
	case *redis.Client:
		return []*redis.Client{c}, nil
	case *redis.ClusterClient:
		var mu sync.Mutex
		var out []*redis.Client
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			out = append(out, node)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list the cluster's primaries: %w", err)
		}
		if len(out) == 0 {
			return nil, errors.New("the cluster client knows no primary")
		}
		slices.SortFunc(out, func(a, b *redis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
		return out, nil
	default:
		return nil, fmt.Errorf("primaries of a %T: only a single-server or cluster client", rdb)
	}
}

// FlushScripts empties the script cache of every primary of rdb (SCRIPT
// FLUSH), as a restart or a failover of Redis does.
func FlushScripts(ctx context.Context, rdb redis.UniversalClient) error {
	primaries, err := PrimaryClients(ctx, rdb)
	if err != nil {
		return err
	}
	for _, p := range primaries {
		if err := p.ScriptFlush(ctx).Err(); err != nil {
			return fmt.Errorf("SCRIPT FLUSH on %s: %w", p.Options().Addr, err)
		}
	}
	return nil
}

// Keys returns the keys matching pattern (KEYS) on every primary of rdb,
// sorted.
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	primaries, err := PrimaryClients(ctx, rdb)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range primaries {
		keys, err := p.Keys(ctx, pattern).Result()
		if err != nil {
			return nil, fmt.Errorf("KEYS on %s: %w", p.Options().Addr, err)
		}
		out = append(out, keys...)
	}
	slices.Sort(out)
	return out, nil
}
