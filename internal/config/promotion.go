package config

import "time"

// PromotionRouting tunes how the gateway routes workloads with an active
// promotion (capture.promotion).
type PromotionRouting struct {
	// RouteRefresh is how often the gateway reloads the active promotions
	// made by other processes (0: 5 s); promotions made in this process
	// apply to the next request.
	RouteRefresh time.Duration `yaml:"route_refresh"`
	// ShadowQueueSize bounds the background copies waiting to be sent (0:
	// 1,024); a copy that finds it full is dropped and counted.
	ShadowQueueSize int `yaml:"shadow_queue_size"`
	// ShadowWorkers send the background copies (0: 8).
	ShadowWorkers int `yaml:"shadow_workers"`
	// ReferenceShareCanary and ReferenceShareFull are the shares (0–1) of
	// the requests a candidate answers in canary and full mode that
	// production also answers in the background, as the reference for
	// online scoring (unset: 1 in canary, 0.1 in full).
	ReferenceShareCanary *float64 `yaml:"reference_share_canary"`
	ReferenceShareFull   *float64 `yaml:"reference_share_full"`
	// ReadyTimeout bounds the wait for a promoted candidate's deployment to
	// answer (0: 30 min); production answers meanwhile.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
}

// validatePromotion checks capture.promotion.
func (c *Config) validatePromotion(p *problems) {
	r := c.Capture.Promotion
	if r.RouteRefresh < 0 {
		p.add("capture.promotion.route_refresh", "must not be negative (got %s)", r.RouteRefresh)
	}
	if r.ReadyTimeout < 0 {
		p.add("capture.promotion.ready_timeout", "must not be negative (got %s)", r.ReadyTimeout)
	}
	p.nonNegative("capture.promotion.shadow_queue_size", r.ShadowQueueSize)
	p.nonNegative("capture.promotion.shadow_workers", r.ShadowWorkers)
	for _, s := range []struct {
		field string
		v     *float64
	}{{"capture.promotion.reference_share_canary", r.ReferenceShareCanary}, {"capture.promotion.reference_share_full", r.ReferenceShareFull}} {
		if s.v != nil && !(*s.v >= 0 && *s.v <= 1) {
			p.add(s.field, "must be between 0 and 1 (got %g)", *s.v)
		}
	}
}

// ShareOrNone turns an optional share into capture.Config's convention:
// 0 for the default, a negative number for none.
func ShareOrNone(v *float64) float64 {
	switch {
	case v == nil:
		return 0
	case *v == 0:
		return -1
	}
	return *v
}
