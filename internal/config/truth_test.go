package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidateFindsAtStart checks problems that used to surface only
// hours into a run, or with the wrong bound.
func TestValidateFindsAtStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"NeMoNIMWithoutTag", func(c *Config) { c.NIMs[1].Tag = "" },
			[]string{"nims[1].tag: required when platform.name is nemo (the NIM image tag to deploy; not needed with nmp_config.external_deployments)"}},
		{"ExternalDeploymentsNeedNoTag", func(c *Config) {
			c.NMP.ExternalDeployments = true
			c.NIMs[0].Tag, c.NIMs[1].Tag = "", ""
		}, nil},
		{"LocalPlatformNeedsNoTag", func(c *Config) {
			c.Platform.Name = PlatformLocal
			c.NIMs[0].Tag = ""
		}, nil},
		{"EvalSizeHuge", func(c *Config) { c.DataSplit.EvalSize = 1<<63 - 1 },
			[]string{"data_split_config.eval_size: must be at most 1000000000 (got 9223372036854775807)"}},
		{"MinTotalRecordsHuge", func(c *Config) { c.DataSplit.MinTotalRecords, c.DataSplit.Limit = 1<<40, nil },
			[]string{"data_split_config.min_total_records: must be at most 1000000000 (got 1099511627776)"}},
		{"LimitHuge", func(c *Config) { l := 1 << 62; c.DataSplit.Limit = &l },
			[]string{"data_split_config.limit: must be at most 1000000000, or null for no limit (got 4611686018427387904)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load("testdata/nemo.good.yaml", testEnv())
			require.NoError(t, err)
			tt.modify(cfg)
			var got []string
			for _, fe := range FieldErrors(cfg.Validate()) {
				got = append(got, fe.Error())
			}
			require.Equal(t, tt.want, got)
		})
	}
}
