package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

type demoFlags struct {
	records  int
	addr     string
	workload string
	client   string
	keep     bool
	// bench runs the demo this many times on fresh data directories and
	// reports each run's wall time and scores (0: one ordinary run).
	bench int
	// epochs and evalSize replace the demo's fine-tuning epochs and
	// evaluation set size (0: the demo's own).
	epochs, evalSize int
}

func newDemoCommand(g *globals) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a complete flywheel job on this machine with real local models",
		Long: `Run a complete flywheel job on the embedded default, with real models:
load a tool-calling workload (generated, deterministic), build the datasets, deploy
two tiny candidate models with llama-server, evaluate them as they are, with few-shot
examples and after fine-tuning, fine-tune them with PyTorch on the CPU, shut
everything down, and print the results and the recommendation.

Its data goes to <data dir>/demo unless --data-dir is given; while it runs, the API
and dashboard are served (see the printed address). The generated traffic is the same
in every run, timestamps included, so a rerun works on the same data; in <data dir>/demo
each run replaces the traffic earlier runs stored. scripts/install-local.sh
installs what it needs (scripts/demo.sh runs both).

With --bench N it runs the demo N times, each on a fresh data directory with its
output in that directory's demo.log, and prints each run's wall time, every
candidate's function_name_and_args_accuracy with its 95% interval per evaluation,
the recommendation, and whether all runs' scores are identical.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), g, f) },
	}
	cmd.Flags().IntVar(&f.records, "records", 800, "records of traffic to generate")
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:0", "address to serve the API and dashboard on while the demo runs")
	cmd.Flags().StringVar(&f.workload, "workload-id", "demo-assistant", "workload id of the generated traffic")
	cmd.Flags().StringVar(&f.client, "client-id", "demo", "client id of the generated traffic")
	cmd.Flags().BoolVar(&f.keep, "keep-serving", false, "keep serving after the run ends (Ctrl-C to stop)")
	cmd.Flags().IntVar(&f.epochs, "epochs", 0, "fine-tuning epochs (0: the local platform's default, 10); for accuracy-against-steps curves")
	cmd.Flags().IntVar(&f.evalSize, "eval-size", 0, "held-out evaluation items (0: the demo's 60)")
	cmd.Flags().IntVar(&f.bench, "bench", 0, "run the demo this many times on fresh data directories and report wall times, scores and whether they are identical")
	return cmd
}

// demoSettings tunes the configuration for a quick, seeded run of tiny
// models: a held-out set of 60, and few-shot prompts that fit their
// 2048-token context. It trains with the local platform's defaults.
func demoSettings(cfg *config.Config) {
	cfg.Platform.Name = config.PlatformLocal
	cfg.DataSplit.EvalSize = 60
	cfg.DataSplit.ValRatio = 0.1
	seed := int64(7)
	cfg.DataSplit.RandomSeed = &seed
	cfg.ICL.ExampleSelection = flywheel.SelectionUniform
	cfg.ICL.MaxContextLength = 2048
	cfg.ICL.ReservedTokens = 768
	cfg.ICL.MaxExamples = 2
	// Training is the local platform's default (config.TrainingDefaults:
	// all weights, 10 epochs at 1e-3), the same as `flywheel serve` uses.
	cfg.Engine.PollInterval = time.Second
	cfg.Eval.Concurrency = 2
	cfg.Eval.MaxTokens = 128
}

func runDemo(ctx context.Context, g *globals, f demoFlags) error {
	if f.bench != 0 {
		return runDemoBench(ctx, g, f)
	}
	_, err := demoOnce(ctx, g, f)
	return err
}

// demoOnce runs the demo once and returns the job's detail, also when the
// job did not complete (with the error that says so).
func demoOnce(ctx context.Context, g *globals, f demoFlags) (*flywheel.JobDetail, error) {
	ownDir := g.dataDir == "" && g.getenv(config.EnvDataDir) == ""
	if ownDir {
		g.dataDir = filepath.Join(config.DefaultDataDir(g.getenv), "demo")
	}
	cfg, err := g.load()
	if err != nil {
		return nil, err
	}
	if g.configPath == "" {
		demoSettings(cfg)
		if f.epochs != 0 {
			cfg.Training.Epochs = f.epochs
		}
		if f.evalSize != 0 {
			cfg.DataSplit.EvalSize = f.evalSize
		}
		if err := cfg.Validate(); err != nil {
			return nil, configError(err)
		}
	}
	if g.logLevel == "" {
		// The demo's own output tells the story; logs only for trouble.
		cfg.Logging.Level = "WARNING"
	}
	logger := g.logger(cfg)
	out := g.stdout
	start := time.Now()
	fmt.Fprintf(out, "Flywheel demo — data in %s, platform %s, candidates:", cfg.DataDir, cfg.Platform.Name)
	for _, n := range cfg.NIMs {
		fmt.Fprintf(out, " %s", n.ModelName)
	}
	fmt.Fprintln(out)

	a, err := app.Open(ctx, cfg, logger, app.Options{Workers: true, API: true})
	if err != nil {
		return nil, fmt.Errorf("%w\n(run scripts/install-local.sh first, or scripts/demo.sh, which runs both)", err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, err
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	go func() { _ = a.Serve(serveCtx, ln) }()
	url := "http://" + ln.Addr().String()
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "API and dashboard: %s/ui   (River: %s/ui/river)\n", url, url)

	recs, err := demoTraffic(f)
	if err != nil {
		return nil, err
	}
	if ownDir {
		// Every run in the demo's own data directory starts from its own
		// traffic alone: the directory may hold a demo's from before the
		// timestamps were fixed (newer than these, so the job would pick
		// those). A directory named with --data-dir is the user's: its
		// records stay, and the fixed timestamps make a rerun add nothing.
		n, err := a.Store.DeleteLogs(ctx, flywheel.LogFilter{WorkloadID: f.workload, ClientID: f.client})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			fmt.Fprintf(out, "Replaced the %d stored records of %q traffic that earlier demo runs left\n", n, f.workload)
		}
	}
	inserted, dups, err := a.Store.InsertLogs(ctx, recs)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Loaded %d records of %q traffic (%d already stored); like real traffic it repeats questions,\n"+
		"and the job keeps one record per distinct question (its \"Records\" count)\n", inserted, f.workload, dups)

	run, err := a.Engine.CreateJob(ctx, flywheel.CreateJobRequest{WorkloadID: f.workload, ClientID: f.client})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Job %s created; following it (Ctrl-C stops the demo; the job resumes on the next start)\n\n", run.ID)

	jobs := func(args ...string) error {
		c := cli.NewJobsCommand(cli.Options{ServerURL: func() string { return url }, Stdout: out, Stderr: g.stderr})
		c.SetArgs(args)
		c.SetOut(out)
		c.SetErr(g.stderr)
		return c.ExecuteContext(ctx)
	}
	watchErr := jobs("watch", run.ID)
	fmt.Fprintln(out)
	if err := jobs("get", run.ID, "-o", "table"); err != nil {
		return nil, err
	}
	final, err := a.Store.GetRun(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	if st := final.Stats; st != nil {
		fmt.Fprintf(out, "\nData: %d records read, %d duplicate questions dropped, %d invalid, %d filtered: %d kept (eval %d, train %d, val %d).\n",
			st.Total, st.Deduplicated, st.InvalidFormat, st.Filtered, st.Selected, st.Eval, st.Train, st.Val)
	}
	fmt.Fprintf(out, "\nDemo finished in %s: job %s %s.\n", time.Since(start).Round(time.Second), run.ID, final.Status)
	fmt.Fprintf(out, "Explore it later with: %s serve --data-dir %s   then open http://127.0.0.1:8000/ui\n", selfName(), cfg.DataDir)
	if f.keep {
		fmt.Fprintf(out, "Serving on %s until Ctrl-C.\n", url)
		<-ctx.Done()
	}
	detail, err := a.Engine.GetJob(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	if final.Status != flywheel.RunCompleted {
		if watchErr != nil {
			return detail, watchErr
		}
		return detail, fmt.Errorf("job ended %s: %s", final.Status, final.Error)
	}
	return detail, nil
}

// selfName is how to run this binary again from the current directory: its
// path relative to it (bin/flywheel when scripts/demo.sh built it), or its
// name when it is found on PATH.
func selfName() string {
	exe, err := os.Executable()
	if err != nil {
		return "flywheel"
	}
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	if p, err := exec.LookPath(filepath.Base(exe)); err == nil && resolve(p) == resolve(exe) {
		return filepath.Base(exe)
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
	}
	return exe
}

// demoTraffic is the demo's generated traffic: the same records, timestamps
// included, in every run, so that a run in a data directory that holds an
// earlier run's traffic finds it already stored and works on the same data.
// (With the time of each run, the records piled up, and from the third run
// on the job's newest-records limit took a different, smaller set: 500
// distinct questions, then 455, then 366.)
func demoTraffic(f demoFlags) ([]flywheel.LogRecord, error) {
	end := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	return demo.Records(f.records, 42, f.workload, f.client, end)
}
