package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

type metrics struct {
	e        *Engine
	duration *prometheus.HistogramVec
	outcomes *prometheus.CounterVec
	retries  *prometheus.CounterVec
	reapedC  prometheus.Counter
	live     *prometheus.CounterVec
	runsDesc *prometheus.Desc
	jobsDesc *prometheus.Desc
}

func newMetrics(e *Engine) *metrics {
	return &metrics{
		e: e,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flywheel_stage_duration_seconds", Help: "Time from a stage's first attempt to its end.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600},
		}, []string{"stage", "outcome"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_stage_outcomes_total", Help: "Stages ended, by outcome.",
		}, []string{"stage", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_stage_retries_total", Help: "Stage attempts that failed transiently and were retried.",
		}, []string{"stage"}),
		reapedC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flywheel_reaped_resources_total", Help: "Orphaned resources released by the reaper.",
		}),
		live: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_liveness_repairs_total",
			Help: "Repairs by the liveness check and doctor: stage jobs handed back (stranded_job, dead_worker_job), stages whose job ended without them finished or enqueued again (stage_job_ended), stuck runs settled (stuck_run).",
		}, []string{"kind"}),
		runsDesc: prometheus.NewDesc("flywheel_runs", "Runs by status.", []string{"status"}, nil),
		jobsDesc: prometheus.NewDesc("flywheel_queue_jobs", "River jobs by queue and state (queue depth).", []string{"queue", "state"}, nil),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.duration, m.outcomes, m.retries, m.reapedC, m.live, m} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) outcome(stage flywheel.StageName, outcome string, d time.Duration) {
	m.duration.WithLabelValues(string(stage), outcome).Observe(d.Seconds())
	m.outcomes.WithLabelValues(string(stage), outcome).Inc()
}

func (m *metrics) retry(stage flywheel.StageName) { m.retries.WithLabelValues(string(stage)).Inc() }

func (m *metrics) reaped(n int) { m.reapedC.Add(float64(n)) }

func (m *metrics) liveness(kind string) { m.live.WithLabelValues(kind).Inc() }

// Describe implements prometheus.Collector for the gauges read at scrape time.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.runsDesc
	ch <- m.jobsDesc
}

// Collect reads run and queue counts from the database.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := m.e.store.CountRuns(ctx); err == nil {
		for _, s := range []flywheel.RunStatus{flywheel.RunPending, flywheel.RunRunning, flywheel.RunCompleted, flywheel.RunFailed, flywheel.RunCancelled} {
			ch <- prometheus.MustNewConstMetric(m.runsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	}
	if jobs, err := m.e.store.JobStates(ctx); err == nil {
		for k, n := range jobs {
			ch <- prometheus.MustNewConstMetric(m.jobsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
}
