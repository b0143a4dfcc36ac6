package online

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Results of a sample handed to the Recorder (label result of
// flywheel_online_samples_total).
const (
	ResultScored      = "scored"
	ResultDropped     = "dropped"
	ResultUnscorable  = "unscorable"
	ResultStoreFailed = "store_failed"
)

// Results of a rollback decision (label result of
// flywheel_online_rollbacks_total).
const (
	RollbackDone     = "rolled_back"
	RollbackFailed   = "failed"
	RollbackDisabled = "disabled"
	// RollbackNoPromoter counts decisions to roll back in a process that
	// has no Promoter (they are only logged).
	RollbackNoPromoter = "no_promoter"
)

// Metrics are the online evaluation's Prometheus metrics, shared by the
// Recorder and the Monitor of a process.
type Metrics struct {
	samples   *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	agreement *prometheus.GaugeVec
	ciLow     *prometheus.GaugeVec
	ciHigh    *prometheus.GaugeVec
	window    *prometheus.GaugeVec
	rollbacks *prometheus.CounterVec

	mu sync.Mutex
	// shown holds the label values of the series whose gauges are set.
	shown map[[3]string]bool
}

// NewMetrics returns the metrics, registered with reg when it is not nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	series := []string{"workload", "client", "model"}
	withMetric := []string{"workload", "client", "model", "metric"}
	m := &Metrics{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_online_samples_total",
			Help: "Online samples (requests answered by production and a promoted candidate) by result (scored, dropped: the queue was full, unscorable, store_failed).",
		}, []string{"result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flywheel_online_latency_seconds",
			Help:    "Answer latency of the scored online samples, by role (production, candidate; the candidate's answered samples only).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"workload", "client", "model", "role"}),
		agreement: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flywheel_online_agreement",
			Help: "Mean score of an active promotion's candidate against production over the rolling window, by metric.",
		}, withMetric),
		ciLow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flywheel_online_agreement_ci_low",
			Help: "Lower bound of the 95% interval of flywheel_online_agreement.",
		}, withMetric),
		ciHigh: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flywheel_online_agreement_ci_high",
			Help: "Upper bound of the 95% interval of flywheel_online_agreement.",
		}, withMetric),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flywheel_online_window_samples",
			Help: "Samples in an active promotion's rolling window.",
		}, series),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_online_rollbacks_total",
			Help: "Automatic rollback decisions by result (rolled_back, failed, disabled: online.auto_rollback is off, no_promoter).",
		}, []string{"result"}),
		shown: map[[3]string]bool{},
	}
	for _, r := range []string{ResultScored, ResultDropped, ResultUnscorable, ResultStoreFailed} {
		m.samples.WithLabelValues(r)
	}
	for _, r := range []string{RollbackDone, RollbackFailed, RollbackDisabled, RollbackNoPromoter} {
		m.rollbacks.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.samples, m.latency, m.agreement, m.ciLow, m.ciHigh, m.window, m.rollbacks} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register online metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) count(result string, n int) { m.samples.WithLabelValues(result).Add(float64(n)) }

func (m *Metrics) observe(s flywheel.OnlineScore) {
	if s.ProductionLatencyMS > 0 {
		m.latency.WithLabelValues(s.WorkloadID, s.ClientID, s.Model, "production").Observe(s.ProductionLatencyMS / 1000)
	}
	if s.Error == "" && s.CandidateLatencyMS > 0 {
		m.latency.WithLabelValues(s.WorkloadID, s.ClientID, s.Model, "candidate").Observe(s.CandidateLatencyMS / 1000)
	}
}

// show sets the gauges of the active promotions' stats and removes those
// of series no longer shown.
func (m *Metrics) show(stats []flywheel.OnlineStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := map[[3]string]bool{}
	for _, st := range stats {
		key := [3]string{st.WorkloadID, st.ClientID, st.Model}
		if m.shown[key] {
			// Metrics that left the window must not linger.
			m.forget(key)
		}
		now[key] = true
		m.window.WithLabelValues(key[:]...).Set(float64(st.N))
		for metric, d := range st.Scores {
			lv := []string{key[0], key[1], key[2], metric}
			m.agreement.WithLabelValues(lv...).Set(d.Mean)
			m.ciLow.WithLabelValues(lv...).Set(d.CILow)
			m.ciHigh.WithLabelValues(lv...).Set(d.CIHigh)
		}
	}
	for key := range m.shown {
		if !now[key] {
			m.forget(key)
		}
	}
	m.shown = now
}

func (m *Metrics) forget(key [3]string) {
	labels := prometheus.Labels{"workload": key[0], "client": key[1], "model": key[2]}
	for _, g := range []*prometheus.GaugeVec{m.agreement, m.ciLow, m.ciHigh, m.window} {
		g.DeletePartialMatch(labels)
	}
}
