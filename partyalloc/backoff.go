package partyalloc

import (
	"math/rand/v2"
	"time"
)

// backoff returns how long to wait before retry number retry (1 for the first
// retry). The wait is drawn uniformly from [base, min(ceil, base*2^retry)]:
// full jitter, so that many allocators failing together do not come back
// together, with base as a floor so a retry never hammers the service at once.
// A server-given retryAfter is a lower bound the jitter may exceed but never
// undercut, even when it is longer than ceil.
func backoff(retry int, base, ceil, retryAfter time.Duration) time.Duration {
	ceiling := base
	for i := 0; i < retry && ceiling < ceil; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, ceil)
	d := base
	if ceiling > base {
		d += rand.N(ceiling - base + 1)
	}
	return max(d, retryAfter)
}
