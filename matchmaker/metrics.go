package matchmaker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	depth     *prometheus.GaugeVec
	formed    *prometheus.CounterVec
	expired   *prometheus.CounterVec
	wait      *prometheus.HistogramVec
	spread    *prometheus.HistogramVec
	imbalance *prometheus.HistogramVec
	relaxed   *prometheus.CounterVec
	blocked   *prometheus.GaugeVec
	leader    *prometheus.GaugeVec
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
		imbalance: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lobbyd_match_team_imbalance", Help: "Highest minus lowest team mean skill in a match, per queue with teams.",
			Buckets: []float64{0, 5, 10, 25, 50, 100, 200, 400, 800}}, []string{"queue"}),
		relaxed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_matches_relaxed_total", Help: "Matches that needed a relaxed rule (an attribute's name, latency, skill or teams), per queue and rule."},
			[]string{"queue", "rule"}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lobbyd_tickets_blocked", Help: "Searching tickets by the rule that leaves them too few compatible tickets (an attribute's name, skill or region), per queue, from the leader's last summary (about once a second)."},
			[]string{"queue", "rule"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lobbyd_queue_leader", Help: "1 when this node holds the queue's formation lease (leads it), 0 otherwise; summed over nodes, 0 means the queue has no leader."},
			[]string{"queue"}),
	}
	if reg != nil {
		reg.MustRegister(m.depth, m.formed, m.expired, m.wait, m.spread, m.imbalance, m.relaxed, m.blocked, m.leader)
	}
	return m
}

// setBlocked sets the blocked-tickets gauge of every rule of the queue
// (rules blocking nobody to 0).
func (m *metrics) setBlocked(q Queue, blocked map[string]int) {
	rules := []string{ruleRegion}
	if q.Skill.Enabled() {
		rules = append(rules, ruleSkill)
	}
	for _, a := range q.Attributes {
		rules = append(rules, a.Name)
	}
	for _, r := range rules {
		m.blocked.WithLabelValues(q.Name, r).Set(float64(blocked[r]))
	}
}

// queueObservers are the per-match metrics of one queue, resolved once for
// a batch of matches rather than by label on every observation.
type queueObservers struct {
	formed                  prometheus.Counter
	wait, spread, imbalance prometheus.Observer
	relaxed                 func(rule string) prometheus.Counter
}

func (m *metrics) of(queue string) queueObservers {
	return queueObservers{formed: m.formed.WithLabelValues(queue),
		wait: m.wait.WithLabelValues(queue), spread: m.spread.WithLabelValues(queue),
		imbalance: m.imbalance.WithLabelValues(queue),
		relaxed:   func(rule string) prometheus.Counter { return m.relaxed.WithLabelValues(queue, rule) }}
}
