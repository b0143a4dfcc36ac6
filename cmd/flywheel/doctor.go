package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/app"
)

func newDoctorCommand(g *globals) *cobra.Command {
	var fix, asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor [--fix]",
		Short: "Find stranded stage jobs, stuck runs, orphaned resources and inconsistent rows; --fix repairs them",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := app.Open(ctx, cfg, g.logger(cfg), app.Options{})
			if err != nil {
				return err
			}
			defer a.Close()
			findings, err := a.Engine.Doctor(ctx, fix)
			if err != nil {
				return err
			}
			if asJSON {
				return g.printJSON(findings)
			}
			if len(findings) == 0 {
				fmt.Fprintln(g.stdout, "No problems found.")
				return nil
			}
			unfixed := 0
			for _, f := range findings {
				state := "found"
				switch {
				case f.Fixed:
					state = "fixed"
				case f.FixError != "":
					state = "fix failed: " + f.FixError
				}
				if !f.Fixed {
					unfixed++
				}
				fmt.Fprintf(g.stdout, "%-18s run %-24s %s [%s]\n", f.Kind, f.RunID, f.Detail, state)
			}
			if unfixed > 0 && !fix {
				return fmt.Errorf("%d problems found; run 'flywheel doctor --fix' to repair them", unfixed)
			}
			if unfixed > 0 {
				return fmt.Errorf("%d problems could not be repaired", unfixed)
			}
			return nil
		},
	}
	cmd.RunE = withLocalChecks(g, cmd.RunE)
	cmd.Flags().BoolVar(&fix, "fix", false, "repair what is found")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print findings as JSON")
	return cmd
}
