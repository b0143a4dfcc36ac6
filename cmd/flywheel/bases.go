package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/platform/local"
)

func newBasesCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bases",
		Short: "Pre-train and list the local platform's base models",
		Long: `The local platform's candidates (local/tiny-s, local/tiny-m, …) start from base models
that Flywheel pre-trains itself, once, on a generated tool-calling corpus (copy drills and the
broad tool corpus; see docs/local-models.md). A base is built on first use when none is
found; 'bases build' builds them ahead of time, with progress, into the install directory
(as root) or the models directory. Building is deterministic and cached: an unchanged
recipe is found again and not rebuilt.`,
	}
	cmd.AddCommand(newBasesBuildCommand(g), newBasesListCommand(g))
	return cmd
}

// basesPlatform returns a local platform of the configuration and the
// sizes of its local candidates (or of names, when given).
func basesPlatform(g *globals, names []string) (*local.Platform, []local.ModelSize, error) {
	cfg, err := g.load()
	if err != nil {
		return nil, nil, err
	}
	cfg.Platform.Name = config.PlatformLocal
	p, err := local.New(app.LocalOptions(cfg, g.logger(cfg)))
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		for _, n := range cfg.NIMs {
			if strings.HasPrefix(n.ModelName, "local/") {
				names = append(names, n.ModelName)
			}
		}
	}
	var sizes []local.ModelSize
	seen := map[string]bool{}
	for _, n := range names {
		s, err := local.SizeFor(n)
		if err != nil {
			return nil, nil, fmt.Errorf("--size: %w", err)
		}
		if !seen[s.Name] {
			seen[s.Name] = true
			sizes = append(sizes, s)
		}
	}
	if len(sizes) == 0 {
		return nil, nil, errors.New("no local candidate configured: name sizes with --size tiny-s,tiny-m")
	}
	return p, sizes, nil
}

func newBasesBuildCommand(g *globals) *cobra.Command {
	var (
		sizes    []string
		dir      string
		parallel int
		force    bool
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Pre-train the bases of the configured local candidates (skips those already built)",
		Example: `  flywheel bases build                      # the configured candidates' sizes
  flywheel bases build --size tiny-s --parallel 1`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, want, err := basesPlatform(g, sizes)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = p.InstallModelsDir()
				if dir == "" || !local.Writable(dir) {
					dir = p.ModelsDir()
				}
			}
			return buildBases(cmd.Context(), g, p, want, dir, parallel, force)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&sizes, "size", nil, "sizes to build (default: those of the configured local candidates)")
	fl.StringVar(&dir, "dir", "", "directory to write the bases to (default: the install directory's models/ when writable, else the models directory)")
	fl.IntVar(&parallel, "parallel", 2, "bases trained at once (each on one thread)")
	fl.BoolVar(&force, "force", false, "build again even when a base with the same recipe is found")
	return cmd
}

func buildBases(ctx context.Context, g *globals, p *local.Platform, sizes []local.ModelSize, dir string, parallel int, force bool) error {
	var todo []local.ModelSize
	for _, s := range sizes {
		if f, ok := p.FindBase(s); ok && !force {
			fmt.Fprintf(g.stdout, "%-7s built: %s\n", s.Name, f)
			continue
		}
		todo = append(todo, s)
	}
	if len(todo) == 0 {
		return nil
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(g.stdout, format, args...)
	}
	start := time.Now()
	sem := make(chan struct{}, max(parallel, 1))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, s := range todo {
		r := local.DefaultBaseRecipe(s)
		say("%-7s pre-training into %s: %d steps of %d records (%d drills, %d corpus records)%s, one thread; progress every 5%%\n",
			s.Name, dir, r.Steps, r.BatchSize, r.Drills, r.Corpus, fewShotText(r.FewShot))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			began := time.Now()
			next, from := 0.0, -1
			var firstAt time.Time
			bi, err := p.BuildBase(ctx, s, r, dir, func(bp local.BaseProgress) {
				if bp.Phase != "train" || bp.Total == 0 {
					return
				}
				if from < 0 {
					// The rate counts from the first step seen: neither the
					// corpus nor a first phase found built is in it.
					from, firstAt = bp.Step, time.Now()
				}
				f := float64(bp.Step) / float64(bp.Total)
				// Every 5% of the steps this build trains (a first phase
				// found built is not among them).
				done := float64(bp.Step-from) / float64(max(bp.Total-from, 1))
				if done+1e-9 < next && bp.Step != bp.Total && bp.Step != from {
					return
				}
				next = done + 0.05
				left := "?"
				if bp.Step > from {
					eta := time.Duration(float64(time.Since(firstAt)) / float64(bp.Step-from) * float64(bp.Total-bp.Step))
					left = eta.Round(time.Second).String()
				}
				say("%-7s %3.0f%%  step %5d/%d  loss %.3f  %s elapsed, ~%s left\n", s.Name, 100*f, bp.Step, bp.Total, bp.Loss,
					time.Since(began).Round(time.Second), left)
			})
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.Name, err)
				return
			}
			say("%-7s done in %s: %s (%d params, %.1f MB, %d steps, final loss %.3f)\n", s.Name, time.Since(began).Round(time.Second),
				bi.Path, bi.Params, float64(bi.Bytes)/1e6, bi.Steps, bi.FinalLoss)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	say("bases ready in %s\n", time.Since(start).Round(time.Second))
	return nil
}

func newBasesListCommand(g *globals) *cobra.Command {
	var sizes []string
	return &cobra.Command{
		Use:   "list",
		Short: "Show each local size's base: where it is, how it was built",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(sizes) == 0 {
				for _, s := range local.Sizes() {
					sizes = append(sizes, s.Name)
				}
			}
			p, want, err := basesPlatform(g, sizes)
			if err != nil {
				return err
			}
			for _, s := range want {
				f, ok := p.FindBase(s)
				if !ok {
					fmt.Fprintf(g.stdout, "%-7s not built (built on first use; or run flywheel bases build --size %s); looked in %s\n",
						s.Name, s.Name, strings.Join(p.BaseDirs(), ", "))
					continue
				}
				bi, err := local.BaseInfoOf(f)
				if err != nil {
					fmt.Fprintf(g.stdout, "%-7s %s (no build record: %v)\n", s.Name, f, err)
					continue
				}
				fmt.Fprintf(g.stdout, "%-7s %s  %d params, %.1f MB, %d steps in %.0f s, final loss %.3f, built %s\n",
					s.Name, f, bi.Params, float64(bi.Bytes)/1e6, bi.Steps, bi.Seconds, bi.FinalLoss, bi.BuiltAt)
			}
			return nil
		},
	}
}

// fewShotText describes a recipe's few-shot phase for bases build.
func fewShotText(f *local.FewShotPhase) string {
	if f == nil {
		return ""
	}
	return fmt.Sprintf(", then %d steps on %d few-shot drills (up to %d examples), %d drills and %d corpus records",
		f.Steps, f.Drills, f.MaxExamples, f.Plain, f.Corpus)
}
