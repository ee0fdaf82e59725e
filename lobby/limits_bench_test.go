package lobby

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// BenchmarkRequestBudget is the limiter's cost per request frame: one take
// from the player's request bucket (docs/benchmarks.md). Nothing goes to
// Redis per request.
func BenchmarkRequestBudget(b *testing.B) {
	l := Limits{Requests: Rate{PerSecond: 1e12, Burst: 1e12}}
	var budget playerBudget
	for b.Loop() {
		if !budget.take(&budget.requests, l.Requests, 1) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkRequestBudgetRefused is a refused frame's cost: the request and
// rejection buckets are both looked at.
func BenchmarkRequestBudgetRefused(b *testing.B) {
	l := Limits{Requests: Rate{PerSecond: 1e-9, Burst: 1}, Rejections: Rate{PerSecond: 1e12, Burst: 1e12}}
	var budget playerBudget
	budget.take(&budget.requests, l.Requests, 1)
	for b.Loop() {
		if budget.take(&budget.requests, l.Requests, 1) || !budget.take(&budget.rejections, l.Rejections, 1) {
			b.Fatal("unexpected")
		}
	}
}

// BenchmarkRateLimiterAllow is the per-connection x/time/rate limiter the
// budgets replaced, for comparison.
func BenchmarkRateLimiterAllow(b *testing.B) {
	lim := rate.NewLimiter(rate.Limit(1e12), 1e9)
	for b.Loop() {
		lim.Allow()
	}
}

// BenchmarkCarryOver is the cost of saving a spent budget when a
// connection ends, and of resuming it at the next handshake.
func BenchmarkCarryOver(b *testing.B) {
	l := DefaultLimits()
	now := time.Now()
	var spent playerBudget
	spent.requests.take(l.Requests, now, 10)
	for b.Loop() {
		data, _ := spent.carryOver(&l, now)
		var fresh playerBudget
		fresh.resume(&l, data, now)
	}
}
