package store

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metricsHook times every Redis round trip (a command, or a pipeline of
// them: the group commit makes most of lobbyd's traffic pipelines) and
// counts the failed ones. A "nil" reply is an answer, not a failure.
type metricsHook struct {
	seconds *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// newMetricsHook returns the hook with its metrics, to be registered.
func newMetricsHook() metricsHook {
	h := metricsHook{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lobbyd_redis_command_seconds",
			Help:    "Redis round trips' latency as lobbyd sees it (the wait for a free connection included), by kind (command or pipeline); blocking stream reads are left out.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12), // 100 µs to ~1.5 s
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_redis_errors_total",
			Help: "Redis round trips that failed (after go-redis's retries), by kind (command or pipeline).",
		}, []string{"kind"}),
	}
	return h
}

// isConnSetup reports whether cmds is the pipeline go-redis runs on a new
// connection (HELLO or AUTH, SELECT, CLIENT SETINFO, …).
func isConnSetup(cmds []redis.Cmder) bool {
	if len(cmds) == 0 {
		return false
	}
	switch cmds[0].Name() {
	case "hello", "auth", "select", "client":
		return true
	}
	return false
}

func (metricsHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h metricsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	seconds, failed := h.seconds.WithLabelValues("command"), h.errors.WithLabelValues("command")
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		if name := cmd.Name(); name != "xreadgroup" && name != "xread" {
			seconds.Observe(time.Since(start).Seconds())
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			failed.Inc()
		}
		return err
	}
}

func (h metricsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	seconds, failed := h.seconds.WithLabelValues("pipeline"), h.errors.WithLabelValues("pipeline")
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if isConnSetup(cmds) {
			// go-redis's own set-up of a new connection: its CLIENT
			// SETINFO fails on Redis before 7.2, which is no failure.
			return next(ctx, cmds)
		}
		start := time.Now()
		err := next(ctx, cmds)
		seconds.Observe(time.Since(start).Seconds())
		if err != nil && !errors.Is(err, redis.Nil) {
			failed.Inc()
		}
		return err
	}
}
