package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Chart geometry, in SVG user units.
const (
	chartWidth    = 760
	chartHeight   = 320
	chartLeft     = 56
	chartRight    = 16
	chartTop      = 40
	chartBottom   = 56
	chartBarGap   = 6
	chartGroupPad = 28
)

// evalColors are colour-blind-safe fills of the three evaluation types.
func evalColor(t flywheel.EvalType) string {
	switch t {
	case flywheel.EvalICL:
		return "#e07b00"
	case flywheel.EvalCustomized:
		return "#2a8a3e"
	}
	return "#2f6db5"
}

// chartSVG draws one bar per candidate and evaluation type for metric,
// with the confidence interval as a whisker. Text is escaped; the result is
// safe to embed.
func chartSVG(d *flywheel.JobDetail, metric string) template.HTML {
	esc := template.HTMLEscapeString
	top := 1.0
	for _, n := range d.NIMs {
		for _, e := range n.Evaluations {
			if v, ok := e.Scores[metric]; ok {
				top = math.Max(top, v)
			}
			if det, ok := e.Details[metric]; ok && det.N > 0 {
				top = math.Max(top, det.CIHigh)
			}
		}
	}
	if top > 1 {
		top = math.Ceil(top)
	}
	plotW := float64(chartWidth - chartLeft - chartRight)
	plotH := float64(chartHeight - chartTop - chartBottom)
	y := func(v float64) float64 { return chartTop + plotH - math.Max(0, math.Min(v, top))/top*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title chart-desc">`,
		chartWidth, chartHeight)
	fmt.Fprintf(&b, `<title id="chart-title">%s by candidate and evaluation</title>`, esc(metric))
	b.WriteString(`<desc id="chart-desc">Bars are mean scores; whiskers are 95% confidence intervals. The table below holds the same numbers.</desc>`)
	// Grid and y axis.
	for i := 0; i <= 5; i++ {
		v := top * float64(i) / 5
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, chartLeft, chartWidth-chartRight, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end" dominant-baseline="middle">%s</text>`, chartLeft-6, yy, formatNum(v))
	}
	// Legend.
	lx := chartLeft
	for _, t := range evalOrder {
		fmt.Fprintf(&b, `<rect x="%d" y="12" width="12" height="12" fill="%s"/><text x="%d" y="22" class="legend">%s</text>`,
			lx, evalColor(t), lx+16, esc(string(t)))
		lx += 150
	}
	n := len(d.NIMs)
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty" text-anchor="middle">No candidates</text></svg>`, chartWidth/2, chartHeight/2)
		return template.HTML(b.String()) //nolint:gosec // every text is escaped above
	}
	groupW := plotW / float64(n)
	barW := math.Min(60, (groupW-chartGroupPad-2*chartBarGap)/3)
	for gi, nim := range d.NIMs {
		gx := chartLeft + groupW*float64(gi)
		inner := 3*barW + 2*chartBarGap
		x0 := gx + (groupW-inner)/2
		for ti, t := range evalOrder {
			x := x0 + float64(ti)*(barW+chartBarGap)
			e := findEval(&nim, t)
			v, ok := 0.0, false
			if e != nil {
				v, ok = e.Scores[metric]
			}
			if !ok {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="na" text-anchor="middle">n/a</text>`, x+barW/2, y(0)-6)
				continue
			}
			det, hasCI := e.Details[metric]
			hasCI = hasCI && det.N > 0
			tip := fmt.Sprintf("%s %s: %s", nim.ModelName, t, formatScore(v))
			if hasCI {
				tip += fmt.Sprintf(" (95%% CI %s–%s, n=%d)", formatScore(det.CILow), formatScore(det.CIHigh), det.N)
			}
			fmt.Fprintf(&b, `<g class="bar"><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
				esc(tip), x, y(v), barW, y(0)-y(v), evalColor(t))
			label := y(v) - 5
			if hasCI {
				cx := x + barW/2
				lo, hi := y(det.CILow), y(det.CIHigh)
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="whisker"/>`, cx, cx, lo, hi)
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="whisker"/>`, cx-5, cx+5, lo, lo)
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="whisker"/>`, cx-5, cx+5, hi, hi)
				label = math.Min(label, hi-5)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="value" text-anchor="middle">%s</text></g>`, x+barW/2, label, formatScore(v))
		}
		name := nim.ModelName
		if len(name) > 40 {
			name = "…" + name[len(name)-39:]
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="group" text-anchor="middle">%s</text>`, gx+groupW/2, chartHeight-chartBottom+22, esc(name))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="axis"/>`, chartLeft, chartWidth-chartRight, y(0), y(0))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text is escaped above
}
