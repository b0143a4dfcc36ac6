package ui_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/history/historytest"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// svgElements counts the elements of each SVG in page by class, and the
// data-run of every point.
type svgCount struct {
	classes map[string]int
	runs    []string
}

func parseSVGs(t *testing.T, page string) []svgCount {
	t.Helper()
	var out []svgCount
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		require.Positive(t, j, "unterminated svg")
		doc := page[i : i+j+len("</svg>")]
		page = page[i+j:]
		c := svgCount{classes: map[string]int{}}
		dec := xml.NewDecoder(strings.NewReader(doc))
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "the chart is well-formed XML: %s", doc)
			el, ok := tok.(xml.StartElement)
			if !ok {
				continue
			}
			for _, a := range el.Attr {
				switch a.Name.Local {
				case "class":
					for _, cl := range strings.Fields(a.Value) {
						c.classes[cl]++
					}
				case "data-run":
					c.runs = append(c.runs, a.Value)
				}
			}
		}
		out = append(out, c)
	}
}

func TestHistoryPages(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.SQLite)
	fx := historytest.Seed(t, s, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	jobs := &servertest.JobService{GetJobFunc: func(ctx context.Context, id string) (*flywheel.JobDetail, error) {
		run, err := s.GetRun(ctx, id)
		if err != nil {
			return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
		}
		return &flywheel.JobDetail{Run: run}, nil
	}}
	h := ui.New(ui.Options{Jobs: jobs, History: &history.Service{Store: s}})
	get := func(path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", path, nil))
		return rec.Code, rec.Body.String()
	}

	code, body := get("/ui/workloads")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `href="/ui/workloads/history-w?client_id=acme"`)

	code, body = get("/ui/workloads/" + historytest.Workload + "?client_id=" + historytest.Client)
	require.Equal(t, http.StatusOK, code, body)
	svgs := parseSVGs(t, body)
	require.Len(t, svgs, 1, "one chart per candidate")
	// Runs A and C have a base evaluation, B a base and a customized one.
	require.Equal(t, 4, svgs[0].classes["point"])
	require.Equal(t, []string{fx.A, fx.B, fx.C, fx.B}, svgs[0].runs, "base points oldest first, then customized")
	require.Equal(t, 4, svgs[0].classes["whisker"], "every point has its interval")
	require.Equal(t, 3, svgs[0].classes["legend-item"])
	require.Equal(t, 2, svgs[0].classes["axis"])
	require.Equal(t, 1, svgs[0].classes["trendline"], "only base has more than one point")
	require.Contains(t, body, `role="img"`)
	require.Contains(t, body, `action="/ui/compare"`)

	code, body = get("/ui/workloads/" + historytest.Workload + "?limit=2")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 3, parseSVGs(t, body)[0].classes["point"], "runs B and C")

	code, body = get("/ui/compare?a=" + fx.A + "&b=" + fx.B)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "b better")
	require.Contains(t, body, "&#43;0.667", "the paired difference, its sign escaped")
	require.Contains(t, body, "n=30")
	require.Contains(t, body, "no candidate → m1 (customized-eval)")

	code, body = get("/ui/compare?a=" + fx.A + "&b=" + fx.C)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "The runs share no evaluation item")

	code, body = get("/ui/compare")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<input type="text" name="a"`)

	// From a run's "Compare with…": the workload's other runs to pick A from.
	code, body = get("/ui/compare?b=" + fx.B)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `<select name="a"><option value="`+fx.C+`">`, "newest first")
	require.Contains(t, body, `<option value="`+fx.A+`">`)
	require.NotContains(t, body, `<option value="`+fx.B+`">`)

	code, _ = get("/ui/workloads/nope")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = get("/ui/compare?a=x&b=y")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = get("/ui/workloads/" + historytest.Workload + "?metric=nope")
	require.Equal(t, http.StatusBadRequest, code)
}
