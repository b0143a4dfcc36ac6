package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// NewRedactor returns the redactor of cfg's logs.redaction. When reg is not
// nil, what it replaces is counted in flywheel_redactions_total{path,
// detector} there.
func NewRedactor(cfg *config.Config, reg prometheus.Registerer) (*redact.Redactor, error) {
	r, err := redact.New(cfg.Logs.Redaction)
	if err != nil {
		return nil, fmt.Errorf("logs.redaction: %w", err)
	}
	if reg == nil || !r.Enabled() {
		return r, nil
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flywheel_redactions_total",
		Help: "Values replaced by redaction before records were stored or used, by ingest path and detector.",
	}, []string{"path", "detector"})
	if err := reg.Register(vec); err != nil {
		return nil, fmt.Errorf("register redaction metrics: %w", err)
	}
	return r.WithObserver(func(path string, c redact.Counts) {
		for d, n := range c {
			vec.WithLabelValues(path, d).Add(float64(n))
		}
	}), nil
}
