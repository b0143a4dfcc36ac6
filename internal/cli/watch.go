package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/client"
)

func (j *jobsCmd) watchCommand() *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job live until it ends: stages, progress and scores per candidate",
		Long: "Follow a job live until it ends. On a terminal the view is redrawn in place; " +
			"otherwise each change is printed as one line. Exits non-zero when the job fails or is cancelled.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, not %s", interval)
			}
			c, err := j.client()
			if err != nil {
				return err
			}
			return j.watch(commandContext(cmd), c, args[0], interval)
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", WatchIntervalDefault, "how often to poll the server")
	return cmd
}

// watcher draws successive states of a job.
type watcher interface {
	draw(d api.JobDetailResponse) error
}

func (j *jobsCmd) watch(ctx context.Context, c *client.Client, id string, interval time.Duration) error {
	var w watcher
	if j.opts.IsTerminal(j.opts.Stdout) {
		w = &liveView{out: j.opts.Stdout, width: j.opts.Width(j.opts.Stdout), now: j.opts.Now}
	} else {
		w = &lineView{out: j.opts.Stdout, now: j.opts.Now, seen: map[string]string{}}
	}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		d, err := c.GetJob(ctx, id)
		if err != nil {
			var ae *client.APIError
			if errors.As(err, &ae) && ae.StatusCode < http.StatusInternalServerError {
				return fmt.Errorf("watch job %s: %w", id, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			fmt.Fprintf(j.opts.Stderr, "poll %d failed: %v\n", failures, err)
			if failures >= WatchMaxFailures {
				return fmt.Errorf("watch job %s: %d polls in a row failed: %w", id, failures, err)
			}
			timer.Reset(interval)
			continue
		}
		failures = 0
		if err := w.draw(d); err != nil {
			return err
		}
		if terminal(d.Status) {
			if d.Status == "completed" {
				return nil
			}
			msg := fmt.Sprintf("job %s ended %s", id, d.Status)
			if d.Error != nil {
				msg += ": " + *d.Error
			}
			// The run's error ("all 2 candidates failed") says what, the
			// failed stages say why.
			if why := failedStages(d); len(why) > 0 {
				msg += "; " + strings.Join(why, "; ")
			}
			return errors.New(msg)
		}
		timer.Reset(interval)
	}
}

// liveView redraws a compact view in place on a terminal.
type liveView struct {
	out   io.Writer
	width int
	now   func() time.Time
	lines int
	last  string
}

func (v *liveView) draw(d api.JobDetailResponse) error {
	frame := renderFrame(d, v.now(), v.width)
	if frame == v.last {
		return nil
	}
	var b strings.Builder
	if v.lines > 0 {
		// Move to the first line of the previous frame and clear below it.
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", v.lines)
	}
	b.WriteString(frame)
	v.last = frame
	v.lines = strings.Count(frame, "\n")
	if _, err := io.WriteString(v.out, b.String()); err != nil {
		return fmt.Errorf("draw: %w", err)
	}
	return nil
}

// barWidth is the width of a progress bar's inside.
const barWidth = 20

func progressBar(pct float64) string {
	pct = min(max(pct, 0), 100)
	full := int(pct / 100 * barWidth)
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", barWidth-full) + "]" + fmt.Sprintf(" %3.0f%%", pct)
}

func stageMark(status string) string {
	switch status {
	case "succeeded":
		return "✓"
	case "failed":
		return "✗"
	case "running":
		return "▶"
	case "queued":
		return "…"
	case "cancelled":
		return "⊘"
	case "skipped":
		return "-"
	}
	return "·"
}

// renderFrame draws a job as lines no wider than width.
func renderFrame(d api.JobDetailResponse, now time.Time, width int) string {
	var lines []string
	add := func(format string, args ...any) {
		lines = append(lines, strings.TrimRight(truncate(fmt.Sprintf(format, args...), width-1), " "))
	}
	started := d.StartedAt
	add("Job %s  %s/%s  %s  %s", d.ID, d.WorkloadID, d.ClientID, strings.ToUpper(d.Status), elapsed(&started, d.FinishedAt, now))
	if len(d.Stages) > 0 {
		chips := make([]string, 0, len(d.Stages))
		for _, s := range d.Stages {
			chips = append(chips, stageMark(s.Status)+" "+s.Name)
		}
		add("  %s", strings.Join(chips, "  "))
		for _, s := range d.Stages {
			if s.Error != nil && s.Status == "failed" {
				add("  ✗ %s: %s", s.Name, *s.Error)
			}
		}
	}
	for _, n := range d.NIMs {
		add("%s  %s  (deployment %s)", n.ModelName, n.Status, n.DeploymentStatus)
		for _, s := range n.Stages {
			line := fmt.Sprintf("  %s %-23s %-10s", stageMark(s.Status), s.Name, s.Status)
			if s.Status == "running" {
				line += " " + progressBar(s.Progress)
			}
			if s.Attempts > 1 {
				line += fmt.Sprintf(" attempt %d", s.Attempts)
			}
			if s.Error != nil && s.Status == "failed" {
				line += "  " + *s.Error
			}
			add("%s", line)
		}
		for _, e := range n.Evaluations {
			scores := formatScores(e)
			if scores == "" {
				scores = progressBar(e.Progress)
			}
			add("    %-16s %s", e.EvalType, scores)
		}
		if n.Error != nil {
			add("    error: %s", *n.Error)
		}
	}
	if d.Error != nil {
		add("error: %s", *d.Error)
	}
	for _, w := range d.Warnings {
		add("warning: %s", w.Message)
	}
	if r := d.Recommendation; r != nil {
		add("recommendation: %s", r.Reason)
		for _, f := range r.Findings {
			add("finding: %s", f)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// lineView prints one line per change, for logs and pipes.
type lineView struct {
	out  io.Writer
	now  func() time.Time
	seen map[string]string
}

func (v *lineView) draw(d api.JobDetailResponse) error {
	type fact struct{ key, text string }
	var facts []fact
	facts = append(facts, fact{"run", fmt.Sprintf("job %s %s", d.ID, d.Status)})
	for _, s := range d.Stages {
		facts = append(facts, fact{"stage//" + s.Name, fmt.Sprintf("stage %s %s%s%s", s.Name, s.Status, attemptNote(s), stageError(s))})
	}
	for _, n := range d.NIMs {
		text := fmt.Sprintf("%s %s (deployment %s)", n.ModelName, n.Status, n.DeploymentStatus)
		if n.Error != nil {
			text += ": " + *n.Error
		}
		facts = append(facts, fact{"nim/" + n.ID, text})
		for _, s := range n.Stages {
			text := fmt.Sprintf("%s stage %s %s%s", n.ModelName, s.Name, s.Status, attemptNote(s))
			if q := int(s.Progress) / 25 * 25; s.Status == "running" && q > 0 {
				// Quarter steps keep the output short.
				text += fmt.Sprintf(" %d%%", q)
			}
			facts = append(facts, fact{"stage/" + n.ID + "/" + s.Name, text + stageError(s)})
		}
		for _, e := range n.Evaluations {
			if e.FinishedAt == nil && e.Error == nil {
				continue
			}
			text := fmt.Sprintf("%s %s %s", n.ModelName, e.EvalType, orDash(formatScores(e)))
			if e.Error != nil {
				text += " error: " + *e.Error
			}
			facts = append(facts, fact{"eval/" + n.ID + "/" + e.EvalType, text})
		}
	}
	if d.Error != nil {
		facts = append(facts, fact{"error", "error: " + *d.Error})
	}
	for i, w := range d.Warnings {
		facts = append(facts, fact{fmt.Sprintf("warning/%d", i), "warning: " + w.Message})
	}
	if r := d.Recommendation; r != nil {
		facts = append(facts, fact{"recommendation", "recommendation: " + r.Reason})
		for i, f := range r.Findings {
			facts = append(facts, fact{fmt.Sprintf("finding/%d", i), "finding: " + f})
		}
	}
	stamp := v.now().UTC().Format("15:04:05")
	var b strings.Builder
	for _, f := range facts {
		if _, ok := v.seen[f.key]; !ok && strings.HasSuffix(f.text, " pending") {
			// Stages that have not started yet are news only once they do.
			continue
		}
		if v.seen[f.key] == f.text {
			continue
		}
		v.seen[f.key] = f.text
		fmt.Fprintf(&b, "%s %s\n", stamp, f.text)
	}
	if _, err := io.WriteString(v.out, b.String()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// stageError is ": <error>" for a failed stage, else "".
func stageError(s api.Stage) string {
	if s.Status != "failed" || s.Error == nil || *s.Error == "" {
		return ""
	}
	return ": " + truncate(*s.Error, 300)
}

// failedStages says why a run failed: "<candidate> <stage>: <error>" for
// every failed stage with an error, run-level stages first; candidates
// whose stage failed with the same error share one entry.
func failedStages(d api.JobDetailResponse) []string {
	var out []string
	for _, s := range d.Stages {
		if e := stageError(s); e != "" {
			out = append(out, s.Name+e)
		}
	}
	type key struct{ stage, err string }
	var order []key
	who := map[key][]string{}
	for _, n := range d.NIMs {
		for _, s := range n.Stages {
			e := stageError(s)
			if e == "" {
				continue
			}
			k := key{s.Name, e}
			if _, ok := who[k]; !ok {
				order = append(order, k)
			}
			who[k] = append(who[k], n.ModelName)
		}
	}
	for _, k := range order {
		out = append(out, strings.Join(who[k], ", ")+" "+k.stage+k.err)
	}
	return out
}

func attemptNote(s api.Stage) string {
	if s.Attempts > 1 {
		return fmt.Sprintf(" (attempt %d)", s.Attempts)
	}
	return ""
}
