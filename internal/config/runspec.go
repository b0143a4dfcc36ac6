package config

import (
	"maps"
	"slices"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// RunSpec returns the settings a new run is frozen with. It is a deep copy:
// later changes to c never reach it. Secrets are left out (the spec is
// stored), so stages take API keys from the live Config.
func (c *Config) RunSpec() flywheel.RunSpec {
	spec := flywheel.RunSpec{
		Candidates: make([]flywheel.NIMConfig, len(c.NIMs)),
		DataSplit:  c.DataSplit,
		ICL:        c.ICL,
		Training:   c.Training,
		LoRA:       c.LoRA,
		Judge:      c.Judge,
		Namespace:  c.NMP.Namespace,
	}
	for i, n := range c.NIMs {
		spec.Candidates[i] = cloneNIM(n)
	}
	if l := c.DataSplit.Limit; l != nil {
		v := *l
		spec.DataSplit.Limit = &v
	}
	if s := c.DataSplit.RandomSeed; s != nil {
		v := *s
		spec.DataSplit.RandomSeed = &v
	}
	if s := c.ICL.SimilarityConfig; s != nil {
		sc := *s
		if e := s.EmbeddingNIMConfig; e != nil {
			ec := *e
			ec.APIKey = ""
			sc.EmbeddingNIMConfig = &ec
		}
		spec.ICL.SimilarityConfig = &sc
	}
	spec.LoRA.TargetModules = slices.Clone(c.LoRA.TargetModules)
	spec.Judge.APIKey = ""
	return spec
}

// cloneNIM returns a copy of n that shares no memory with it.
func cloneNIM(n flywheel.NIMConfig) flywheel.NIMConfig {
	if n.CustomizerConfigs != nil {
		cc := *n.CustomizerConfigs
		n.CustomizerConfigs = &cc
	}
	n.Extra = cloneAny(n.Extra)
	return n
}

// cloneAny deep-copies the maps and slices of a decoded YAML or JSON value.
func cloneAny[T any](v T) T {
	var out any
	switch x := any(v).(type) {
	case map[string]any:
		if x == nil {
			return v
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneAny(e)
		}
		out = m
	case []any:
		if x == nil {
			return v
		}
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cloneAny(e)
		}
		out = s
	default:
		return v
	}
	return out.(T)
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	out := *c
	out.NIMs = make([]flywheel.NIMConfig, len(c.NIMs))
	for i, n := range c.NIMs {
		out.NIMs[i] = cloneNIM(n)
	}
	spec := c.RunSpec()
	out.DataSplit = spec.DataSplit
	out.ICL = spec.ICL
	if e := c.ICL.SimilarityConfig; e != nil && e.EmbeddingNIMConfig != nil {
		out.ICL.SimilarityConfig.EmbeddingNIMConfig.APIKey = e.EmbeddingNIMConfig.APIKey
	}
	out.LoRA = spec.LoRA
	out.Platform.Local.Options = maps.Clone(c.Platform.Local.Options)
	out.Engine.StageLimits = maps.Clone(c.Engine.StageLimits)
	return &out
}
