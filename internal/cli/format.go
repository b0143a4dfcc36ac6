package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func formatTime(t *api.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// elapsed is the time from start to end, or to now while running.
func elapsed(start, end *api.Time, now time.Time) string {
	if start == nil || start.IsZero() {
		return "-"
	}
	stop := now
	if end != nil && !end.IsZero() {
		stop = end.Time
	}
	d := stop.Sub(start.Time)
	if d < 0 {
		d = 0
	}
	if d >= time.Minute {
		d = d.Round(time.Second)
	} else {
		d = d.Round(100 * time.Millisecond)
	}
	return d.String()
}

func truncate(s string, n int) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	r := []rune(s)
	if n <= 1 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func writeJobTable(w io.Writer, jobs []api.JobListItem, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tWORKLOAD\tCLIENT\tSTATUS\tSTARTED\tDURATION\tRECORDS\tERROR")
	for _, j := range jobs {
		started := j.StartedAt
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", j.ID, j.WorkloadID, orDash(deref(j.ClientID)), j.Status,
			formatTime(&started), elapsed(&started, j.FinishedAt, now), j.NumRecords, truncate(deref(j.Error), 60))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// headlineScores are the scores shown first, in this order: the metric a
// candidate is judged by (tool calls, then answers), then its companions.
// The others follow in key order.
var headlineScores = []string{flywheel.ScoreFunctionNameAndArgs, flywheel.ScoreSimilarity,
	flywheel.ScoreToolCallingCorrectness, flywheel.ScoreFunctionName}

// scoreKeys returns the keys of scores, headline scores first.
func scoreKeys(scores map[string]float64) []string {
	rank := func(k string) int {
		for i, h := range headlineScores {
			if h == k {
				return i
			}
		}
		return len(headlineScores)
	}
	keys := make([]string, 0, len(scores))
	for k := range scores {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// formatScores writes scores headline first (see headlineScores), with the
// sample count and the confidence interval when the evaluation has them.
func formatScores(e api.Evaluation) string {
	keys := scoreKeys(e.Scores)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		s := fmt.Sprintf("%s=%.3f", k, e.Scores[k])
		if d, ok := e.ScoreDetails[k]; ok && d.N > 0 {
			s += fmt.Sprintf(" [%.3f, %.3f] n=%d", d.CILow, d.CIHigh, d.N)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func writeDetail(w io.Writer, d api.JobDetailResponse, now time.Time) error {
	tw := newTable(w)
	started := d.StartedAt
	fmt.Fprintf(tw, "Job:\t%s\n", d.ID)
	fmt.Fprintf(tw, "Workload:\t%s (client %s)\n", d.WorkloadID, d.ClientID)
	if d.WorkloadType != "" {
		fmt.Fprintf(tw, "Workload type:\t%s\n", d.WorkloadType)
	}
	fmt.Fprintf(tw, "Status:\t%s\n", d.Status)
	fmt.Fprintf(tw, "Started:\t%s\n", formatTime(&started))
	fmt.Fprintf(tw, "Finished:\t%s\n", formatTime(d.FinishedAt))
	fmt.Fprintf(tw, "Duration:\t%s\n", elapsed(&started, d.FinishedAt, now))
	fmt.Fprintf(tw, "Records:\t%d\n", d.NumRecords)
	if j := d.LLMJudge; j != nil {
		fmt.Fprintf(tw, "Judge:\t%s (%s, %s)%s\n", j.ModelName, j.Type, j.DeploymentStatus, suffixErr(j.Error))
	}
	if s := d.DataStats; s != nil {
		fmt.Fprintf(tw, "Data:\t%d records: %d invalid, %d filtered, %d duplicates, %d selected -> eval %d, train %d, val %d\n",
			s.Total, s.InvalidFormat, s.Filtered, s.Deduplicated, s.Selected, s.Eval, s.Train, s.Val)
		if l := s.Leakage; l != nil {
			fmt.Fprintf(tw, "Leakage guard:\t%d removed from train/val as repeats of eval records (%d exact, %d near; train %d, val %d)\n",
				l.Removed(), l.Exact, l.Near, l.Train, l.Val)
		}
	}
	if d.Error != nil {
		fmt.Fprintf(tw, "Error:\t%s\n", *d.Error)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write detail: %w", err)
	}
	if len(d.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		for _, wr := range d.Warnings {
			fmt.Fprintf(w, "  - %s\n", wr.Message)
		}
	}

	if len(d.Datasets) > 0 {
		fmt.Fprintln(w, "\nDatasets:")
		tw = newTable(w)
		fmt.Fprintln(tw, "  NAME\tTYPE\tRECORDS\tURI")
		for _, ds := range d.Datasets {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", ds.Name, orDash(ds.Type), ds.NumRecords, orDash(deref(ds.NMPURI)))
		}
		_ = tw.Flush()
	}
	if len(d.Stages) > 0 {
		fmt.Fprintln(w, "\nStages:")
		writeStages(w, d.Stages, now)
	}
	for i, n := range d.NIMs {
		fmt.Fprintf(w, "\nCandidate %d: %s\n", i+1, n.ModelName)
		tw = newTable(w)
		fmt.Fprintf(tw, "  Status:\t%s (deployment %s)\n", n.Status, n.DeploymentStatus)
		fmt.Fprintf(tw, "  Runtime:\t%.1fs\n", n.RuntimeSeconds)
		if n.Error != nil {
			fmt.Fprintf(tw, "  Error:\t%s\n", *n.Error)
		}
		_ = tw.Flush()
		if len(n.Stages) > 0 {
			writeStages(w, n.Stages, now)
		}
		if len(n.Evaluations) > 0 {
			tw = newTable(w)
			fmt.Fprintln(tw, "  EVALUATION\tPROGRESS\tDURATION\tSCORES")
			for _, e := range n.Evaluations {
				st := e.StartedAt
				scores := formatScores(e)
				if e.Error != nil {
					scores = strings.TrimPrefix(scores+"; error: "+*e.Error, "; ")
				}
				fmt.Fprintf(tw, "  %s\t%.0f%%\t%s\t%s\n", e.EvalType, e.Progress, elapsed(&st, e.FinishedAt, now), orDash(scores))
			}
			_ = tw.Flush()
			for _, e := range n.Evaluations {
				if s := e.Summary; s != nil {
					fmt.Fprintf(w, "  %s: %s\n", e.EvalType, formatSummary(*s))
				}
			}
		}
		for _, c := range n.Customizations {
			st := c.StartedAt
			fmt.Fprintf(w, "  customization: %s, %.0f%%, %d epochs, %d steps, %s%s\n", orDash(deref(c.CustomizedModel)), c.Progress,
				c.EpochsCompleted, c.StepsCompleted, elapsed(&st, c.FinishedAt, now), suffixErr(c.Error))
		}
	}
	if r := d.Recommendation; r != nil {
		fmt.Fprintf(w, "\nRecommendation: %s\n", r.Reason)
		if r.Candidate != "" {
			fmt.Fprintf(w, "  %s (%s, %s, margin %+.3f)\n", r.Candidate, r.EvalType, r.Metric, r.Margin)
		}
		for _, e := range r.Evidence {
			fmt.Fprintf(w, "  - %s\n", e)
		}
		if len(r.Findings) > 0 {
			fmt.Fprintf(w, "Findings:\n")
			for _, f := range r.Findings {
				fmt.Fprintf(w, "  - %s\n", f)
			}
		}
	}
	return nil
}

// formatSummary renders an evaluation summary in one line: items, answered
// and failed counts by class, then latency and tokens over the answered
// requests with their n ("n/a" when there is none), then the cost per
// request ("unknown" when no price applies) and production's.
func formatSummary(s flywheel.EvalSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d items, %d answered, %d errors", s.Items, s.Answered, s.Errors)
	f := s.Failures
	var classes []string
	for _, c := range []struct {
		name string
		n    int
	}{{"server_error", f.ServerError}, {"timeout", f.Timeout}, {"unparseable", f.Unparseable}, {"connection", f.Connection}} {
		if c.n > 0 {
			classes = append(classes, fmt.Sprintf("%s %d", c.name, c.n))
		}
	}
	if len(classes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(classes, ", "))
	}
	if s.JudgeFailures > 0 {
		fmt.Fprintf(&b, ", judge failed on %d of %d", s.JudgeFailures, s.JudgeCalls)
	}
	if s.LatencyP50MS != nil && s.LatencyP95MS != nil {
		fmt.Fprintf(&b, ", latency p50 %.0f ms / p95 %.0f ms (%s)", *s.LatencyP50MS, *s.LatencyP95MS, flywheel.LatencyBasis(s))
	} else {
		fmt.Fprintf(&b, ", latency n/a (n=%d)", s.LatencyN)
	}
	if s.PromptTokens != nil && s.CompletionTokens != nil {
		fmt.Fprintf(&b, ", %.0f+%.0f tokens per request (n=%d)", *s.PromptTokens, *s.CompletionTokens, s.TokensN)
	} else {
		fmt.Fprintf(&b, ", tokens n/a (n=%d)", s.TokensN)
	}
	if c, ok := s.CostPerRequest(); ok {
		fmt.Fprintf(&b, ", cost %s/request", flywheel.FormatUSD(c))
		if s.CostBasis != "" {
			fmt.Fprintf(&b, " (%s)", s.CostBasis)
		}
	} else {
		b.WriteString(", cost unknown")
	}
	if p := s.Production; p != nil && p.CostPer1KReq > 0 {
		fmt.Fprintf(&b, " vs production %s/request", flywheel.FormatUSD(p.CostPer1KReq/1000))
	}
	return b.String()
}

func suffixErr(e *string) string {
	if e == nil {
		return ""
	}
	return ": " + *e
}

func writeStages(w io.Writer, stages []api.Stage, now time.Time) {
	tw := newTable(w)
	fmt.Fprintln(tw, "  STAGE\tSTATUS\tATTEMPTS\tPROGRESS\tDURATION\tLIMIT\tERROR")
	for _, s := range stages {
		limit := "-"
		if s.TimeLimitSeconds > 0 {
			limit = (time.Duration(s.TimeLimitSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%.0f%%\t%s\t%s\t%s\n", s.Name, s.Status, s.Attempts, s.Progress,
			elapsed(s.StartedAt, s.FinishedAt, now), limit, truncate(deref(s.Error), 60))
	}
	_ = tw.Flush()
}

func writeItemTable(w io.Writer, page api.ItemsResponse) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "INDEX\tTOOL\tERROR CLASS\tLATENCY\tSCORES\tERROR")
	for _, it := range page.Items {
		keys := scoreKeys(it.Scores)
		scores := make([]string, 0, len(keys))
		for _, k := range keys {
			scores = append(scores, fmt.Sprintf("%s=%.2f", k, it.Scores[k]))
		}
		latency := "-" // a failed request has none
		if it.LatencyMS > 0 {
			latency = fmt.Sprintf("%.0f ms", it.LatencyMS)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", it.Index, orDash(it.Tool), orDash(it.ErrorClass), latency,
			orDash(strings.Join(scores, " ")), truncate(it.Error, 60))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// terminal reports whether a run status is final.
func terminal(status string) bool {
	return flywheel.RunStatus(status).Terminal()
}
