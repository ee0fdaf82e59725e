package main

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyRule is what docs/architecture.md ("Keys") allows a key to be once
// every player left and the reconnect grace passed.
type keyRule struct {
	pattern *regexp.Regexp
	what    string
	// maxTTL is the longest TTL the docs give this key; a key of this
	// kind without a TTL, or with a longer one, leaked.
	maxTTL time.Duration
	// noTTL: the key lives without a TTL by design, bounded by something
	// else (one per queue, a capped stream).
	noTTL bool
	// gone: nothing may remain once every player left.
	gone bool
}

// keyRules is the leak policy the chaos run enforces (docs/operations.md,
// "Failure modes", says the same).
var keyRules = []keyRule{
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:searching$`), what: "queue's searching set", gone: true},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:searching:data$`), what: "queue's searching data", gone: true},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:incoming$`), what: "queue's incoming list", gone: true},
	{pattern: regexp.MustCompile(`^lobbyd:graces:\{g:[0-9]{2}\}$`), what: "grace deadlines bucket", gone: true},
	// Written only by a lobbyd before the buckets; swept still, so it is
	// empty once everyone left even in a mixed-version run.
	{pattern: regexp.MustCompile(`^lobbyd:graces$`), what: "legacy grace deadlines", gone: true},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:t:[^:]+$`), what: "ticket", maxTTL: 2 * time.Hour},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:m:[^:]+$`), what: "match", maxTTL: time.Hour},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:lease$`), what: "queue lease", maxTTL: 5 * time.Second},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:alloc$`), what: "allocation stream (capped at ~100,000 entries)", noTTL: true},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:stats$`), what: "queue figures (one small hash per queue)", noTTL: true},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:summary$`), what: "leader's summary for queue.why", maxTTL: 10 * time.Second},
	{pattern: regexp.MustCompile(`^\{q:[^}]+\}:figures$`), what: "leader's figures for the operator console", maxTTL: 10 * time.Second},
	{pattern: regexp.MustCompile(`^lobbyd:queueconfig$`), what: "queue configuration in force (one small hash, written by a reload)", noTTL: true},
	{pattern: regexp.MustCompile(`^lobbyd:nodes$`), what: "nodes' heartbeats (one small hash; entries older than 10 minutes are removed)", noTTL: true},
	{pattern: regexp.MustCompile(`^\{p:[^}]+\}:ticket$`), what: "player's ticket claim", maxTTL: 2 * time.Hour},
	{pattern: regexp.MustCompile(`^\{p:[^}]+\}:node$`), what: "presence", maxTTL: 60 * time.Second},
	{pattern: regexp.MustCompile(`^\{p:[^}]+\}:match$`), what: "undelivered match.ready", maxTTL: 10 * time.Minute},
	// Until the slowest budget has refilled: 60 s with the default
	// handshake and queue.join rates (the 30 s abuse penalty is shorter).
	{pattern: regexp.MustCompile(`^\{p:[^}]+\}:limits$`), what: "player's rate budgets", maxTTL: time.Minute},
	{pattern: regexp.MustCompile(`^\{p:[^}]+\}:codeguesses$`), what: "player's failed join codes this minute", maxTTL: time.Minute},
	{pattern: regexp.MustCompile(`^\{p:[^}]+\}:lobby$`), what: "player's lobby claim", maxTTL: 24 * time.Hour},
	{pattern: regexp.MustCompile(`^\{l:[^}]+\}$`), what: "lobby", maxTTL: 24 * time.Hour},
	{pattern: regexp.MustCompile(`^lobbycode:[A-Z0-9]+$`), what: "lobby join code", maxTTL: 24 * time.Hour},
	{pattern: regexp.MustCompile(`^lobbies:public:.+$`), what: "public lobby index (one per queue)", noTTL: true},
}

// keyInfo is one key found by the scan.
type keyInfo struct {
	Key  string
	Type string
	TTL  time.Duration // -1: none
	Len  int64         // members, entries or fields, where it has any
}

// ruleFor returns the rule of key, or nil for a key lobbyd should not have.
func ruleFor(key string) *keyRule {
	for i := range keyRules {
		if keyRules[i].pattern.MatchString(key) {
			return &keyRules[i]
		}
	}
	return nil
}

// checkKeys reports every key the policy does not allow.
func checkKeys(keys []keyInfo, fail failFunc) {
	for _, k := range keys {
		r := ruleFor(k.Key)
		switch {
		case r == nil:
			fail(invLeakedKey, "%s (%s, TTL %v): no such key in docs/architecture.md", k.Key, k.Type, ttlText(k.TTL))
		case r.gone:
			fail(invLeakedKey, "%s (%s, %d entries): the %s must be empty once every player left", k.Key, k.Type, k.Len, r.what)
		case r.noTTL:
		case k.TTL < 0:
			fail(invLeakedKey, "%s: %s without a TTL (at most %v)", k.Key, r.what, r.maxTTL)
		case k.TTL > r.maxTTL:
			fail(invLeakedKey, "%s: %s with a TTL of %v (at most %v)", k.Key, r.what, k.TTL.Round(time.Second), r.maxTTL)
		}
	}
}

func ttlText(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Second).String()
}

// keysThatMustGo counts the keys that must not exist once every player
// left, so the run can wait for the grace period to be handled.
func keysThatMustGo(ctx context.Context, rdb *redis.Client) (int, error) {
	keys, err := scanKeys(ctx, rdb)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if r := ruleFor(k.Key); r != nil && r.gone {
			n++
		}
	}
	return n, nil
}

// scanKeys lists every key with its type, TTL and size.
func scanKeys(ctx context.Context, rdb *redis.Client) ([]keyInfo, error) {
	var out []keyInfo
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		pipe := rdb.Pipeline()
		typ := pipe.Type(ctx, key)
		ttl := pipe.PTTL(ctx, key)
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("inspect %s: %w", key, err)
		}
		if typ.Val() == "none" {
			continue // expired between SCAN and TYPE
		}
		k := keyInfo{Key: key, Type: typ.Val(), TTL: ttl.Val()}
		if k.TTL < 0 {
			k.TTL = -1
		}
		switch k.Type {
		case "zset":
			k.Len = rdb.ZCard(ctx, key).Val()
		case "list":
			k.Len = rdb.LLen(ctx, key).Val()
		case "hash":
			k.Len = rdb.HLen(ctx, key).Val()
		case "stream":
			k.Len = rdb.XLen(ctx, key).Val()
		}
		out = append(out, k)
	}
	return out, iter.Err()
}

// pendingJobs counts allocation jobs delivered to a consumer and never
// acknowledged, over every queue's stream.
func pendingJobs(ctx context.Context, rdb *redis.Client, keys []keyInfo) int64 {
	var n int64
	for _, k := range keys {
		if k.Type != "stream" {
			continue
		}
		if p, err := rdb.XPending(ctx, k.Key, "allocators").Result(); err == nil {
			n += p.Count
		}
	}
	return n
}
