package partyalloc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PrometheusObserver counts PlayFab calls and retries in Prometheus.
type PrometheusObserver struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	retries *prometheus.CounterVec
}

// NewPrometheusObserver registers PlayFab call metrics on reg.
func NewPrometheusObserver(reg prometheus.Registerer) *PrometheusObserver {
	o := &PrometheusObserver{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_playfab_calls_total", Help: "PlayFab HTTP calls, by API and outcome (ok or the error name)."},
			[]string{"api", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lobbyd_playfab_call_seconds", Help: "PlayFab HTTP call latency, by API.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"api"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_playfab_retries_total", Help: "PlayFab calls retried after a failure, by API."},
			[]string{"api"}),
	}
	reg.MustRegister(o.calls, o.latency, o.retries)
	return o
}

// PlayFabCall implements Observer.
func (o *PrometheusObserver) PlayFabCall(api, outcome string, d time.Duration) {
	o.calls.WithLabelValues(api, outcome).Inc()
	o.latency.WithLabelValues(api).Observe(d.Seconds())
}

// PlayFabRetry implements Observer.
func (o *PrometheusObserver) PlayFabRetry(api string) { o.retries.WithLabelValues(api).Inc() }
