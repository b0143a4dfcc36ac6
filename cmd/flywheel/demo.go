package main

import (
	"github.com/spf13/cobra"
)

func newDemoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "demo",
		Short:  "Run a complete flywheel job on this machine with real local models",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, g)
		},
	}
}
