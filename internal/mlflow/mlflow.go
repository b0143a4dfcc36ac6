// Package mlflow exports finished evaluations to an MLflow tracking server
// through its REST API. Each evaluation becomes one MLflow run in the
// experiment "<prefix>-<workload>": its parameters (model, evaluation type,
// workload, flywheel run id), every score with its confidence interval and
// sample count as metrics, the latency, token and cost figures, per-item
// scores as step metrics, and the per-item results as a JSON artifact
// uploaded through the server's artifact proxy (mlflow-artifacts).
//
// Export is best effort: requests time out and transient failures are
// retried, and the stage that calls ExportEvaluation ignores its error, so
// an unreachable MLflow never fails a flywheel run. Exports are idempotent:
// a repeated export of an evaluation finds the MLflow run tagged with its id
// instead of creating a second one.
package mlflow

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
)

// Defaults of Options.
const (
	TimeoutDefault          = 10 * time.Second
	ExportTimeoutDefault    = 2 * time.Minute
	MaxAttemptsDefault      = 3
	BackoffDefault          = 500 * time.Millisecond
	ExperimentPrefixDefault = "data-flywheel"
	// ArtifactName is the file the per-item results are uploaded as.
	ArtifactName = "items.json"
	// TagEvaluationID tags each MLflow run with the flywheel evaluation it holds.
	TagEvaluationID = "flywheel.evaluation_id"
)

// MLflow's limits on one runs/log-batch request.
const (
	maxBatchMetrics = 1000
	maxBatchParams  = 100
)

// Options configure an Exporter.
type Options struct {
	// TrackingURI is the MLflow server's base URL (mlflow_config.tracking_uri).
	TrackingURI string
	// ExperimentPrefix starts every experiment name (mlflow_config.experiment_name_prefix).
	ExperimentPrefix string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTPClient sends the requests; default: a client with a TimeoutDefault timeout.
	HTTPClient *http.Client
	// ExportTimeout bounds one whole export; default ExportTimeoutDefault.
	ExportTimeout time.Duration
	// MaxAttempts is how often a request is tried on transient failures.
	MaxAttempts int
	// Backoff is the wait before the first retry; it doubles on each retry.
	Backoff time.Duration
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock of start and end times; default time.Now.
	Now func() time.Time
}

// Exporter sends evaluations to MLflow. It implements stage.Exporter.
type Exporter struct {
	opts Options
	base *url.URL
}

var _ stage.Exporter = (*Exporter)(nil)

// New returns an Exporter for the server at opts.TrackingURI.
func New(opts Options) (*Exporter, error) {
	u, err := url.Parse(strings.TrimSuffix(opts.TrackingURI, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, flywheel.Errorf(flywheel.EINVALID, "mlflow tracking_uri %q: want an http(s) URL", opts.TrackingURI)
	}
	opts.ExperimentPrefix = cmp.Or(opts.ExperimentPrefix, ExperimentPrefixDefault)
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: TimeoutDefault}
	}
	opts.ExportTimeout = cmp.Or(opts.ExportTimeout, ExportTimeoutDefault)
	opts.MaxAttempts = max(1, cmp.Or(opts.MaxAttempts, MaxAttemptsDefault))
	opts.Backoff = cmp.Or(opts.Backoff, BackoffDefault)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Exporter{opts: opts, base: u}, nil
}

// APIError is an error answer of the MLflow server.
type APIError struct {
	Status    int
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("mlflow: HTTP %d %s: %s", e.Status, e.ErrorCode, e.Message)
}

func (e *APIError) transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// ExperimentName is the experiment an evaluation of workload goes to.
func (e *Exporter) ExperimentName(workload string) string {
	return e.opts.ExperimentPrefix + "-" + workload
}

// RunURL is the MLflow UI's link to a run.
func (e *Exporter) RunURL(experimentID, runID string) string {
	return e.base.String() + "/#/experiments/" + url.PathEscape(experimentID) + "/runs/" + url.PathEscape(runID)
}

// ExportEvaluation implements stage.Exporter: it records the evaluation as a
// finished MLflow run and returns the run's link.
func (e *Exporter) ExportEvaluation(ctx context.Context, run *flywheel.Run, nim *flywheel.NIMRun, ev *flywheel.Evaluation, items []flywheel.ItemResult) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ExportTimeout)
	defer cancel()
	expID, err := e.experiment(ctx, e.ExperimentName(run.WorkloadID))
	if err != nil {
		return "", err
	}
	info, err := e.findRun(ctx, expID, ev.ID)
	if err != nil {
		return "", err
	}
	if info != nil && info.Status == "FINISHED" {
		return e.RunURL(expID, info.RunID), nil
	}
	if info == nil {
		if info, err = e.createRun(ctx, expID, run, nim, ev); err != nil {
			return "", err
		}
	}
	if err := e.logBatches(ctx, info.RunID, params(run, nim, ev), metrics(ev, items, e.opts.Now())); err != nil {
		return "", err
	}
	if err := e.uploadItems(ctx, expID, info, items); err != nil {
		// The run keeps its parameters and metrics; only the file is missing.
		e.opts.Logger.WarnContext(ctx, "MLflow artifact upload failed", "run_id", run.ID, "mlflow_run_id", info.RunID, "error", err)
	}
	end := e.opts.Now()
	if ev.FinishedAt != nil {
		end = *ev.FinishedAt
	}
	if err := e.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/update",
		map[string]any{"run_id": info.RunID, "status": "FINISHED", "end_time": end.UnixMilli()}, nil); err != nil {
		return "", fmt.Errorf("finish mlflow run: %w", err)
	}
	return e.RunURL(expID, info.RunID), nil
}

// experiment returns the id of the named experiment, creating it if needed.
func (e *Exporter) experiment(ctx context.Context, name string) (string, error) {
	var got struct {
		Experiment struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	err := e.call(ctx, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="+url.QueryEscape(name), nil, &got)
	if err == nil {
		return got.Experiment.ExperimentID, nil
	}
	if !isCode(err, "RESOURCE_DOES_NOT_EXIST") {
		return "", fmt.Errorf("get mlflow experiment %q: %w", name, err)
	}
	var created struct {
		ExperimentID string `json:"experiment_id"`
	}
	err = e.call(ctx, http.MethodPost, "/api/2.0/mlflow/experiments/create", map[string]any{"name": name}, &created)
	if isCode(err, "RESOURCE_ALREADY_EXISTS") {
		// Another process created it in between.
		return e.experiment(ctx, name)
	}
	if err != nil {
		return "", fmt.Errorf("create mlflow experiment %q: %w", name, err)
	}
	return created.ExperimentID, nil
}

type runInfo struct {
	RunID       string `json:"run_id"`
	Status      string `json:"status"`
	ArtifactURI string `json:"artifact_uri"`
}

// findRun returns the MLflow run an earlier export of the evaluation made, or nil.
func (e *Exporter) findRun(ctx context.Context, expID, evalID string) (*runInfo, error) {
	var got struct {
		Runs []struct {
			Info runInfo `json:"info"`
		} `json:"runs"`
	}
	body := map[string]any{"experiment_ids": []string{expID}, "max_results": 1,
		"filter": fmt.Sprintf("tags.`%s` = '%s'", TagEvaluationID, evalID)}
	if err := e.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/search", body, &got); err != nil {
		return nil, fmt.Errorf("search mlflow runs: %w", err)
	}
	if len(got.Runs) == 0 {
		return nil, nil
	}
	return &got.Runs[0].Info, nil
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (e *Exporter) createRun(ctx context.Context, expID string, run *flywheel.Run, nim *flywheel.NIMRun, ev *flywheel.Evaluation) (*runInfo, error) {
	name := strings.ReplaceAll(nim.ModelName, "/", "_") + "_" + string(ev.EvalType)
	start := ev.StartedAt
	if start.IsZero() {
		start = e.opts.Now()
	}
	body := map[string]any{"experiment_id": expID, "run_name": name, "start_time": start.UnixMilli(),
		"tags": []kv{{TagEvaluationID, ev.ID}, {"flywheel.run_id", run.ID}, {"flywheel.workload_id", run.WorkloadID},
			{"flywheel.model", nim.ModelName}, {"flywheel.eval_type", string(ev.EvalType)}, {"mlflow.runName", name}}}
	for _, w := range flywheel.EvalWarnings(nim.ModelName, *ev) {
		// MLflow keeps tag values up to 5000 characters.
		body["tags"] = append(body["tags"].([]kv), kv{"flywheel.warning." + w.Kind, truncate(w.Message, 5000)})
	}
	var got struct {
		Run struct {
			Info runInfo `json:"info"`
		} `json:"run"`
	}
	if err := e.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/create", body, &got); err != nil {
		return nil, fmt.Errorf("create mlflow run: %w", err)
	}
	if got.Run.Info.RunID == "" {
		return nil, errors.New("create mlflow run: the answer has no run id")
	}
	return &got.Run.Info, nil
}

// Metric is one MLflow metric value.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

func params(run *flywheel.Run, nim *flywheel.NIMRun, ev *flywheel.Evaluation) []kv {
	ps := []kv{
		{"model", nim.ModelName},
		{"eval_type", string(ev.EvalType)},
		{"workload_id", run.WorkloadID},
		{"client_id", run.ClientID},
		{"flywheel_run_id", run.ID},
		{"evaluation_id", ev.ID},
		{"nim_id", nim.ID},
	}
	// The cost figures' sources say what the cost metrics were computed
	// from (measured figures and prices).
	if s := ev.Summary; s != nil {
		if s.CostBasis != "" {
			ps = append(ps, kv{"cost_basis", s.CostBasis})
		}
		if s.CostSource != "" {
			ps = append(ps, kv{"cost_source", s.CostSource})
		}
		if p := s.Production; p != nil {
			ps = append(ps, kv{"production_cost_source", p.CostSource})
		}
	}
	return ps
}

var badKeyChars = regexp.MustCompile(`[^A-Za-z0-9_\-. /]`)

// metricKey keeps the characters MLflow accepts in a key.
func metricKey(parts ...string) string {
	return badKeyChars.ReplaceAllString(strings.Join(parts, "."), "_")
}

// metrics lists every score with its interval and n, the summary figures,
// the per-tool scores, and per-item scores as step metrics.
func metrics(ev *flywheel.Evaluation, items []flywheel.ItemResult, now time.Time) []Metric {
	ts := now.UnixMilli()
	var out []Metric
	add := func(key string, v float64, step int64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		out = append(out, Metric{Key: key, Value: v, Timestamp: ts, Step: step})
	}
	addPtr := func(key string, v *float64) {
		if v != nil {
			add(key, *v, 0)
		}
	}
	for _, k := range sortedKeys(ev.Scores) {
		add(metricKey(k), ev.Scores[k], 0)
	}
	for _, k := range sortedKeys(ev.Details) {
		d := ev.Details[k]
		add(metricKey(k, "ci_low"), d.CILow, 0)
		add(metricKey(k, "ci_high"), d.CIHigh, 0)
		add(metricKey(k, "stderr"), d.StdErr, 0)
		add(metricKey(k, "n"), float64(d.N), 0)
	}
	if s := ev.Summary; s != nil {
		add("items", float64(s.Items), 0)
		add("answered", float64(s.Answered), 0)
		add("errors", float64(s.Errors), 0)
		add("failures.server_error", float64(s.Failures.ServerError), 0)
		add("failures.timeout", float64(s.Failures.Timeout), 0)
		add("failures.unparseable", float64(s.Failures.Unparseable), 0)
		add("failures.connection", float64(s.Failures.Connection), 0)
		if s.JudgeCalls > 0 {
			add("judge_calls", float64(s.JudgeCalls), 0)
			add("judge_failures", float64(s.JudgeFailures), 0)
		}
		// Latency and tokens exist only over answered requests: with none,
		// the metrics are left out rather than logged as 0.
		add("latency_n", float64(s.LatencyN), 0)
		if s.Concurrency > 0 {
			add("concurrency", float64(s.Concurrency), 0)
		}
		addPtr("latency_p50_ms", s.LatencyP50MS)
		addPtr("latency_p95_ms", s.LatencyP95MS)
		addPtr("server_p50_ms", s.ServerP50MS)
		addPtr("server_p95_ms", s.ServerP95MS)
		add("tokens_n", float64(s.TokensN), 0)
		addPtr("prompt_tokens_per_request", s.PromptTokens)
		addPtr("completion_tokens_per_request", s.CompletionTokens)
		add("cost_per_1k_requests", s.CostPer1KReq, 0)
		addPtr("cpu_seconds_per_request", s.CPUSecondsPerRequest)
		if p := s.Production; p != nil {
			add("production_cost_per_1k_requests", p.CostPer1KReq, 0)
		}
		for _, c := range sortedKeys(s.ErrorClasses) {
			add(metricKey("error_class", c), float64(s.ErrorClasses[c]), 0)
		}
		for _, tool := range sortedKeys(s.PerTool) {
			d := s.PerTool[tool]
			add(metricKey("tool", tool, "mean"), d.Mean, 0)
			add(metricKey("tool", tool, "ci_low"), d.CILow, 0)
			add(metricKey("tool", tool, "ci_high"), d.CIHigh, 0)
			add(metricKey("tool", tool, "n"), float64(d.N), 0)
		}
	}
	for _, it := range items {
		for _, k := range sortedKeys(it.Scores) {
			add(metricKey("item", k), it.Scores[k], int64(it.Index))
		}
		if it.LatencyMS > 0 { // a failed request has no latency
			add("item.latency_ms", it.LatencyMS, int64(it.Index))
		}
	}
	return out
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// logBatches sends params and metrics within MLflow's per-request limits.
func (e *Exporter) logBatches(ctx context.Context, runID string, ps []kv, ms []Metric) error {
	for len(ps) > 0 || len(ms) > 0 {
		np := min(len(ps), maxBatchParams)
		nm := min(len(ms), maxBatchMetrics-np)
		body := map[string]any{"run_id": runID, "params": ps[:np], "metrics": ms[:nm], "tags": []kv{}}
		if err := e.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/log-batch", body, nil); err != nil {
			return fmt.Errorf("log mlflow metrics: %w", err)
		}
		ps, ms = ps[np:], ms[nm:]
	}
	return nil
}

// artifactPath is where the run's artifacts live under the artifact proxy:
// the path of an mlflow-artifacts: URI, or the server's default layout.
func artifactPath(expID string, info *runInfo) string {
	if rest, ok := strings.CutPrefix(info.ArtifactURI, "mlflow-artifacts:"); ok {
		if u, err := url.Parse(info.ArtifactURI); err == nil && u.Host != "" {
			rest = u.Path
		}
		return strings.Trim(rest, "/")
	}
	return expID + "/" + info.RunID + "/artifacts"
}

func (e *Exporter) uploadItems(ctx context.Context, expID string, info *runInfo, items []flywheel.ItemResult) error {
	if items == nil {
		items = []flywheel.ItemResult{}
	}
	body, err := json.Marshal(items)
	if err != nil {
		return fmt.Errorf("encode items: %w", err)
	}
	p := "/api/2.0/mlflow-artifacts/artifacts/" + artifactPath(expID, info) + "/" + ArtifactName
	return e.do(ctx, http.MethodPut, p, "application/json", body, nil)
}

// call sends a JSON request and decodes the JSON answer into out (when not nil).
func (e *Exporter) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	return e.do(ctx, method, path, "application/json", body, out)
}

// do sends a request, retrying network errors, 429 and 5xx answers with
// exponential backoff.
func (e *Exporter) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	wait := e.opts.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		err = e.once(ctx, method, path, contentType, body, out)
		var apiErr *APIError
		transient := err != nil && (!errors.As(err, &apiErr) || apiErr.transient()) && ctx.Err() == nil
		if !transient || attempt >= e.opts.MaxAttempts {
			return err
		}
		e.opts.Logger.DebugContext(ctx, "MLflow request failed; retrying", "path", path, "attempt", attempt, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

func (e *Exporter) once(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base.String()+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if e.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.opts.Token)
	}
	resp, err := e.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		apiErr := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, apiErr) != nil || apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(string(data[:min(len(data), 300)]))
		}
		return apiErr
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s: %w", path, err)
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}
