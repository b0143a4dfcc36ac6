package server_test

import (
	"cmp"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
)

// reached is a mounted handler that counts the requests that got through.
type reached struct {
	n   atomic.Int64
	csp string // a Content-Security-Policy it sets, if any
}

func (h *reached) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.n.Add(1)
	if h.csp != "" {
		w.Header().Set("Content-Security-Policy", h.csp)
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte(`<input type="hidden" name="csrf" value="s3cret-token">`))
}

type guardBundle struct {
	*testBundle
	ui, river, capture *reached
	handler            http.Handler
	created, cancelled atomic.Int64
}

func setupGuard(t *testing.T, allowed ...string) *guardBundle {
	t.Helper()
	g := &guardBundle{testBundle: setup(t), ui: &reached{}, river: &reached{}, capture: &reached{}}
	g.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
		g.created.Add(1)
		return &flywheel.Run{ID: "run-1", WorkloadID: req.WorkloadID, ClientID: req.ClientID, Status: flywheel.RunPending, StartedAt: start}, nil
	}
	g.jobs.CancelJobFunc = func(context.Context, string) (string, error) {
		g.cancelled.Add(1)
		return "Job cancellation initiated successfully.", nil
	}
	g.jobs.DeleteJobFunc = func(context.Context, string) (string, error) {
		g.cancelled.Add(1)
		return "Job deletion started.", nil
	}
	g.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
		g.created.Add(int64(len(recs)))
		return len(recs), 0, nil
	}
	g.opts.UI, g.opts.RiverUI, g.opts.Capture = g.ui, g.river, g.capture
	g.opts.AllowedHosts = allowed
	g.opts.ListenAddr = "127.0.0.1:8000"
	g.handler = server.New(g.opts)
	return g
}

// effects counts what reached a handler that changes something.
func (g *guardBundle) effects() int64 {
	return g.created.Load() + g.cancelled.Load() + g.ui.n.Load() + g.river.n.Load() + g.capture.n.Load()
}

// stateChanging are the routes and mounts that change something, each
// with a body that would work if it got through.
var stateChanging = []struct{ method, target, body string }{ //nolint:gochecknoglobals // test table
	{"POST", "/api/jobs", `{"workload_id":"w","client_id":"c"}`},
	{"POST", "/api/logs", goodLine + "\n"},
	{"POST", "/api/jobs/run-1/cancel", ""},
	{"DELETE", "/api/jobs/run-1", ""},
	{"POST", "/v1/chat/completions", `{"model":"m","messages":[]}`},
	{"POST", "/ui/river/api/jobs/cancel", `{"ids":["1","2","3"]}`},
	{"POST", "/ui/river/api/jobs/delete", `{"ids":["1"]}`},
	{"POST", "/ui/river/api/jobs/retry", `{"ids":["1"]}`},
	{"PUT", "/ui/river/api/queues/default/pause", `{}`},
	{"PATCH", "/ui/river/api/queues/default", `{"concurrency":null}`},
	{"POST", "/ui/runs/run-1/cancel", "csrf=s3cret-token"},
}

func TestGuardRefusesCrossSiteRequests(t *testing.T) {
	t.Parallel()

	attacks := []struct {
		name   string
		header []string
		status int
	}{
		{"TextPlainCrossSite", []string{"Content-Type", "text/plain", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"JSONCrossSite", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"SameSite", []string{"Content-Type", "text/plain", "Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost:8000"}, http.StatusForbidden},
		{"ForeignOriginOldBrowser", []string{"Content-Type", "text/plain", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"ForeignOriginJSON", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"OtherLocalPort", []string{"Origin", "http://127.0.0.1:3000"}, http.StatusForbidden},
		{"NullOrigin", []string{"Content-Type", "text/plain", "Origin", "null"}, http.StatusForbidden},
		{"TextPlainNoBrowserHeaders", []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"MultipartNoBrowserHeaders", []string{"Content-Type", "multipart/form-data; boundary=x"}, http.StatusUnsupportedMediaType},
	}
	for _, a := range attacks {
		for _, rt := range stateChanging {
			t.Run(a.name+"/"+rt.method+rt.target, func(t *testing.T) {
				t.Parallel()
				g := setupGuard(t)
				resp := do(t, g.handler, rt.method, rt.target, cmp.Or(rt.body, "x"), a.header...)
				require.Equal(t, a.status, resp.status, string(resp.body))
				require.NotEmpty(t, resp.detail(t))
				require.Zero(t, g.effects(), "a refused request reaches no handler")
			})
		}
	}

	t.Run("FormPostToAPI", func(t *testing.T) {
		t.Parallel()
		g := setupGuard(t)
		for _, target := range []string{"/api/jobs", "/api/logs", "/api/jobs/run-1/cancel", "/ui/river/api/jobs/cancel"} {
			resp := do(t, g.handler, "POST", target, "workload_id=w", "Content-Type", "application/x-www-form-urlencoded")
			require.Equal(t, http.StatusUnsupportedMediaType, resp.status, target)
			require.Contains(t, resp.detail(t), "application/json", target)
		}
		require.Zero(t, g.effects())
	})
}

func TestGuardLetsLegitimateRequestsThrough(t *testing.T) {
	t.Parallel()

	allowed := []struct {
		name   string
		header []string
	}{
		{"CurlJSON", nil},
		{"NDJSON", []string{"Content-Type", "application/x-ndjson"}},
		{"JSONWithCharset", []string{"Content-Type", "application/json; charset=utf-8"}},
		{"BrowserSameOrigin", []string{"Content-Type", "text/plain", "Sec-Fetch-Site", "same-origin", "Origin", "http://127.0.0.1:8000"}},
		{"OldBrowserSameOrigin", []string{"Content-Type", "text/plain", "Origin", "http://127.0.0.1:8000"}},
		{"ConfiguredOrigin", []string{"Origin", "https://flywheel.example.com"}},
	}
	for _, a := range allowed {
		for _, rt := range stateChanging {
			t.Run(a.name+"/"+rt.method+rt.target, func(t *testing.T) {
				t.Parallel()
				g := setupGuard(t, "flywheel.example.com")
				resp := do(t, g.handler, rt.method, rt.target, cmp.Or(rt.body, "{}"), a.header...)
				require.NotContains(t, []int{http.StatusForbidden, http.StatusUnsupportedMediaType, http.StatusMisdirectedRequest},
					resp.status, string(resp.body))
				require.Equal(t, int64(1), min(g.effects(), 1), "the request reached its handler: %s", resp.body)
			})
		}
	}

	t.Run("NoBodyNoContentType", func(t *testing.T) {
		t.Parallel()
		g := setupGuard(t)
		require.Equal(t, http.StatusOK, do(t, g.handler, "POST", "/api/jobs/run-1/cancel", "").status)
		require.Equal(t, http.StatusOK, do(t, g.handler, "DELETE", "/api/jobs/run-1", "").status)
		require.Equal(t, int64(2), g.cancelled.Load())
	})
	t.Run("DashboardFormWithoutBrowserHeaders", func(t *testing.T) {
		// The dashboard checks its own form token.
		t.Parallel()
		g := setupGuard(t)
		resp := do(t, g.handler, "POST", "/ui/runs/run-1/cancel", "csrf=s3cret-token", "Content-Type", "application/x-www-form-urlencoded")
		require.Equal(t, http.StatusOK, resp.status)
		require.Equal(t, int64(1), g.ui.n.Load())
	})
	t.Run("ReadsAreNotChecked", func(t *testing.T) {
		t.Parallel()
		g := setupGuard(t)
		resp := do(t, g.handler, "GET", "/api/jobs", "", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		require.Equal(t, http.StatusOK, resp.status)
	})
}

func TestGuardHostAllowList(t *testing.T) {
	t.Parallel()

	tests := []struct {
		host    string
		allowed []string
		listen  string
		ok      bool
	}{
		{"localhost", nil, "", true},
		{"localhost:8000", nil, "", true},
		{"LOCALHOST.:8000", nil, "", true},
		{"app.localhost:8000", nil, "", true},
		{"127.0.0.1:8000", nil, "", true},
		{"[::1]:8000", nil, "", true},
		{"10.1.2.3:8000", nil, "", true},
		{"", nil, "", true},
		{"evil.example", nil, "", false},
		{"evil.example:8000", nil, "", false},
		{"localhost.evil.example", nil, "", false},
		{"127.0.0.1.nip.io:8000", nil, "", false},
		{"flywheel.example.com", []string{"flywheel.example.com"}, "", true},
		{"FlyWheel.Example.com:443", []string{"flywheel.example.com"}, "", true},
		{"other.example.com", []string{"flywheel.example.com"}, "", false},
		{"a.b.example.com", []string{"*.example.com"}, "", true},
		{"example.com", []string{"*.example.com"}, "", false},
		{"badexample.com", []string{"*.example.com"}, "", false},
		{"anything.example", []string{"*"}, "", true},
		{"gpu-box:8000", nil, "gpu-box:8000", true},
		{"gpu-box:8000", nil, "0.0.0.0:8000", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.ok, server.NewHostPolicy(tt.allowed, tt.listen).Allows(tt.host))
		})
	}
}

func TestGuardDefeatsDNSRebinding(t *testing.T) {
	t.Parallel()
	g := setupGuard(t)

	// A page of evil.example whose name now resolves to 127.0.0.1 reads
	// nothing: not the dashboard with its form token, not the API.
	for _, target := range []string{"/ui/runs/run-1/cancel", "/ui/", "/ui/river/", "/api/jobs", "/metrics", "/openapi.json"} {
		resp := do(t, g.handler, "GET", target, "", "Host", "evil.example:8000")
		require.Equal(t, http.StatusMisdirectedRequest, resp.status, target)
		require.NotContains(t, string(resp.body), "s3cret-token")
		require.Contains(t, resp.detail(t), "server.allowed_hosts")
	}
	resp := do(t, g.handler, "POST", "/ui/runs/run-1/cancel", "csrf=s3cret-token", "Host", "evil.example:8000",
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin", "Origin", "http://evil.example:8000")
	require.Equal(t, http.StatusMisdirectedRequest, resp.status)
	require.Zero(t, g.effects())

	// The same requests with the real name work.
	resp = do(t, g.handler, "GET", "/ui/runs/run-1/cancel", "", "Host", "localhost:8000")
	require.Equal(t, http.StatusOK, resp.status)
	require.Contains(t, string(resp.body), "s3cret-token")
}

func TestGuardSecurityHeaders(t *testing.T) {
	t.Parallel()
	g := setupGuard(t)
	ownCSP := &reached{csp: "default-src 'self'"}
	withAncestors := &reached{csp: "default-src 'self'; frame-ancestors 'self'"}
	g.opts.RiverUI = ownCSP
	g.opts.UI = withAncestors
	h := server.New(g.opts)

	requests := []struct {
		method, target string
		header         []string
	}{
		{"GET", "/healthz", nil},
		{"GET", "/api/jobs", nil},
		{"GET", "/api/jobs/run-1", nil},
		{"GET", "/openapi.json", nil},
		{"GET", "/metrics", nil},
		{"GET", "/nowhere", nil},
		{"GET", "/ui/river/", nil},
		{"GET", "/ui/river/jobs/1", nil},
		{"GET", "/ui/", nil},
		{"POST", "/v1/chat/completions", nil},
		{"GET", "/api/jobs", []string{"Host", "evil.example"}},
		{"POST", "/api/jobs", []string{"Sec-Fetch-Site", "cross-site"}},
	}
	for _, rq := range requests {
		resp := do(t, h, rq.method, rq.target, "", rq.header...)
		name := rq.method + " " + rq.target
		require.Equal(t, "DENY", resp.header.Get("X-Frame-Options"), name)
		require.Equal(t, "nosniff", resp.header.Get("X-Content-Type-Options"), name)
		require.Equal(t, "same-origin", resp.header.Get("Referrer-Policy"), name)
		csp := strings.Join(resp.header.Values("Content-Security-Policy"), ", ")
		require.Contains(t, csp, "frame-ancestors", name)
		switch {
		case strings.HasPrefix(rq.target, "/ui/river/"):
			// River's own policy is kept, and framing is forbidden by a second one.
			require.Equal(t, []string{"default-src 'self'", server.FrameAncestorsNone}, resp.header.Values("Content-Security-Policy"), name)
		case rq.target == "/ui/":
			// A handler that says who may frame it keeps its policy.
			require.Equal(t, []string{"default-src 'self'; frame-ancestors 'self'"}, resp.header.Values("Content-Security-Policy"), name)
		default:
			require.Equal(t, []string{server.FrameAncestorsNone}, resp.header.Values("Content-Security-Policy"), name)
		}
	}
}
