package matchmaker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	depth   *prometheus.GaugeVec
	formed  *prometheus.CounterVec
	expired *prometheus.CounterVec
	wait    *prometheus.HistogramVec
	spread  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lobbyd_queue_depth", Help: "Searching tickets per queue (updated by the queue's leader and by GET /v1/queues)."},
			[]string{"queue"}),
		formed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_matches_formed_total", Help: "Matches committed per queue."}, []string{"queue"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_tickets_expired_total", Help: "Tickets that waited past their queue's ticketTimeout."}, []string{"queue"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lobbyd_ticket_wait_seconds", Help: "Time from queue.join to match, per ticket, per queue.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"queue"}),
		spread: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lobbyd_match_skill_spread", Help: "Highest minus lowest ticket skill in a match, per queue.",
			Buckets: []float64{0, 10, 25, 50, 100, 200, 400, 800, 1600}}, []string{"queue"}),
	}
	if reg != nil {
		reg.MustRegister(m.depth, m.formed, m.expired, m.wait, m.spread)
	}
	return m
}

// queueObservers are the per-match metrics of one queue, resolved once for
// a batch of matches rather than by label on every observation.
type queueObservers struct {
	formed       prometheus.Counter
	wait, spread prometheus.Observer
}

func (m *metrics) of(queue string) queueObservers {
	return queueObservers{formed: m.formed.WithLabelValues(queue),
		wait: m.wait.WithLabelValues(queue), spread: m.spread.WithLabelValues(queue)}
}
