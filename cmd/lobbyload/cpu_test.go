package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/store/storetest"
)

func TestCPUFigures(t *testing.T) {
	m, err := parseProm(strings.NewReader("# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nprocess_cpu_seconds_total_other 3\n"))
	require.NoError(t, err)
	require.NotNil(t, m.get("process_cpu_seconds_total"))
	assert.Equal(t, 12.5, *m.get("process_cpu_seconds_total"))
	m, err = parseProm(strings.NewReader("go_goroutines 7\n"))
	require.NoError(t, err)
	assert.Nil(t, m.get("process_cpu_seconds_total"))

	v, err := redisCPU("# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.0\r\n")
	require.NoError(t, err)
	assert.InDelta(t, 3.75, v, 1e-9)
	_, err = redisCPU("# CPU\r\nused_cpu_sys:1.25\r\n")
	assert.Error(t, err)

	r := cpuBetween(cpuSample{servers: []float64{10}, redis: 4}, cpuSample{servers: []float64{12}, redis: 5}, 1000)
	require.NotNil(t, r)
	assert.InDelta(t, 2000, r.ServerUsPerPlayer, 1e-6, "2 s over 1,000 players")
	require.NotNil(t, r.RedisUsPerPlayer)
	assert.InDelta(t, 1000, *r.RedisUsPerPlayer, 1e-6)
	assert.Nil(t, cpuBetween(cpuSample{servers: []float64{-1}, redis: -1}, cpuSample{servers: []float64{3}, redis: -1}, 10), "no lobbyd figure, no report")
	assert.Nil(t, cpuBetween(cpuSample{servers: []float64{1}, redis: -1}, cpuSample{servers: []float64{3}, redis: -1}, 0), "nobody matched")
	assert.Nil(t, cpuBetween(cpuSample{servers: []float64{1}, redis: -1}, cpuSample{servers: []float64{3}, redis: -1}, 5).RedisSec, "no Redis figure without -redis-url")
}

// A real redis-server's INFO cpu is read through -redis-url.
func TestRedisCPUFromARealServer(t *testing.T) {
	r := storetest.StartRedis(t)
	rdb, err := openRedis(r.URL)
	require.NoError(t, err)
	defer rdb.Close()
	l := newLoad(config{URL: "http://127.0.0.1:1", URLs: []string{"http://127.0.0.1:1"}, MaxConnecting: 1}, nil)
	l.rdb = rdb
	s := l.sampleCPU(context.Background())
	require.Len(t, s.servers, 1)
	assert.Less(t, s.servers[0], 0.0, "nothing serves /metrics there")
	assert.GreaterOrEqual(t, s.redis, 0.0)
}
