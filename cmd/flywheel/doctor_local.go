package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/platform/local"
)

// withLocalChecks wraps the doctor's run: when the configured platform is
// local it first checks the platform's dependencies (llama-server found
// and running, Python importing torch, the candidates' model files) and
// prints each with the command that fixes it (on stderr with --json), then
// runs the other checks; the command fails when a dependency is missing.
func withLocalChecks(g *globals, next func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := g.load()
		if err != nil || cfg.Platform.Name != config.PlatformLocal {
			return next(cmd, args) // it reports a bad config
		}
		out := g.stdout
		if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
			out = g.stderr
		}
		l := cfg.Platform.Local
		checks := local.CheckDependencies(cmd.Context(), local.CheckOptions{LlamaServer: l.LlamaServerPath, InstallDir: l.InstallDir,
			Python: l.PythonPath, ModelsDir: l.ModelsDir, Models: cfg.NIMs, Getenv: g.getenv, Base: l.Options["base"]})
		problems := writeLocalChecks(out, checks)
		err = next(cmd, args)
		if problems > 0 {
			return errors.Join(err, fmt.Errorf("%d local platform problem(s); run the fix shown for each", problems))
		}
		return err
	}
}

// writeLocalChecks prints the checks and returns how many failed.
func writeLocalChecks(w io.Writer, checks []local.Check) int {
	fmt.Fprintln(w, "Local platform:")
	problems := 0
	for _, c := range checks {
		state := "ok"
		if !c.OK {
			state = "PROBLEM"
			problems++
		}
		fmt.Fprintf(w, "  %-8s %-22s %s\n", state, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "  %-8s %-22s fix: %s\n", "", "", c.Fix)
		}
	}
	return problems
}
