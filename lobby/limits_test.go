package lobby

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketRefillsAtItsRate(t *testing.T) {
	r := Rate{PerSecond: 2, Burst: 4}
	var b bucket
	t0 := time.Unix(1000, 0)
	for i := 0; i < 4; i++ {
		require.True(t, b.take(r, t0, 1), "burst token %d", i)
	}
	assert.False(t, b.take(r, t0, 1), "the burst is spent")
	assert.Equal(t, 500*time.Millisecond, b.wait(r, t0, 1))
	assert.True(t, b.take(r, t0.Add(500*time.Millisecond), 1), "one token back after 1/rate")
	assert.Equal(t, 2*time.Second, b.untilFull(r, t0.Add(500*time.Millisecond)))
	assert.True(t, (&bucket{}).take(Rate{}, t0, 1e9), "a zero rate is no limit")
}

func TestCarryOverResumesTheEmptierBudget(t *testing.T) {
	l := DefaultLimits()
	now := time.Now()
	var spent playerBudget
	for i := 0; i < 30; i++ {
		require.True(t, spent.requests.take(l.Requests, now, 1))
	}
	spent.penalty = now.Add(time.Minute)
	data, ttl := spent.carryOver(&l, now)
	require.NotNil(t, data)
	assert.Greater(t, ttl, time.Minute, "kept while the penalty lasts")

	var fresh playerBudget
	fresh.resume(&l, data, now)
	assert.InDelta(t, 30, fresh.requests.missing(l.Requests, now), 0.1)
	assert.Equal(t, spent.penalty.UnixMilli(), fresh.penalty.UnixMilli())

	// A local budget emptier than the carried one stays as it is.
	var emptier playerBudget
	for i := 0; i < 40; i++ {
		emptier.requests.take(l.Requests, now, 1)
	}
	emptier.resume(&l, data, now)
	assert.InDelta(t, 40, emptier.requests.missing(l.Requests, now), 0.1)

	data, ttl = (&playerBudget{}).carryOver(&l, now)
	assert.Nil(t, data, "a full budget carries nothing")
	assert.Zero(t, ttl)

	for _, junk := range []string{``, `{`, `{"at":1,"r":1e308,"p":-5}`, `{"r":"x"}`} {
		var b playerBudget
		b.resume(&l, []byte(junk), now) // never panics, never spends more than a burst
		assert.LessOrEqual(t, b.requests.missing(l.Requests, now), l.Requests.Burst, "%q", junk)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		limits Limits
		remote string
		header string
		want   string
	}{
		{"peer v4", Limits{}, "192.0.2.1:5000", "", "192.0.2.1/32"},
		{"peer v6 by /64", Limits{}, "[2001:db8:1:2:3:4:5:6]:5000", "", "2001:db8:1:2::/64"},
		{"v4-mapped", Limits{}, "[::ffff:192.0.2.9]:1", "", "192.0.2.9/32"},
		{"header ignored unless configured", Limits{}, "10.1.1.1:1", "198.51.100.1", "10.1.1.1/32"},
		{"header from any peer", Limits{ClientIPHeader: "X-Forwarded-For"}, "192.0.2.1:1", "198.51.100.1, 198.51.100.2", "198.51.100.2/32"},
		{"header from a trusted proxy", Limits{ClientIPHeader: "X-Forwarded-For", TrustedProxies: trusted}, "10.1.1.1:1", "198.51.100.1, 10.2.2.2", "198.51.100.1/32"},
		{"header from an untrusted peer", Limits{ClientIPHeader: "X-Forwarded-For", TrustedProxies: trusted}, "192.0.2.1:1", "198.51.100.1", "192.0.2.1/32"},
		{"garbage header", Limits{ClientIPHeader: "X-Forwarded-For"}, "192.0.2.1:1", "not-an-ip", "192.0.2.1/32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.header != "" {
				r.Header.Set("X-Forwarded-For", tc.header)
			}
			assert.Equal(t, tc.want, newLimiter(tc.limits).clientAddr(r).String())
		})
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                    "alice",
		"  bob \t  the\nbuilder  ": "bob the builder",
		"\u202egnp.exe":            "gnp.exe",
		"a\x00b\x1bc":              "abc",
		"\xff\xfe":                 "\uFFFD",
		"\x01\x02":                 "",
		"ééééééééééééééééééééééééééééééééééé":  "éééééééééééééééééééééééééééééééé",
		"abcdefghijklmnopqrstuvwxyz01234 6789": "abcdefghijklmnopqrstuvwxyz01234",
	} {
		assert.Equal(t, want, CleanName(in), "%q", in)
	}
}

// The flood rule as docs/protocol.md states it, with the default budgets
// (20 a second, bursts of 40, and as many refused): a client steadily
// within twice the rate is never closed; from full budgets 80 frames at
// once leave it open and an 81st closes it; at 60 frames a second it is
// closed after 3 s (a second of burst answered, then 40 refused a second
// against the 20 the second budget gets back).
func TestFloodRule(t *testing.T) {
	l := DefaultLimits()
	l.Rejections = l.Requests
	t0 := time.Unix(1_000_000, 0)
	// frames sends n frames a second for d from full budgets and returns
	// when the socket would be closed (-1: never).
	frames := func(n float64, d time.Duration) time.Duration {
		var b playerBudget
		for i := 0; ; i++ {
			at := time.Duration(float64(i) / n * float64(time.Second))
			if at > d {
				return -1
			}
			if b.charge(&l, t0.Add(at)) == flooding {
				return at
			}
		}
	}
	assert.Equal(t, time.Duration(-1), frames(40, time.Minute), "twice the rate, a minute")
	assert.Equal(t, time.Duration(-1), frames(39, time.Minute))
	closed := frames(60, time.Minute)
	assert.InDelta(t, 3*time.Second, closed, float64(50*time.Millisecond), "at 60 a second: %v", closed)

	var b playerBudget
	for i := 0; i < 80; i++ {
		require.NotEqual(t, flooding, b.charge(&l, t0), "frame %d of a burst of 80", i+1)
	}
	assert.Equal(t, flooding, b.charge(&l, t0), "the 81st")
}
