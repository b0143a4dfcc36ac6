package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// Candidates of every test run.
const (
	modelSmall = "meta/llama-3.2-1b-instruct"
	modelLarge = "meta/llama-3.2-3b-instruct"
	clientID   = "e2e"
	evalSize   = 20
)

// bundle is one flywheel process (the real app serving its REST API) and
// the NeMo fake it talks to.
type bundle struct {
	fake *nemotest.Server
	gate *gate
	app  *app.App
	api  *client.Client
	cfg  *config.Config
	stop func()
}

type setupOpts struct {
	fake   nemotest.Options
	config func(*config.Config)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func candidate(model string) flywheel.NIMConfig {
	return flywheel.NIMConfig{
		ModelName: model, ModelType: config.ModelTypeLLM, ContextLength: 8192, Tag: "1.8.3",
		RegistryBase: config.RegistryBaseDefault, CustomizationEnabled: true,
		CustomizerConfigs: &flywheel.CustomizerConfig{Target: model + "@2.0", GPUs: 1, NumNodes: 1, TensorParallelSize: 1,
			DataParallelSize: 1, MicroBatchSize: 1, MaxSeqLength: 4096, TrainingPrecision: config.TrainingPrecisionBF16M},
	}
}

// setup starts the fake (behind a gate that can hold chosen requests) and
// the app on a fresh database of dialect d, and serves the app's API.
func setup(t testing.TB, d store.Dialect, so setupOpts) *bundle {
	t.Helper()
	b := &bundle{}
	b.fake, b.gate = startFake(t, so.fake)
	// Held requests go on when the test ends, so nothing waits for them.
	t.Cleanup(b.gate.open)
	b.cfg = testConfig(t, d, b.fake, so.config)
	b.start(t)
	return b
}

// start opens the app on b.cfg, starts its workers and serves its API.
// stop closes it again; the test's end stops it too.
func (b *bundle) start(t testing.TB) {
	t.Helper()
	startLogged(t, b, testLogger(t))
}

// startLogged is bundle.start with the app logging to logger.
func startLogged(t testing.TB, b *bundle, logger *slog.Logger) {
	t.Helper()
	ctx := context.Background()
	a, err := app.Open(ctx, b.cfg, logger, app.Options{Workers: true, API: true, Getenv: noEnv})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler)
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			srv.Close()
			a.Close()
		})
	}
	t.Cleanup(b.stop)
	require.NoError(t, a.Start(ctx))
	b.app = a
	b.api, err = client.New(srv.URL, nil)
	require.NoError(t, err)
}

func noEnv(string) string { return "" }

// startFake serves the NeMo fake behind a gate.
func startFake(t testing.TB, opts nemotest.Options) (*nemotest.Server, *gate) {
	t.Helper()
	g := &gate{release: make(chan struct{})}
	fake := nemotest.NewHandler(opts)
	srv := httptest.NewServer(g.wrap(fake))
	t.Cleanup(srv.Close)
	fake.URL, fake.NIMURL = srv.URL, srv.URL+nemotest.NIMPrefix
	return fake, g
}

// testConfig returns a valid configuration of the nemo platform on fake,
// with two customizable candidates, fast polling and a fresh database.
func testConfig(t testing.TB, d store.Dialect, fake *nemotest.Server, mutate func(*config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = storetest.URL(t, d)
	cfg.Logging.Level = "WARNING"
	cfg.Platform.Name = config.PlatformNeMo
	cfg.NMP.NemoBaseURL = fake.URL
	cfg.NMP.DatastoreBaseURL = fake.URL
	cfg.NMP.NIMBaseURL = fake.NIMURL
	cfg.NIMs = []flywheel.NIMConfig{candidate(modelSmall), candidate(modelLarge)}
	limit := 200
	cfg.DataSplit.EvalSize = evalSize
	cfg.DataSplit.Limit = &limit
	cfg.Engine.PollInterval = 50 * time.Millisecond
	cfg.Engine.Workers = 8
	cfg.Engine.Retry = config.RetryConfig{MaxAttempts: 5, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
	cfg.Eval.RequestTimeout = 20 * time.Second
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	return cfg
}

// load stores a BFCL log file under workload.
func (b *bundle) load(t testing.TB, file, workload string) int {
	t.Helper()
	return loadLogs(t, b.app.Store, file, workload)
}

// loadLogs stores a file of the generated tool-calling corpus under
// workload through ing.
func loadLogs(t testing.TB, ing flywheel.LogIngester, file, workload string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(testcorpus.BFCLDir(t), file))
	require.NoError(t, err)
	defer f.Close()
	sum, err := ingest.Load(context.Background(), f, ingest.Options{WorkloadID: workload, ClientID: clientID}, ing, nil)
	require.NoError(t, err)
	require.Zero(t, sum.Rejected, "%+v", sum.Rejections)
	require.Positive(t, sum.Loaded)
	return sum.Loaded
}

// create starts a run through the REST API.
func (b *bundle) create(t testing.TB, workload string) string {
	t.Helper()
	res, err := b.api.CreateJob(context.Background(), client.CreateJobRequest{JobRequest: api.JobRequest{WorkloadID: workload, ClientID: clientID}})
	require.NoError(t, err)
	require.Equal(t, api.JobResponseStatusQueued, res.Status)
	return res.ID
}

// stages returns every stage of a job detail, keyed "candidate/name"
// ("/name" for run-level stages), with its status.
func stages(job api.JobDetailResponse) map[string]api.Stage {
	out := map[string]api.Stage{}
	for _, s := range job.Stages {
		out["/"+s.Name] = s
	}
	for _, n := range job.NIMs {
		for _, s := range n.Stages {
			out[n.ModelName+"/"+s.Name] = s
		}
	}
	return out
}

func stageDone(status string) bool {
	return flywheel.StageStatus(status).Done()
}

// waitFor calls cond every tick until it holds or within has passed, and
// reports whether it held. Unlike require.Eventually it runs cond on the
// test's goroutine, and the caller's failure message is built afterwards,
// from the final state.
func waitFor(within, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(tick)
	}
}

// wait polls the API until the run has finished and every stage of it,
// cleanup included, is done.
func (b *bundle) wait(t testing.TB, id string, within time.Duration) api.JobDetailResponse {
	t.Helper()
	var job api.JobDetailResponse
	ok := waitFor(within, 50*time.Millisecond, func() bool {
		var err error
		job, err = b.api.GetJob(context.Background(), id)
		require.NoError(t, err)
		if job.FinishedAt == nil {
			return false
		}
		for _, s := range stages(job) {
			if !stageDone(s.Status) {
				return false
			}
		}
		return true
	})
	require.True(t, ok, "run %s did not finish within %s: %s", id, within, describe(job))
	return job
}

// live counts a run's live ledger entries of a kind.
func (b *bundle) live(t testing.TB, runID string, kind flywheel.ResourceKind) int {
	t.Helper()
	res, err := b.app.Store.ListResources(context.Background(), runID, flywheel.ResourceLive)
	require.NoError(t, err)
	n := 0
	for _, r := range res {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

// describe summarises a job for failure messages.
func describe(job api.JobDetailResponse) string {
	var sb strings.Builder
	sb.WriteString("status=" + job.Status)
	if job.Error != nil {
		sb.WriteString(" error=" + *job.Error)
	}
	for k, s := range stages(job) {
		sb.WriteString(" " + k + "=" + s.Status)
		if s.Error != nil {
			sb.WriteString("(" + *s.Error + ")")
		}
	}
	return sb.String()
}

// models returns the model entities of the fake's Entity Store.
func (b *bundle) models(t testing.TB) []string {
	t.Helper()
	var names []string
	for page := 1; ; page++ {
		var out struct {
			Data []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"data"`
			Pagination struct {
				TotalPages int `json:"total_pages"`
			} `json:"pagination"`
		}
		b.getFake(t, "/v1/models?page_size=100&page="+strconv.Itoa(page), &out)
		for _, m := range out.Data {
			names = append(names, m.Namespace+"/"+m.Name)
		}
		if page >= out.Pagination.TotalPages {
			return names
		}
	}
}

// datasetRegistered reports whether the fake's Entity Store has ns/name.
func (b *bundle) datasetRegistered(t testing.TB, ns, name string) bool {
	t.Helper()
	return b.getFake(t, "/v1/datasets/"+ns+"/"+name, nil) == http.StatusOK
}

// getFake GETs a path of the fake, bypassing injected failures' effect on
// the test by retrying 503s, and decodes a 200 answer into out.
func (b *bundle) getFake(t testing.TB, path string, out any) int {
	t.Helper()
	for range 50 {
		resp, err := http.Get(b.fake.URL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		if resp.StatusCode == http.StatusServiceUnavailable {
			continue
		}
		if resp.StatusCode == http.StatusOK && out != nil {
			require.NoError(t, json.Unmarshal(body, out))
		}
		return resp.StatusCode
	}
	t.Fatalf("the fake kept failing GET %s", path)
	return 0
}

// gate holds the fake's requests that match its rule until the request's
// client gives up (the stage was cancelled) or the gate opens, so a test
// can keep a run inside one stage for as long as it likes.
type gate struct {
	mu      sync.Mutex
	rule    func(r *http.Request, body []byte) bool
	held    int
	total   int
	release chan struct{}
	once    sync.Once
}

// hold makes the gate hold the requests rule matches.
func (g *gate) hold(rule func(r *http.Request, body []byte) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rule = rule
}

// open lets every held and future request through.
func (g *gate) open() {
	g.once.Do(func() { close(g.release) })
	g.hold(nil)
}

// counts returns how many requests are held now and were held in all.
func (g *gate) counts() (held, total int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.total
}

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		rule := g.rule
		g.mu.Unlock()
		if rule != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if rule(r, body) {
				g.mu.Lock()
				g.held++
				g.total++
				g.mu.Unlock()
				select {
				case <-r.Context().Done():
				case <-g.release:
				}
				g.mu.Lock()
				g.held--
				g.mu.Unlock()
				if r.Context().Err() != nil {
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// chatsOf matches chat completions whose model satisfies pred.
func chatsOf(pred func(model string) bool) func(*http.Request, []byte) bool {
	return func(r *http.Request, body []byte) bool {
		if r.Method != http.MethodPost || r.URL.Path != nemotest.NIMPrefix+"/v1/chat/completions" {
			return false
		}
		var req struct {
			Model string `json:"model"`
		}
		return json.Unmarshal(body, &req) == nil && pred(req.Model)
	}
}

// commits matches Data Store commits (dataset uploads).
func commits(r *http.Request, _ []byte) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/hf/api/datasets/") && strings.Contains(r.URL.Path, "/commit/")
}

func customized(model string) bool { return strings.Contains(model, "@cust-") }
