package ui

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Trend chart geometry, in SVG user units.
const (
	trendWidth  = 760
	trendHeight = 280
	trendLeft   = 56
	trendRight  = 20
	trendTop    = 40
	trendBottom = 48
	// trendMaxTicks is the most run labels under the x axis.
	trendMaxTicks = 10
)

// evalShift spreads the three evaluation types of one run apart on the x
// axis so their interval bars do not hide each other.
func evalShift(t flywheel.EvalType) float64 {
	switch t {
	case flywheel.EvalBase:
		return -6
	case flywheel.EvalCustomized:
		return 6
	}
	return 0
}

// evalMarker draws a point's marker: a circle for base, a square for icl
// and a diamond for customized, so the types differ in shape as well as
// in colour.
func evalMarker(t flywheel.EvalType, x, y float64) string {
	c := evalColor(t)
	switch t {
	case flywheel.EvalICL:
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s"/>`, x-4, y-4, c)
	case flywheel.EvalCustomized:
		return fmt.Sprintf(`<path d="M%.1f %.1fl5 5l-5 5l-5 -5z" fill="%s"/>`, x, y-5, c)
	}
	return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="4.5" fill="%s"/>`, x, y, c)
}

// trendSVG draws one candidate's metric over the runs of a history: per
// evaluation type a line through the runs' means, each point with its 95%
// interval as a bar and linked to its run. Text is escaped; the result is
// safe to embed.
func (h *Handler) trendSVG(candidate string, runs []flywheel.HistoryRun, metric, id string) template.HTML {
	esc := template.HTMLEscapeString
	top := 1.0
	for _, hr := range runs {
		for _, es := range hr.Scores {
			if d, ok := es.Scores[metric]; ok && es.Candidate == candidate {
				top = math.Max(top, math.Max(d.Mean, d.CIHigh))
			}
		}
	}
	if top > 1 {
		top = math.Ceil(top)
	}
	plotW := float64(trendWidth - trendLeft - trendRight)
	plotH := float64(trendHeight - trendTop - trendBottom)
	y := func(v float64) float64 { return trendTop + plotH - math.Max(0, math.Min(v, top))/top*plotH }
	step := plotW / float64(max(len(runs), 1))
	x := func(i int) float64 { return trendLeft + step*(float64(i)+0.5) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart trend" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc">`,
		trendWidth, trendHeight, id, id)
	fmt.Fprintf(&b, `<title id="%s-title">%s of %s over runs</title>`, id, esc(metric), esc(candidate))
	fmt.Fprintf(&b, `<desc id="%s-desc">One point per run and evaluation type, oldest run on the left; bars are 95%% confidence intervals. The table below holds the same numbers.</desc>`, id)
	for i := 0; i <= 5; i++ {
		v := top * float64(i) / 5
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, trendLeft, trendWidth-trendRight, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end" dominant-baseline="middle">%s</text>`, trendLeft-6, yy, formatNum(v))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="axis"/>`, trendLeft, trendWidth-trendRight, y(0), y(0))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%.1f" class="axis"/>`, trendLeft, trendLeft, trendTop, y(0))
	// Legend.
	lx := trendLeft
	for _, t := range evalOrder {
		fmt.Fprintf(&b, `<g class="legend-item">%s<text x="%d" y="22" class="legend">%s</text></g>`, evalMarker(t, float64(lx+6), 18), lx+16, esc(string(t)))
		lx += 150
	}
	if len(runs) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty" text-anchor="middle">No finished runs</text></svg>`, trendWidth/2, trendHeight/2)
		return template.HTML(b.String()) //nolint:gosec // every text is escaped above
	}
	// Run labels: at most trendMaxTicks, evenly spread.
	every := max(1, (len(runs)+trendMaxTicks-1)/trendMaxTicks)
	for i, hr := range runs {
		if i%every != 0 && i != len(runs)-1 {
			continue
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s</text>`, x(i), y(0)+16,
			esc(hr.Run.StartedAt.UTC().Format("01-02 15:04")))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">run started (UTC), oldest first</text>`,
		trendLeft+plotW/2, trendHeight-6)
	for _, t := range evalOrder {
		type pt struct {
			x, y float64
		}
		var line []pt
		var points strings.Builder
		for i, hr := range runs {
			for _, es := range hr.Scores {
				d, ok := es.Scores[metric]
				if es.Candidate != candidate || es.EvalType != t || !ok {
					continue
				}
				px, py := x(i)+evalShift(t), y(d.Mean)
				line = append(line, pt{px, py})
				tip := fmt.Sprintf("run %s, %s: %s", hr.Run.ID, t, formatScore(d.Mean))
				if d.N > 0 {
					tip += fmt.Sprintf(" (95%% CI %s–%s, n=%d)", formatScore(d.CILow), formatScore(d.CIHigh), d.N)
				}
				fmt.Fprintf(&points, `<a href="%s"><g class="point" data-run="%s" data-eval="%s"><title>%s</title>`,
					esc(h.opts.Prefix+"/runs/"+url.PathEscape(hr.Run.ID)), esc(hr.Run.ID), esc(string(t)), esc(tip))
				if d.N > 0 {
					fmt.Fprintf(&points, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="whisker"/>`, px, px, y(d.CILow), y(d.CIHigh))
				}
				points.WriteString(evalMarker(t, px, py))
				points.WriteString(`</g></a>`)
			}
		}
		if len(line) > 1 {
			var d strings.Builder
			for i, p := range line {
				cmd := "L"
				if i == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, p.x, p.y)
			}
			fmt.Fprintf(&b, `<path d="%s" class="trendline" fill="none" stroke="%s"/>`, strings.TrimSpace(d.String()), evalColor(t))
		}
		b.WriteString(points.String())
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text is escaped above
}

// historyFuncs are the template functions of the history pages.
func (h *Handler) historyFuncs() template.FuncMap {
	return template.FuncMap{
		"queryEscape": url.QueryEscape,
		"workloadLink": func(workload, client string) string {
			link := h.opts.Prefix + "/workloads/" + url.PathEscape(workload)
			if client != "" {
				link += "?client_id=" + url.QueryEscape(client)
			}
			return link
		},
		"signed": func(f float64) string { return fmt.Sprintf("%+.3f", f) },
		"verdictClass": func(v string) string {
			switch v {
			case flywheel.VerdictBetter:
				return "better"
			case flywheel.VerdictWorse:
				return "worse"
			}
			return "muted"
		},
	}
}

type workloadsView struct {
	page
	Workloads []flywheel.WorkloadSummary
}

// workloadsPage lists every workload and client with runs.
func (h *Handler) workloadsPage(w http.ResponseWriter, r *http.Request) {
	if h.opts.History == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "Run history is not available."))
		return
	}
	ws, err := h.opts.History.ListWorkloads(r.Context())
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := workloadsView{page: h.page(r, "Workloads"), Workloads: ws}
	v.Nav = "workloads"
	h.render(w, r, http.StatusOK, "workloads", v)
}

// trendChart is one candidate's chart on the workload page.
type trendChart struct {
	Candidate string
	SVG       template.HTML
}

// seriesCol is one column of the history table: a candidate under one
// evaluation type.
type seriesCol struct {
	Candidate string
	EvalType  flywheel.EvalType
}

// historyCell is one score in the history table.
type historyCell struct {
	Has  bool
	D    flywheel.ScoreDetail
	Eval string
}

type historyRow struct {
	Run   *flywheel.Run
	Cells []historyCell
}

type workloadView struct {
	page
	Workload, Client string
	Metric           string
	Metrics          []string
	Limit            int
	Charts           []trendChart
	Cols             []seriesCol
	Rows             []historyRow
	// Newest runs first, for the compare form; A and B are its defaults.
	Picks []*flywheel.Run
	A, B  string
	// Promotions is the workload's Promotions section.
	Promotions *promotionsView
}

// workloadPage shows a workload's history: one trend chart per candidate
// and the runs' scores, with a form to compare two runs.
func (h *Handler) workloadPage(w http.ResponseWriter, r *http.Request) {
	if h.opts.History == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "Run history is not available."))
		return
	}
	q := r.URL.Query()
	f := flywheel.HistoryFilter{WorkloadID: r.PathValue("id"), ClientID: q.Get("client_id")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "limit must be a positive whole number, not %q.", s))
			return
		}
		f.Limit = n
	}
	hist, err := h.opts.History.WorkloadHistory(r.Context(), f)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := workloadView{page: h.page(r, "Workload "+f.WorkloadID), Workload: f.WorkloadID, Client: f.ClientID,
		Metrics: hist.Metrics, Limit: f.Limit}
	v.Nav = "workloads"
	if v.Promotions, err = h.promotionsSection(r, f.WorkloadID, f.ClientID); err != nil {
		h.errorPage(w, r, err)
		return
	}
	v.Metric = q.Get("metric")
	if v.Metric != "" && !slices.Contains(v.Metrics, v.Metric) {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "The runs of this workload have no score named %q.", v.Metric))
		return
	}
	if v.Metric == "" && len(v.Metrics) > 0 {
		v.Metric = v.Metrics[0]
	}
	// Candidates in the order they first appear, each with its types in
	// evaluation order.
	var cands []string
	has := map[seriesCol]bool{}
	for _, hr := range hist.Runs {
		for _, es := range hr.Scores {
			if !slices.Contains(cands, es.Candidate) {
				cands = append(cands, es.Candidate)
			}
			has[seriesCol{es.Candidate, es.EvalType}] = true
		}
	}
	for _, c := range cands {
		for _, t := range evalOrder {
			if has[seriesCol{c, t}] {
				v.Cols = append(v.Cols, seriesCol{c, t})
			}
		}
	}
	if v.Metric != "" {
		for i, c := range cands {
			v.Charts = append(v.Charts, trendChart{Candidate: c, SVG: h.trendSVG(c, hist.Runs, v.Metric, "trend-"+strconv.Itoa(i))})
		}
	}
	for _, hr := range hist.Runs {
		row := historyRow{Run: hr.Run}
		for _, c := range v.Cols {
			cell := historyCell{}
			for _, es := range hr.Scores {
				if es.Candidate == c.Candidate && es.EvalType == c.EvalType {
					cell.D, cell.Has = es.Scores[v.Metric]
					cell.Eval = es.EvaluationID
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		v.Rows = append(v.Rows, row)
		v.Picks = append(v.Picks, hr.Run)
	}
	slices.Reverse(v.Picks)
	if len(v.Picks) > 0 {
		v.B = v.Picks[0].ID
		v.A = v.Picks[min(1, len(v.Picks)-1)].ID
	}
	h.render(w, r, http.StatusOK, "workload", v)
}

// compareStat is one line of the compare page's data table.
type compareStat struct {
	Name string
	A, B int
}

// Diff is B − A with its sign.
func (s compareStat) Diff() string { return fmt.Sprintf("%+d", s.B-s.A) }

type compareTool struct {
	Tool string
	A, B int
}

type compareView struct {
	page
	A, B  string
	C     *flywheel.JobComparison
	Stats []compareStat
	Tools []compareTool
	// Picks are the other finished runs of B's workload, newest first,
	// offered as A when only B is given.
	Picks []*flywheel.Run
}

// comparePicks returns the other finished runs of run b's workload and
// client, newest first; none when b is unknown.
func (h *Handler) comparePicks(r *http.Request, b string) []*flywheel.Run {
	if b == "" || h.opts.Jobs == nil {
		return nil
	}
	d, err := h.opts.Jobs.GetJob(r.Context(), b)
	if err != nil || d == nil || d.Run == nil {
		return nil
	}
	hist, err := h.opts.History.WorkloadHistory(r.Context(), flywheel.HistoryFilter{WorkloadID: d.Run.WorkloadID, ClientID: d.Run.ClientID})
	if err != nil {
		return nil
	}
	var picks []*flywheel.Run
	for i := len(hist.Runs) - 1; i >= 0; i-- {
		if run := hist.Runs[i].Run; run.ID != b {
			picks = append(picks, run)
		}
	}
	return picks
}

// comparePage sets two runs side by side (?a=&b=); without both it shows
// the form to pick them.
func (h *Handler) comparePage(w http.ResponseWriter, r *http.Request) {
	if h.opts.History == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "Run history is not available."))
		return
	}
	q := r.URL.Query()
	v := compareView{page: h.page(r, "Compare runs"), A: strings.TrimSpace(q.Get("a")), B: strings.TrimSpace(q.Get("b"))}
	v.Nav = "workloads"
	if v.A == "" || v.B == "" {
		v.Picks = h.comparePicks(r, v.B)
		h.render(w, r, http.StatusOK, "compare", v)
		return
	}
	c, err := h.opts.History.CompareJobs(r.Context(), v.A, v.B)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v.C = c
	v.Title = "Compare " + c.A.ID + " and " + c.B.ID
	sa, sb := c.A.Stats, c.B.Stats
	if sa == nil {
		sa = &flywheel.DataStats{}
	}
	if sb == nil {
		sb = &flywheel.DataStats{}
	}
	v.Stats = []compareStat{
		{"Records used", c.A.NumRecords, c.B.NumRecords},
		{"Records read", sa.Total, sb.Total},
		{"Invalid format", sa.InvalidFormat, sb.InvalidFormat},
		{"Filtered", sa.Filtered, sb.Filtered},
		{"Duplicates removed", sa.Deduplicated, sb.Deduplicated},
		{"Selected", sa.Selected, sb.Selected},
		{"Evaluation", sa.Eval, sb.Eval},
		{"Training", sa.Train, sb.Train},
		{"Validation", sa.Val, sb.Val},
	}
	var tools []string
	for t := range c.ToolsA {
		tools = append(tools, t)
	}
	for t := range c.ToolsB {
		if _, ok := c.ToolsA[t]; !ok {
			tools = append(tools, t)
		}
	}
	slices.Sort(tools)
	for _, t := range tools {
		v.Tools = append(v.Tools, compareTool{t, c.ToolsA[t], c.ToolsB[t]})
	}
	h.render(w, r, http.StatusOK, "compare", v)
}
