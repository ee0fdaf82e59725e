package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// setRedisLogger sends go-redis's own log lines (reconnects, dial
// failures) to logger at debug level. Without it go-redis prints
// unstructured lines to stderr, one per failed dial, which floods the log
// during an outage; the components that use the store already warn about
// it at a bounded rate. go-redis has one logger per process, unguarded, so
// it is set once: by the first store opened with a logger.
func setRedisLogger(logger *slog.Logger) {
	redisLoggerOnce.Do(func() { redis.SetLogger(slogAdapter{logger}) })
}

var redisLoggerOnce sync.Once

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// undoFailed logs that a best-effort write failed: what names what it was
// for ("roll back ticket claim"), attrs say whose (ids only, never a
// secret). What such a write leaves behind is harmless by design (a claim
// on a ticket that does not exist is replaced by the next join, a key left
// over expires), but an operator should see that it happened.
func (s *Store) undoFailed(ctx context.Context, what string, err error, attrs ...any) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	s.log.WarnContext(ctx, "best-effort write failed: "+what, append(attrs, "err", err)...)
}
