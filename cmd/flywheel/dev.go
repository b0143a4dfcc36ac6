package main

import (
	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

func newDevCommand(g *globals) *cobra.Command {
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Development aids (fakes of external services)",
	}
	var addr string
	fake := &cobra.Command{
		Use:   "nemo-fake",
		Short: "Serve a stateful fake of the NeMo microservices (a test and development aid, never a platform)",
		Long: `Serve a stateful fake of NeMo's Deployment Management, Customizer, Evaluator, Data Store,
Entity Store and NIM proxy on one address, on its fast setting, for offline development.
Point nmp_config at it: nemo_base_url and datastore_base_url = http://ADDR,
nim_base_url = http://ADDR/nim.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			opts := nemotest.Options{}
			if cfg.Judge.ModelName != "" {
				opts.Models = []string{cfg.Judge.ModelName}
			}
			return nemotest.ListenAndServe(cmd.Context(), addr, opts, g.logger(cfg))
		},
	}
	fake.Flags().StringVar(&addr, "addr", "127.0.0.1:9100", "listen address")
	dev.AddCommand(fake)
	return dev
}
