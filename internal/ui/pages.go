package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Page sizes.
const (
	runsPerPage  = 50
	itemsPerPage = 25
)

// page is what every full page's layout needs.
type page struct {
	Title   string
	Prefix  string
	CSRF    string
	River   string
	Refresh int // seconds between live refreshes; 0 when nothing is live
	Nav     string
	User    string // the logged-in token's name; empty without a session
}

// refreshSeconds is the live refresh period in whole seconds (at least 1).
func (h *Handler) refreshSeconds() int {
	return max(1, int(h.opts.RefreshInterval.Round(time.Second).Seconds()))
}

func (h *Handler) page(r *http.Request, title string) page {
	return page{Title: title, Prefix: h.opts.Prefix, CSRF: h.csrf, River: h.opts.RiverPath, User: user(r)}
}

func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"ts":           formatTime,
		"tsp":          formatTimePtr,
		"dur":          formatDuration,
		"score":        formatScore,
		"num":          formatNum,
		"pct":          func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" },
		"lower":        strings.ToLower,
		"runLink":      func(id string) string { return h.opts.Prefix + "/runs/" + url.PathEscape(id) },
		"timelineLink": h.workloadTimelineLink,
		"terminal":     func(s flywheel.RunStatus) bool { return s.Terminal() },
		"deref":        func(s *string) string { return derefStr(s) },
	}
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return formatTime(*t)
}

func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

func formatScore(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

func formatNum(f float64) string {
	switch {
	case f == 0:
		return "0"
	case math.Abs(f) >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case math.Abs(f) >= 1:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	s := strings.TrimRight(strconv.FormatFloat(f, 'f', 4, 64), "0")
	return strings.TrimSuffix(s, ".")
}

// render executes a full page (or a fragment) into a buffer first so that a
// template failure becomes an error page, never half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "Render dashboard page", "template", name, "error", err)
		if name != "error" {
			h.errorPage(w, r, fmt.Errorf("render %s: %w", name, err))
			return
		}
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// ---------------------------------------------------------------- runs list

type runsView struct {
	page
	Workload, Client, Status string
	Statuses                 []flywheel.RunStatus
	Rows                     rowsView
	Next, First              string
	Notice                   string
}

type rowsView struct {
	Runs []runRow
	// Src is the URL the rows refresh from.
	Src string
}

type runRow struct {
	ID, Workload, Client string
	Status               flywheel.RunStatus
	Started              time.Time
	Finished             *time.Time
	Duration             string
	Records              int
	Recommended          string
	Error                string
}

func (h *Handler) listRuns(ctx context.Context, q url.Values) (flywheel.JobPage, flywheel.JobFilter, error) {
	f := flywheel.JobFilter{
		WorkloadID: strings.TrimSpace(q.Get("workload")),
		ClientID:   strings.TrimSpace(q.Get("client")),
		Status:     flywheel.RunStatus(q.Get("status")),
		Cursor:     q.Get("cursor"),
		Limit:      runsPerPage,
	}
	if f.Status != "" && !f.Status.Valid() {
		return flywheel.JobPage{}, f, flywheel.Errorf(flywheel.EINVALID, "Unknown status %q.", f.Status)
	}
	p, err := h.opts.Jobs.ListJobs(ctx, f)
	return p, f, err
}

func (h *Handler) rows(p flywheel.JobPage, q url.Values) rowsView {
	now := h.opts.Now()
	out := rowsView{Src: h.opts.Prefix + "/runs/rows?" + q.Encode()}
	for _, run := range p.Runs {
		row := runRow{ID: run.ID, Workload: run.WorkloadID, Client: run.ClientID, Status: run.Status,
			Started: run.StartedAt, Finished: run.FinishedAt, Records: run.NumRecords, Error: run.Error}
		end := now
		if run.FinishedAt != nil {
			end = *run.FinishedAt
		}
		row.Duration = formatDuration(end.Sub(run.StartedAt))
		if run.Recommendation != nil {
			row.Recommended = run.Recommendation.Candidate
		}
		out.Runs = append(out.Runs, row)
	}
	return out
}

func (h *Handler) runsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, f, err := h.listRuns(r.Context(), q)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := runsView{page: h.page(r, "Runs"), Workload: f.WorkloadID, Client: f.ClientID, Status: string(f.Status),
		Statuses: []flywheel.RunStatus{flywheel.RunPending, flywheel.RunRunning, flywheel.RunCompleted, flywheel.RunFailed, flywheel.RunCancelled},
		Rows:     h.rows(p, q)}
	v.Nav = "runs"
	v.Refresh = h.refreshSeconds()
	filters := url.Values{}
	for _, k := range []string{"workload", "client", "status"} {
		if s := strings.TrimSpace(q.Get(k)); s != "" {
			filters.Set(k, s)
		}
	}
	if p.NextCursor != "" {
		next := url.Values{}
		for k, vs := range filters {
			next[k] = vs
		}
		next.Set("cursor", p.NextCursor)
		v.Next = h.opts.Prefix + "/?" + next.Encode()
	}
	if f.Cursor != "" {
		v.First = h.opts.Prefix + "/?" + filters.Encode()
	}
	if id := q.Get("deleted"); id != "" && len(id) <= 64 && strings.Trim(id, "0123456789abcdefABCDEF-") == "" {
		v.Notice = "Deletion of run " + id + " started. Its resources are released in the background."
	}
	h.render(w, r, http.StatusOK, "runs", v)
}

func (h *Handler) runsRows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, _, err := h.listRuns(r.Context(), q)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "rows", h.rows(p, q))
}

// ---------------------------------------------------------------- run detail

type runView struct {
	page
	Run       *flywheel.Run
	Detail    *flywheel.JobDetail
	Tab       string
	Timeline  timelineView
	Stats     []statRow
	CanCancel bool
	CanDelete bool
	Notice    string
	// Promote is the Promote section (admins, completed runs).
	Promote *promoteView
}

type statRow struct {
	Label string
	Value int
}

type timelineView struct {
	Src    string
	Final  bool
	Groups []stageGroup
	Status flywheel.RunStatus
	Error  string
}

type stageGroup struct {
	Title     string
	Subtitle  string
	Candidate *flywheel.NIMDetail
	Rows      []stageRow
}

type stageRow struct {
	Name      flywheel.StageName
	Status    flywheel.StageStatus
	Started   *time.Time
	Duration  string
	Attempts  int
	TimeLimit string
	Progress  float64
	Error     string
	// BarLeft and BarWidth place the stage on the run's time axis (percent).
	BarLeft, BarWidth string
}

func (h *Handler) getJob(r *http.Request) (*flywheel.JobDetail, error) {
	d, err := h.opts.Jobs.GetJob(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if d == nil || d.Run == nil {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
	}
	return d, nil
}

func (h *Handler) runBase(r *http.Request, d *flywheel.JobDetail, tab string) runView {
	v := runView{page: h.page(r, "Run "+d.Run.ID), Run: d.Run, Detail: d, Tab: tab,
		CanCancel: !d.Run.Status.Terminal(), CanDelete: d.Run.FinishedAt != nil}
	v.Nav = "runs"
	if !d.Run.Status.Terminal() {
		v.Refresh = h.refreshSeconds()
	}
	switch r.URL.Query().Get("done") {
	case "cancel":
		v.Notice = "Cancellation requested. Running stages stop and the run's resources are released."
	}
	return v
}

func (h *Handler) runPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.getJob(r)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := h.runBase(r, d, "overview")
	v.Timeline = h.timeline(d)
	v.Promote = h.promoteSection(r, d)
	// The timeline follows a run until its last stage (the cleanup after a
	// cancellation included) is done.
	v.Refresh = 0
	if !v.Timeline.Final {
		v.Refresh = h.refreshSeconds()
	}
	if s := d.Run.Stats; s != nil {
		v.Stats = []statRow{{"Records read", s.Total}, {"Invalid format", s.InvalidFormat}, {"Filtered out", s.Filtered},
			{"Duplicates removed", s.Deduplicated}, {"Selected", s.Selected}, {"Evaluation set", s.Eval},
			{"Training set", s.Train}, {"Validation set", s.Val}}
		if l := s.Leakage; l != nil {
			// The leakage guard: train/val records that repeat an eval question.
			v.Stats = append(v.Stats, statRow{Label: "Leakage guard: exact repeats of eval removed", Value: l.Exact},
				statRow{Label: "Leakage guard: near repeats of eval removed", Value: l.Near})
		}
		reasons := make([]string, 0, len(s.Reasons))
		for k := range s.Reasons {
			reasons = append(reasons, k)
		}
		sort.Strings(reasons)
		for _, k := range reasons {
			v.Stats = append(v.Stats, statRow{"Rejected: " + k, s.Reasons[k]})
		}
	}
	h.render(w, r, http.StatusOK, "run", v)
}

func (h *Handler) timelineFragment(w http.ResponseWriter, r *http.Request) {
	d, err := h.getJob(r)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "timeline", h.timeline(d))
}

func (h *Handler) timeline(d *flywheel.JobDetail) timelineView {
	now := h.opts.Now()
	tv := timelineView{Src: h.opts.Prefix + "/runs/" + url.PathEscape(d.Run.ID) + "/timeline", Status: d.Run.Status, Error: d.Run.Error}
	// The time axis spans the run, from its start to its end (or now).
	start, end := d.Run.StartedAt, now
	if d.Run.FinishedAt != nil {
		end = *d.Run.FinishedAt
	}
	final := d.Run.Status.Terminal()
	for _, s := range d.Stages {
		if s.StartedAt != nil && (start.IsZero() || s.StartedAt.Before(start)) {
			start = *s.StartedAt
		}
		if s.FinishedAt != nil && s.FinishedAt.After(end) {
			end = *s.FinishedAt
		}
		if !s.Status.Done() {
			final = false
			if end.Before(now) {
				end = now
			}
		}
	}
	tv.Final = final
	span := end.Sub(start)
	groups := map[string]*stageGroup{"": {Title: "Run", Subtitle: "run-level stages"}}
	order := []string{""}
	for i := range d.NIMs {
		n := &d.NIMs[i]
		groups[n.ID] = &stageGroup{Title: n.ModelName, Subtitle: string(n.Status), Candidate: n}
		order = append(order, n.ID)
	}
	stages := slices.Clone(d.Stages)
	sort.SliceStable(stages, func(i, j int) bool { return stages[i].Position < stages[j].Position })
	for _, s := range stages {
		g, ok := groups[s.Candidate]
		if !ok {
			g = &stageGroup{Title: s.Candidate, Subtitle: "unknown candidate"}
			groups[s.Candidate] = g
			order = append(order, s.Candidate)
		}
		row := stageRow{Name: s.Name, Status: s.Status, Started: s.StartedAt, Attempts: s.Attempts,
			Progress: s.Progress, Error: s.Error}
		if s.TimeLimitSeconds > 0 {
			row.TimeLimit = formatDuration(time.Duration(s.TimeLimitSeconds * float64(time.Second)))
		}
		if s.StartedAt != nil {
			fin := now
			if s.FinishedAt != nil {
				fin = *s.FinishedAt
			}
			row.Duration = formatDuration(fin.Sub(*s.StartedAt))
			if span > 0 {
				left := float64(s.StartedAt.Sub(start)) / float64(span) * 100
				width := float64(fin.Sub(*s.StartedAt)) / float64(span) * 100
				left = math.Max(0, math.Min(100, left))
				width = math.Max(0.6, math.Min(100-left, width))
				row.BarLeft = strconv.FormatFloat(left, 'f', 2, 64) + "%"
				row.BarWidth = strconv.FormatFloat(width, 'f', 2, 64) + "%"
			}
		}
		g.Rows = append(g.Rows, row)
	}
	for _, id := range order {
		if g := groups[id]; len(g.Rows) > 0 || g.Candidate != nil {
			tv.Groups = append(tv.Groups, *g)
		}
	}
	return tv
}

// ---------------------------------------------------------------- results

var evalOrder = []flywheel.EvalType{flywheel.EvalBase, flywheel.EvalICL, flywheel.EvalCustomized}

type resultsView struct {
	runView
	Metrics    []string
	Metric     string
	Candidates []candidateResult
	Chart      template.HTML
	Rec        *flywheel.Recommendation
}

type candidateResult struct {
	Model  string
	Status flywheel.NIMStatus
	Error  string
	Rows   []evalRow
}

type evalRow struct {
	ID       string
	Type     flywheel.EvalType
	State    string
	Error    string
	Progress float64
	Scores   []scoreCell
	Summary  *flywheel.EvalSummary
	MLflow   string
	Items    int
}

type scoreCell struct {
	Has       bool
	Value     float64
	N         int
	HasCI     bool
	Low, High float64
}

func evalState(e *flywheel.Evaluation) string {
	switch {
	case e == nil:
		return "not run"
	case e.Error != "":
		return "failed"
	case e.FinishedAt != nil:
		return "finished"
	}
	return "running"
}

// metricsOf lists the score keys of a run's evaluations, blueprint keys first.
func metricsOf(d *flywheel.JobDetail) []string {
	seen := map[string]bool{}
	for _, n := range d.NIMs {
		for _, e := range n.Evaluations {
			for k := range e.Scores {
				seen[k] = true
			}
		}
	}
	var out []string
	for _, k := range []string{flywheel.ScoreFunctionName, flywheel.ScoreFunctionNameAndArgs, flywheel.ScoreToolCallingCorrectness, flywheel.ScoreSimilarity} {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	rest := make([]string, 0, len(seen))
	for k := range seen {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func findEval(n *flywheel.NIMDetail, t flywheel.EvalType) *flywheel.Evaluation {
	for i := range n.Evaluations {
		if n.Evaluations[i].EvalType == t {
			return &n.Evaluations[i]
		}
	}
	return nil
}

func (h *Handler) resultsPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.getJob(r)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := resultsView{runView: h.runBase(r, d, "results"), Rec: d.Run.Recommendation}
	v.Title = "Results of run " + d.Run.ID
	v.Metrics = metricsOf(d)
	v.Metric = r.URL.Query().Get("metric")
	if v.Metric != "" && !slices.Contains(v.Metrics, v.Metric) {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "This run has no score named %q.", v.Metric))
		return
	}
	if v.Metric == "" {
		if v.Rec != nil && slices.Contains(v.Metrics, v.Rec.Metric) {
			v.Metric = v.Rec.Metric
		} else if len(v.Metrics) > 0 {
			v.Metric = v.Metrics[0]
		}
	}
	for i := range d.NIMs {
		n := &d.NIMs[i]
		c := candidateResult{Model: n.ModelName, Status: n.Status, Error: n.Error}
		for _, t := range evalOrder {
			e := findEval(n, t)
			row := evalRow{Type: t, State: evalState(e)}
			if e != nil {
				row.ID, row.Error, row.Progress, row.Summary, row.MLflow = e.ID, e.Error, e.Progress, e.Summary, derefStr(e.MLflowURI)
				if e.Summary != nil {
					row.Items = e.Summary.Items
				}
				for _, m := range v.Metrics {
					cell := scoreCell{}
					if s, ok := e.Scores[m]; ok {
						cell.Has, cell.Value = true, s
					}
					if det, ok := e.Details[m]; ok {
						cell.N, cell.Low, cell.High = det.N, det.CILow, det.CIHigh
						cell.HasCI = det.N > 0
					}
					row.Scores = append(row.Scores, cell)
				}
			}
			c.Rows = append(c.Rows, row)
		}
		v.Candidates = append(v.Candidates, c)
	}
	if v.Metric != "" {
		v.Chart = chartSVG(d, v.Metric)
	}
	h.render(w, r, http.StatusOK, "results", v)
}

// ---------------------------------------------------------------- divergences

type divergencesView struct {
	runView
	Evals      []evalOption
	Eval       string
	EvalLabel  string
	Tools      []string
	Classes    []string
	Tool       string
	Class      string
	Items      []itemRow
	Total      int
	From, To   int
	Prev, Next string
}

type evalOption struct {
	ID, Label string
}

type itemRow struct {
	Index      int
	Tool       string
	ErrorClass string
	Error      string
	Reference  string
	Prediction string
	LatencyMS  float64
	Scores     string
}

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "—"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	if buf.Len() <= 90 {
		return buf.String()
	}
	buf.Reset()
	_ = json.Indent(&buf, raw, "", "  ")
	return buf.String()
}

func (h *Handler) divergencesPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.getJob(r)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	q := r.URL.Query()
	v := divergencesView{runView: h.runBase(r, d, "divergences"), Eval: q.Get("eval"),
		Tool: strings.TrimSpace(q.Get("tool")), Class: strings.TrimSpace(q.Get("class"))}
	v.Title = "Divergences of run " + d.Run.ID
	var chosen *flywheel.Evaluation
	for i := range d.NIMs {
		n := &d.NIMs[i]
		for _, t := range evalOrder {
			e := findEval(n, t)
			if e == nil {
				continue
			}
			label := n.ModelName + " · " + string(t)
			v.Evals = append(v.Evals, evalOption{ID: e.ID, Label: label})
			if (v.Eval == "" && chosen == nil) || e.ID == v.Eval {
				chosen, v.EvalLabel = e, label
			}
		}
	}
	if v.Eval != "" && (chosen == nil || chosen.ID != v.Eval) {
		h.errorPage(w, r, flywheel.Errorf(flywheel.ENOTFOUND, "Run %s has no evaluation %s.", d.Run.ID, v.Eval))
		return
	}
	if chosen == nil {
		h.render(w, r, http.StatusOK, "divergences", v)
		return
	}
	v.Eval = chosen.ID
	if s := chosen.Summary; s != nil {
		for k := range s.PerTool {
			v.Tools = append(v.Tools, k)
		}
		for k := range s.ErrorClasses {
			v.Classes = append(v.Classes, k)
		}
		sort.Strings(v.Tools)
		sort.Strings(v.Classes)
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(0, offset)
	p, err := h.opts.Jobs.ListItems(r.Context(), flywheel.ItemFilter{EvaluationID: chosen.ID, Tool: v.Tool, ErrorClass: v.Class,
		OnlyDivergent: true, Limit: itemsPerPage, Offset: offset})
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v.Total = p.Total
	if len(p.Items) > 0 {
		v.From, v.To = offset+1, offset+len(p.Items)
	}
	for _, it := range p.Items {
		row := itemRow{Index: it.Index, Tool: it.Tool, ErrorClass: it.ErrorClass, Error: it.Error,
			Reference: prettyJSON(it.Reference), Prediction: prettyJSON(it.Prediction), LatencyMS: it.LatencyMS}
		keys := make([]string, 0, len(it.Scores))
		for k := range it.Scores {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+" "+formatScore(it.Scores[k]))
		}
		row.Scores = strings.Join(parts, ", ")
		v.Items = append(v.Items, row)
	}
	link := func(off int) string {
		u := url.Values{"eval": {chosen.ID}}
		if v.Tool != "" {
			u.Set("tool", v.Tool)
		}
		if v.Class != "" {
			u.Set("class", v.Class)
		}
		if off > 0 {
			u.Set("offset", strconv.Itoa(off))
		}
		return h.opts.Prefix + "/runs/" + url.PathEscape(d.Run.ID) + "/divergences?" + u.Encode()
	}
	if offset > 0 {
		v.Prev = link(max(0, offset-itemsPerPage))
	}
	if offset+len(p.Items) < p.Total {
		v.Next = link(offset + itemsPerPage)
	}
	h.render(w, r, http.StatusOK, "divergences", v)
}

// ---------------------------------------------------------------- cancel and delete

type action string

const (
	actionCancel action = "cancel"
	actionDelete action = "delete"
)

type confirmView struct {
	runView
	Action action
	Verb   string
	What   string
}

func (h *Handler) confirmPage(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := h.getJob(r)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		v := confirmView{runView: h.runBase(r, d, ""), Action: a}
		v.Refresh = 0
		switch a {
		case actionCancel:
			v.Verb, v.What = "Cancel run", "Running stages stop, deployments are shut down and customization jobs are cancelled. The results so far are kept."
			if d.Run.Status.Terminal() {
				h.errorPage(w, r, flywheel.Errorf(flywheel.EPRECONDITION, "Run %s has already finished (%s); there is nothing to cancel.", d.Run.ID, d.Run.Status))
				return
			}
		case actionDelete:
			v.Verb, v.What = "Delete run", "The run, its results and the remote resources it created (models, datasets) are deleted. This cannot be undone."
			if d.Run.FinishedAt == nil {
				h.errorPage(w, r, flywheel.Errorf(flywheel.EPRECONDITION, "Run %s is still %s. Cancel it before deleting it.", d.Run.ID, d.Run.Status))
				return
			}
		}
		v.Title = v.Verb + " " + d.Run.ID + "?"
		h.render(w, r, http.StatusOK, "confirm", v)
	}
}

func (h *Handler) act(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.checkForm(r); err != nil {
			h.errorPage(w, r, err)
			return
		}
		id := r.PathValue("id")
		var err error
		switch a {
		case actionCancel:
			_, err = h.opts.Jobs.CancelJob(r.Context(), id)
		case actionDelete:
			_, err = h.opts.Jobs.DeleteJob(r.Context(), id)
		}
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		h.opts.Logger.InfoContext(r.Context(), "Dashboard action", "action", string(a), "run_id", id)
		switch a {
		case actionCancel:
			http.Redirect(w, r, h.opts.Prefix+"/runs/"+url.PathEscape(id)+"?done=cancel", http.StatusSeeOther)
		default:
			http.Redirect(w, r, h.opts.Prefix+"/?deleted="+url.QueryEscape(id), http.StatusSeeOther)
		}
	}
}
