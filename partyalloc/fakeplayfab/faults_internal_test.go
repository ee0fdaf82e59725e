package fakeplayfab

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFaultsDelayWithinJitter(t *testing.T) {
	f := Faults{Latency: 100 * time.Millisecond, Jitter: 50 * time.Millisecond}
	for range 1000 {
		d := f.delay()
		assert.GreaterOrEqual(t, d, 50*time.Millisecond)
		assert.LessOrEqual(t, d, 150*time.Millisecond)
	}
	for range 1000 {
		assert.GreaterOrEqual(t, Faults{Latency: time.Millisecond, Jitter: time.Second}.delay(), time.Duration(0))
	}
}

func TestFaultsDrawShares(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		want   fault
	}{
		{"none", Faults{}, faultNone},
		{"throttle", Faults{ThrottleRate: 1}, faultThrottle},
		{"error", Faults{ErrorRate: 1}, faultError},
		{"drop", Faults{DropResponseRate: 1}, faultDrop},
		{"throttle first", Faults{ThrottleRate: 1, ErrorRate: 1}, faultThrottle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				assert.Equal(t, tt.want, tt.faults.draw())
			}
		})
	}

	counts := map[fault]int{}
	f := Faults{ThrottleRate: 0.25, ErrorRate: 0.25, DropResponseRate: 0.25}
	const n = 20000
	for range n {
		counts[f.draw()]++
	}
	for _, k := range []fault{faultNone, faultThrottle, faultError, faultDrop} {
		assert.InDelta(t, 0.25, float64(counts[k])/n, 0.03, "share of fault %d", k)
	}
}
