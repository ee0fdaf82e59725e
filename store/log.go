package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own log lines (reconnects, dial failures) to
// logger at debug level. Without it go-redis prints unstructured lines to
// stderr, one per failed dial, which floods the log during an outage; the
// components that use the store already warn about it at a bounded rate.
// go-redis has one logger per process, so this is process-wide.
func SetLogger(logger *slog.Logger) {
	redis.SetLogger(slogAdapter{logger})
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
