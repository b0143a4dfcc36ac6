package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// benchRun is one demo run as the bench reports it.
type benchRun struct {
	Dir    string
	Wall   time.Duration
	Status flywheel.RunStatus
	// Scores holds function_name_and_args_accuracy per candidate and
	// evaluation, in the job's order.
	Scores         []benchScore
	Recommendation string
	Err            error
}

// benchScore is one evaluation's score with its interval.
type benchScore struct {
	Candidate string
	EvalType  flywheel.EvalType
	Detail    flywheel.ScoreDetail
	// Has is false when the evaluation has no such score (it failed or
	// never ran).
	Has bool
}

// key names the evaluation the score is of.
func (s benchScore) key() string { return s.Candidate + " " + string(s.EvalType) }

// String renders the score as the bench prints it.
func (s benchScore) String() string {
	if !s.Has {
		return "—"
	}
	d := s.Detail
	return fmt.Sprintf("%.3f [%.3f, %.3f] n=%d", d.Mean, d.CILow, d.CIHigh, d.N)
}

// newBenchRun collects what the bench reports from a finished demo job.
func newBenchRun(dir string, wall time.Duration, d *flywheel.JobDetail, err error) benchRun {
	r := benchRun{Dir: dir, Wall: wall, Err: err}
	if d == nil {
		return r
	}
	r.Status = d.Run.Status
	if rec := d.Run.Recommendation; rec != nil {
		r.Recommendation = rec.Reason
	}
	for _, n := range d.NIMs {
		for _, e := range n.Evaluations {
			det, ok := e.Details[flywheel.ScoreFunctionNameAndArgs]
			r.Scores = append(r.Scores, benchScore{Candidate: n.ModelName, EvalType: e.EvalType, Detail: det, Has: ok && det.N > 0})
		}
	}
	return r
}

// writeBenchRun prints one run: its wall time and status, each score, and
// the recommendation.
func writeBenchRun(w io.Writer, i, n int, r benchRun) {
	status := string(r.Status)
	if status == "" {
		status = "not created"
	}
	fmt.Fprintf(w, "run %d/%d: %s, job %s (data and demo.log in %s)\n", i, n, r.Wall.Round(time.Second), status, r.Dir)
	if r.Err != nil {
		fmt.Fprintf(w, "  error: %v\n", r.Err)
	}
	width := 0
	for _, s := range r.Scores {
		width = max(width, len(s.key()))
	}
	for _, s := range r.Scores {
		fmt.Fprintf(w, "  %-*s  %s %s\n", width, s.key(), flywheel.ScoreFunctionNameAndArgs, s)
	}
	if r.Recommendation != "" {
		fmt.Fprintf(w, "  recommendation: %s\n", r.Recommendation)
	}
}

// writeBenchSummary prints the wall times over all runs and whether every
// run scored every evaluation the same (mean, interval and n), naming the
// evaluations that differ.
func writeBenchSummary(w io.Writer, runs []benchRun) {
	if len(runs) == 0 {
		return
	}
	walls := make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i] = r.Wall
	}
	slices.Sort(walls)
	runsWord := "runs"
	if len(runs) == 1 {
		runsWord = "run"
	}
	fmt.Fprintf(w, "\nBench: %d %s, wall time min %s, median %s, max %s\n", len(runs), runsWord,
		walls[0].Round(time.Second), walls[len(walls)/2].Round(time.Second), walls[len(walls)-1].Round(time.Second))
	if len(runs) == 1 {
		fmt.Fprintln(w, "Determinism: one run, nothing to compare")
		return
	}
	var differ []string
	keys := map[string]bool{}
	var order []string
	for _, r := range runs {
		for _, s := range r.Scores {
			if !keys[s.key()] {
				keys[s.key()] = true
				order = append(order, s.key())
			}
		}
	}
	for _, k := range order {
		seen := make([]string, len(runs))
		for i, r := range runs {
			seen[i] = "missing"
			for _, s := range r.Scores {
				if s.key() == k {
					seen[i] = s.String()
				}
			}
		}
		if slices.ContainsFunc(seen, func(v string) bool { return v != seen[0] }) {
			parts := make([]string, len(seen))
			for i, v := range seen {
				parts[i] = fmt.Sprintf("run %d %s", i+1, v)
			}
			differ = append(differ, fmt.Sprintf("  %s: %s", k, strings.Join(parts, "; ")))
		}
	}
	if len(differ) == 0 {
		fmt.Fprintf(w, "Determinism: all %d runs' scores are identical (%d evaluations)\n", len(runs), len(order))
		return
	}
	fmt.Fprintf(w, "Determinism: scores differ between runs in %d of %d evaluations:\n%s\n", len(differ), len(order), strings.Join(differ, "\n"))
}

// runDemoBench runs the demo f.bench times, each on a fresh data directory
// whose demo.log holds that run's output, and prints each run as it ends
// and the summary. It fails when a run fails or is interrupted, after
// reporting the runs that ended.
func runDemoBench(ctx context.Context, g *globals, f demoFlags) error {
	if f.bench < 0 {
		return flywheel.Errorf(flywheel.EINVALID, "--bench must be positive (got %d)", f.bench)
	}
	if f.keep {
		return flywheel.Errorf(flywheel.EINVALID, "--bench and --keep-serving do not go together")
	}
	base := g.dataDir
	if base == "" {
		base = g.getenv(config.EnvDataDir)
	}
	if base == "" {
		base = filepath.Join(config.DefaultDataDir(g.getenv), "demo")
	}
	base = filepath.Join(base, "bench-"+time.Now().UTC().Format("20060102-150405"))
	out := g.stdout
	fmt.Fprintf(out, "Demo bench: %d runs, each on a fresh data directory under %s\n", f.bench, base)
	var runs []benchRun
	var failed error
	for i := 1; i <= f.bench; i++ {
		dir := filepath.Join(base, fmt.Sprintf("run-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		logFile, err := os.Create(filepath.Join(dir, "demo.log"))
		if err != nil {
			return err
		}
		run := *g
		run.dataDir, run.stdout, run.stderr = dir, logFile, logFile
		start := time.Now()
		d, err := demoOnce(ctx, &run, demoFlags{records: f.records, addr: f.addr, workload: f.workload, client: f.client, epochs: f.epochs, evalSize: f.evalSize})
		r := newBenchRun(dir, time.Since(start), d, err)
		if cerr := logFile.Close(); err == nil && cerr != nil {
			r.Err = cerr
		}
		runs = append(runs, r)
		writeBenchRun(out, i, f.bench, r)
		if r.Err != nil {
			failed = errors.Join(failed, fmt.Errorf("run %d: %w", i, r.Err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	writeBenchSummary(out, runs)
	return failed
}
