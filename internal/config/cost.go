package config

// CostConfig prices what the cost figures of evaluations and the
// recommendation are computed from (cost). A candidate's own price
// (nims[].price_per_1k_tokens, nims[].price_per_gpu_hour) comes first;
// a candidate without one served by llama-server is priced by its
// measured CPU time.
type CostConfig struct {
	// CPUHourUSD is the price of one CPU thread (a vCPU) for an hour. A
	// candidate without a price of its own costs its server's measured
	// compute time per request × platform.local.threads × this price
	// (0: such candidates have no cost figure).
	CPUHourUSD float64 `yaml:"cpu_hour_usd"`
	// ProductionInputUSDPerMTok and ProductionOutputUSDPerMTok price the
	// production model per million prompt and completion tokens; its cost
	// per request is the usage its logged responses report × these prices.
	ProductionInputUSDPerMTok  float64 `yaml:"production_input_usd_per_million_tokens"`
	ProductionOutputUSDPerMTok float64 `yaml:"production_output_usd_per_million_tokens"`
}

// Default prices of the cost section (public list prices).
const (
	// CPUHourUSDDefault is the on-demand price of one vCPU-hour of a
	// general compute cloud instance: AWS EC2 c7i.large (2 vCPUs) at
	// $0.08925/hour in us-east-1.
	CPUHourUSDDefault = 0.0446
	// ProductionUSDPerMTokDefault is a 70B-class hosted model's list
	// price per million tokens, input and output alike: Llama 3.3 70B
	// Instruct Turbo on Together AI.
	ProductionUSDPerMTokDefault = 0.88
)

// CostDefaults returns the cost section's defaults.
func CostDefaults() CostConfig {
	return CostConfig{
		CPUHourUSD:                 CPUHourUSDDefault,
		ProductionInputUSDPerMTok:  ProductionUSDPerMTokDefault,
		ProductionOutputUSDPerMTok: ProductionUSDPerMTokDefault,
	}
}

// validateCost rejects negative prices.
func (c *Config) validateCost(p *problems) {
	for _, f := range []struct {
		key string
		v   float64
	}{
		{"cost.cpu_hour_usd", c.Cost.CPUHourUSD},
		{"cost.production_input_usd_per_million_tokens", c.Cost.ProductionInputUSDPerMTok},
		{"cost.production_output_usd_per_million_tokens", c.Cost.ProductionOutputUSDPerMTok},
	} {
		if f.v < 0 {
			p.add(f.key, "must not be negative (got %g)", f.v)
		}
	}
}
