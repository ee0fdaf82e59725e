package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// cpuReport is what lobbyd (and, with -redis-url, Redis) spent on the
// run's players: process CPU read when the players start (with
// -preconnect, at the barrier, so connecting is left out) and once the
// last one is matched or failed (before the goodbyes, so disconnecting is
// left out too), divided by the players matched.
type cpuReport struct {
	// ServerSec is lobbyd's user+system CPU over the window, from its
	// /metrics (process_cpu_seconds_total); ServerUsPerPlayer is that per
	// matched player.
	ServerSec         float64 `json:"serverSeconds"`
	ServerUsPerPlayer float64 `json:"serverUsPerMatchedPlayer"`
	// RedisSec and RedisUsPerPlayer are the same for redis-server, from
	// INFO cpu (used_cpu_sys + used_cpu_user); absent without -redis-url.
	RedisSec         *float64 `json:"redisSeconds,omitempty"`
	RedisUsPerPlayer *float64 `json:"redisUsPerMatchedPlayer,omitempty"`
	// Nodes is, with several -url, how many lobbyd nodes ServerSec adds
	// up: those whose /metrics answered at both ends of the window.
	Nodes int `json:"nodes,omitempty"`
}

// cpuSample is one reading of lobbyd's CPU seconds, each node's of -url
// in servers, and Redis's (negative: not read).
type cpuSample struct {
	servers []float64
	redis   float64
}

// sampleCPU reads lobbyd's and Redis's CPU seconds. A figure that cannot
// be read (a server without /metrics, such as echoref) is negative.
func (l *load) sampleCPU(ctx context.Context) cpuSample {
	s := cpuSample{servers: make([]float64, len(l.cfg.URLs)), redis: -1}
	var wg sync.WaitGroup
	for u := range l.cfg.URLs {
		wg.Go(func() {
			s.servers[u] = -1
			if v, err := l.serverCPU(ctx, u); err == nil {
				s.servers[u] = v
			}
		})
	}
	wg.Wait()
	if l.rdb != nil {
		if info, err := l.rdb.Info(ctx, "cpu").Result(); err == nil {
			if v, err := redisCPU(info); err == nil {
				s.redis = v
			}
		}
	}
	return s
}

// serverCPU reads process_cpu_seconds_total from the /metrics of the
// lobbyd at URL u.
func (l *load) serverCPU(ctx context.Context, u int) (float64, error) {
	m, err := l.metrics(ctx, u)
	if err != nil {
		return 0, err
	}
	if v := m.get("process_cpu_seconds_total"); v != nil {
		return *v, nil
	}
	return 0, fmt.Errorf("GET /metrics: no process_cpu_seconds_total")
}

// redisCPU adds used_cpu_sys and used_cpu_user of an INFO cpu reply.
func redisCPU(info string) (float64, error) {
	var total float64
	found := 0
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
		}
		total += f
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("INFO cpu has no used_cpu_sys and used_cpu_user")
	}
	return total, nil
}

// cpuBetween is the report of two samples for matched players; nil when
// no lobbyd's CPU could be read both times or nobody was matched. With
// several lobbyd, it adds up those read both times.
func cpuBetween(from, to cpuSample, matched int) *cpuReport {
	sec, nodes := 0.0, 0
	if len(from.servers) == len(to.servers) {
		for u := range from.servers {
			if from.servers[u] >= 0 && to.servers[u] >= 0 {
				sec += to.servers[u] - from.servers[u]
				nodes++
			}
		}
	}
	if nodes == 0 || matched == 0 {
		return nil
	}
	r := &cpuReport{ServerSec: sec}
	if len(from.servers) > 1 {
		r.Nodes = nodes
	}
	r.ServerUsPerPlayer = r.ServerSec * 1e6 / float64(matched)
	if from.redis >= 0 && to.redis >= 0 {
		sec := to.redis - from.redis
		per := sec * 1e6 / float64(matched)
		r.RedisSec, r.RedisUsPerPlayer = &sec, &per
	}
	return r
}

// openRedis connects to -redis-url, for INFO cpu only.
func openRedis(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	return redis.NewClient(opts), nil
}
