package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric sums, over the series of reg's metric name whose labels include
// every one of labels (nil or empty: every series), their values: a
// counter's or a gauge's, a histogram's sample count. found is false when
// no series matched (the metric was never set, or has no such labels).
func Metric(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) (v float64, found bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, want := range labels {
				if have[k] != want {
					continue series
				}
			}
			found = true
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return v, found
}
