package ui_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ui"
)

type fetched struct {
	status int
	body   string
	header http.Header
}

// get fetches path through the whole REST server (the dashboard mounted at /ui/).
func (b *testBundle) get(t *testing.T, path string) fetched {
	t.Helper()
	return do(t, http.DefaultClient, http.MethodGet, b.server.URL+path, nil, nil)
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, header http.Header) fetched {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return fetched{status: resp.StatusCode, body: string(b), header: resp.Header}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestPages(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	done := b.create(t, "weather", "acme")
	d := b.finished(t, done.ID)
	require.Equal(t, flywheel.RunCompleted, d.Run.Status, d.Run.Error)
	slow := b.create(t, slowWorkload, "beta")
	b.evaluating(t, slow.ID)
	var evalID string
	for _, e := range d.NIMs[0].Evaluations {
		if e.EvalType == flywheel.EvalBase {
			evalID = e.ID
		}
	}
	require.NotEmpty(t, evalID)

	tests := []struct {
		name   string
		path   string
		status int
		want   []string
		absent []string
	}{
		{"RunsList", "/ui/", 200, []string{"<th scope=\"col\">Workload</th>", done.ID, slow.ID, "weather", "acme",
			`class="badge s-completed"`, `class="badge s-running"`, `href="/ui/river/"`, largeModel}, nil},
		{"RunsFilteredByWorkload", "/ui/?workload=weather", 200, []string{done.ID}, []string{slow.ID}},
		{"RunsFilteredByClient", "/ui/?client=beta", 200, []string{slow.ID}, []string{done.ID}},
		{"RunsFilteredByStatus", "/ui/?status=running", 200, []string{slow.ID, `<option value="running" selected>`}, []string{done.ID}},
		{"RunsFilterMatchesNothing", "/ui/?workload=nope", 200, []string{"No runs match."}, []string{done.ID}},
		{"RunsBadStatus", "/ui/?status=bogus", 400, []string{"Unknown status"}, nil},
		{"RunsBadCursor", "/ui/?cursor=bogus", 400, []string{"Invalid cursor"}, nil},
		{"RowsFragment", "/ui/runs/rows?workload=weather", 200, []string{done.ID}, []string{"<html", slow.ID}},
		{"RunDetail", "/ui/runs/" + done.ID, 200, []string{"create_datasets", "run_base_eval", "run_customization_eval",
			"Records read", "500", "Evaluation set", "flywheel-eval-weather", "train-dataset", smallModel, largeModel,
			"Judge", "Delete run…", `class="bar s-succeeded"`}, []string{"Cancel run…", "data-refresh"}},
		{"RunDetailLive", "/ui/runs/" + slow.ID, 200, []string{"Cancel run…", `data-refresh="1"`, `http-equiv="refresh"`,
			`data-live="/ui/runs/` + slow.ID + `/timeline"`}, []string{"Delete run…"}},
		{"TimelineFragment", "/ui/runs/" + done.ID + "/timeline", 200, []string{"data-final", "finalize"}, []string{"<html"}},
		{"TimelineFragmentLive", "/ui/runs/" + slow.ID + "/timeline", 200, []string{"run_base_eval"}, []string{"data-final"}},
		{"Results", "/ui/runs/" + done.ID + "/results", 200, []string{"Recommended: <strong>" + largeModel, "<svg",
			"whisker", "function_name_and_args_accuracy", "n=120", "customized-eval", "Evidence", "Latency p50 / p95",
			"<h3>Findings</h3>", "<li>fine-tuning (customized-eval) helped</li>",
			"/ui/runs/" + done.ID + "/divergences?eval="}, nil},
		{"ResultsOtherMetric", "/ui/runs/" + done.ID + "/results?metric=function_name_and_args_accuracy", 200,
			[]string{`<option value="function_name_and_args_accuracy" selected>`, "function_name_and_args_accuracy by candidate"}, nil},
		{"ResultsUnknownMetric", "/ui/runs/" + done.ID + "/results?metric=nope", 400, []string{"no score named"}, nil},
		{"Divergences", "/ui/runs/" + done.ID + "/divergences", 200, []string{"divergent items", "wrong_function",
			"Production (reference)", "&#34;city&#34;:&#34;Paris&#34;", "Next »"}, nil},
		{"DivergencesFiltered", "/ui/runs/" + done.ID + "/divergences?eval=" + evalID + "&tool=book_flight&class=missing_call", 200,
			[]string{"missing_call", "book_flight", "I cannot help"}, []string{"<code>get_weather</code>", `<span class="cls">wrong_function`}},
		{"DivergencesPage2", "/ui/runs/" + done.ID + "/divergences?eval=" + evalID + "&offset=25", 200, []string{"Items 26–", "« Previous"}, nil},
		{"DivergencesUnknownEval", "/ui/runs/" + done.ID + "/divergences?eval=nope", 404, []string{"has no evaluation"}, nil},
		{"ConfirmCancel", "/ui/runs/" + slow.ID + "/cancel", 200, []string{"Cancel run", `name="csrf"`, `method="post"`}, nil},
		{"ConfirmCancelFinished", "/ui/runs/" + done.ID + "/cancel", 409, []string{"nothing to cancel"}, nil},
		{"ConfirmDelete", "/ui/runs/" + done.ID + "/delete", 200, []string{"Delete run", "cannot be undone", `name="csrf"`}, nil},
		{"ConfirmDeleteRunning", "/ui/runs/" + slow.ID + "/delete", 409, []string{"Cancel it before deleting it"}, nil},
		{"UnknownRun", "/ui/runs/6b0744280000000000000000", 404, []string{"Job not found", "Back to the runs"}, nil},
		{"MalformedRunID", "/ui/runs/not-an-id", 400, []string{"Invalid job_id format"}, nil},
		{"UnknownPage", "/ui/nowhere", 404, []string{"There is no page at /ui/nowhere"}, nil},
		{"Stylesheet", "/ui/static/style.css", 200, []string{".badge"}, nil},
		{"Script", "/ui/static/live.js", 200, []string{"data-live"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := b.get(t, tt.path)
			require.Equal(t, tt.status, got.status, got.body)
			for _, w := range tt.want {
				require.Contains(t, got.body, w)
			}
			for _, a := range tt.absent {
				require.NotContains(t, got.body, a)
			}
			require.NotContains(t, got.body, "goroutine")
			if strings.HasPrefix(got.header.Get("Content-Type"), "text/html") {
				require.Contains(t, got.header.Get("Content-Security-Policy"), "default-src 'self'")
			}
		})
	}
}

func TestCancelAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{items: 30})
	slow := b.create(t, slowWorkload, "beta")
	b.evaluating(t, slow.ID)
	page := b.get(t, "/ui/runs/"+slow.ID+"/cancel")
	m := csrfRe.FindStringSubmatch(page.body)
	require.Len(t, m, 2, page.body)
	token := m[1]
	cancelURL := b.server.URL + "/ui/runs/" + slow.ID + "/cancel"

	t.Run("CrossSiteRefused", func(t *testing.T) {
		got := do(t, noRedirect(), http.MethodPost, cancelURL, url.Values{"csrf": {token}}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
		require.Equal(t, http.StatusForbidden, got.status)
		require.Contains(t, got.body, "another site")
		got = do(t, noRedirect(), http.MethodPost, cancelURL, url.Values{"csrf": {token}}, http.Header{"Origin": {"https://evil.example"}})
		require.Equal(t, http.StatusForbidden, got.status)
	})
	t.Run("WrongTokenRefused", func(t *testing.T) {
		got := do(t, noRedirect(), http.MethodPost, cancelURL, url.Values{"csrf": {"0000"}}, http.Header{"Sec-Fetch-Site": {"same-origin"}})
		require.Equal(t, http.StatusForbidden, got.status)
		require.Contains(t, got.body, "expired")
		d, err := b.engine.GetJob(context.Background(), slow.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.RunRunning, d.Run.Status, "a refused form changes nothing")
	})
	t.Run("Cancel", func(t *testing.T) {
		got := do(t, noRedirect(), http.MethodPost, cancelURL, url.Values{"csrf": {token}}, http.Header{"Sec-Fetch-Site": {"same-origin"}})
		require.Equal(t, http.StatusSeeOther, got.status, got.body)
		require.Equal(t, "/ui/runs/"+slow.ID+"?done=cancel", got.header.Get("Location"))
		d := b.finished(t, slow.ID)
		require.Equal(t, flywheel.RunCancelled, d.Run.Status)
		page := b.get(t, "/ui/runs/"+slow.ID+"?done=cancel")
		require.Contains(t, page.body, "Cancellation requested")
		require.Contains(t, page.body, `class="badge s-cancelled"`)
	})
	t.Run("CancelAgainFails", func(t *testing.T) {
		got := do(t, noRedirect(), http.MethodPost, b.server.URL+"/ui/runs/"+slow.ID+"/cancel", url.Values{"csrf": {token}}, nil)
		// Cancelling a cancelled run is a no-op that succeeds.
		require.Equal(t, http.StatusSeeOther, got.status, got.body)
	})
	t.Run("Delete", func(t *testing.T) {
		got := do(t, noRedirect(), http.MethodPost, b.server.URL+"/ui/runs/"+slow.ID+"/delete", url.Values{"csrf": {token}},
			http.Header{"Sec-Fetch-Site": {"same-origin"}})
		require.Equal(t, http.StatusSeeOther, got.status, got.body)
		require.Equal(t, "/ui/?deleted="+slow.ID, got.header.Get("Location"))
		require.Eventually(t, func() bool {
			_, err := b.engine.GetJob(context.Background(), slow.ID)
			return flywheel.ErrorCode(err) == flywheel.ENOTFOUND
		}, 30*time.Second, 20*time.Millisecond)
		list := b.get(t, "/ui/?deleted="+slow.ID)
		require.Contains(t, list.body, "Deletion of run "+slow.ID+" started")
	})
}

// failingJobs is a JobService whose every call fails with err.
type failingJobs struct{ err error }

func (f failingJobs) CreateJob(context.Context, flywheel.CreateJobRequest) (*flywheel.Run, error) {
	return nil, f.err
}

func (f failingJobs) ListJobs(context.Context, flywheel.JobFilter) (flywheel.JobPage, error) {
	return flywheel.JobPage{}, f.err
}
func (f failingJobs) GetJob(context.Context, string) (*flywheel.JobDetail, error) { return nil, f.err }
func (f failingJobs) CancelJob(context.Context, string) (string, error)           { return "", f.err }
func (f failingJobs) DeleteJob(context.Context, string) (string, error)           { return "", f.err }
func (f failingJobs) ListItems(context.Context, flywheel.ItemFilter) (flywheel.ItemPage, error) {
	return flywheel.ItemPage{}, f.err
}
func (f failingJobs) Ready(context.Context) error { return f.err }

func TestServiceErrorsBecomeFriendlyPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"Internal", errors.New("pq: connection reset by peer at 10.0.0.5"), 500, "Something went wrong"},
		{"Unavailable", flywheel.Errorf(flywheel.EUNAVAILABLE, "Database unreachable."), 503, "Database unreachable."},
		{"NotFound", flywheel.Errorf(flywheel.ENOTFOUND, "Job not found"), 404, "Job not found"},
		{"Precondition", flywheel.Errorf(flywheel.EPRECONDITION, "Cannot cancel a job that has already finished."), 409, "already finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := ui.New(ui.Options{Jobs: failingJobs{err: tt.err}})
			for _, path := range []string{"/ui/", "/ui/runs/x", "/ui/runs/x/results", "/ui/runs/x/divergences", "/ui/runs/x/cancel", "/ui/runs/rows"} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				require.Equal(t, tt.status, rec.Code, path)
				require.Contains(t, rec.Body.String(), tt.want, path)
				require.NotContains(t, rec.Body.String(), "10.0.0.5", "internal details stay in the log")
			}
		})
	}
}

func TestCustomPrefix(t *testing.T) {
	t.Parallel()
	h := ui.New(ui.Options{Jobs: failingJobs{err: flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")}, Prefix: "/dash/"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dash/static/style.css", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dash/runs/abc", nil))
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Contains(t, rec.Body.String(), `href="/dash/static/style.css"`)
}
