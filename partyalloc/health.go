package partyalloc

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrorName names an allocation's error for operators: the PlayFab error
// name (such as "ServiceUnavailable"), "invalid_response", "network",
// "deadline" or "error".
func ErrorName(err error) string {
	var apiErr *APIError
	var tErr *transportError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.outcome()
	case errors.As(err, &tErr):
		return "network"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return "error"
}

// Health is what the PlayFab client's state says right now.
type Health struct {
	// InFlight counts RequestPartyService calls under way.
	InFlight int `json:"inFlight"`
	// TokenAge is how long ago the cached entity token was fetched, and
	// TokenExpiresIn how long it has left; both zero when none is cached.
	TokenAge       time.Duration `json:"-"`
	TokenExpiresIn time.Duration `json:"-"`
}

// Health returns the client's calls in flight and entity token age.
func (c *PlayFabClient) Health() Health {
	c.semOnce.Do(func() { c.sem = make(chan struct{}, c.maxInFlight()) })
	h := Health{InFlight: len(c.sem)}
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	if tok.value != "" {
		now := c.clock()
		h.TokenAge, h.TokenExpiresIn = now.Sub(tok.fetchedAt), tok.expires.Sub(now)
	}
	return h
}

// Collectors are gauges of the client's Health, for a Prometheus registry:
// lobbyd_playfab_in_flight and lobbyd_playfab_entity_token_age_seconds.
func (c *PlayFabClient) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lobbyd_playfab_in_flight", Help: "RequestPartyService calls in flight on this node."},
			func() float64 { return float64(c.Health().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lobbyd_playfab_entity_token_age_seconds", Help: "Age of the cached PlayFab entity token (0 when none is cached)."},
			func() float64 { return c.Health().TokenAge.Seconds() }),
	}
}

// CallStats counts PlayFab calls by API and outcome in memory (for the
// operator console, which shows every node's) and passes each report on to
// Next, if set.
type CallStats struct {
	Next Observer

	mu       sync.Mutex
	outcomes map[string]map[string]int64 // api -> outcome -> calls
}

// PlayFabCall implements Observer.
func (s *CallStats) PlayFabCall(api, outcome string, d time.Duration) {
	s.mu.Lock()
	if s.outcomes == nil {
		s.outcomes = make(map[string]map[string]int64)
	}
	if s.outcomes[api] == nil {
		s.outcomes[api] = make(map[string]int64)
	}
	s.outcomes[api][outcome]++
	s.mu.Unlock()
	if s.Next != nil {
		s.Next.PlayFabCall(api, outcome, d)
	}
}

// PlayFabRetry implements Observer.
func (s *CallStats) PlayFabRetry(api string) {
	if s.Next != nil {
		s.Next.PlayFabRetry(api)
	}
}

// Outcomes returns a copy of the counts: api -> outcome ("ok" or an error
// name) -> calls since the process started.
func (s *CallStats) Outcomes() map[string]map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int64, len(s.outcomes))
	for api, m := range s.outcomes {
		out[api] = maps.Clone(m)
	}
	return out
}

// IsThrottle reports whether a call outcome means PlayFab throttled the
// call (HTTP 429's error names).
func IsThrottle(outcome string) bool {
	return strings.Contains(outcome, "RateLimit") || strings.Contains(outcome, "ConcurrentRequestLimit") || strings.Contains(outcome, "Throttl")
}
