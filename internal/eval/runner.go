package eval

import (
	"bufio"
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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
)

// Runner defaults.
const (
	ConcurrencyDefault      = 16
	TimeoutDefault          = 120 * time.Second
	MaxItemBytesDefault     = 4096
	ProgressIntervalDefault = 500 * time.Millisecond
	// EvalFileName is the evaluation file inside a dataset directory.
	EvalFileName = "eval_data.jsonl"
	// ClassJudgeFailed counts, in Summary.ErrorClasses, items whose judge
	// call failed or gave no score (their judge score is absent).
	ClassJudgeFailed = "judge_failed"
)

// with returns s with the fields set in o replaced.
func (s Sampling) with(o *flywheel.SamplingConfig) Sampling {
	if o == nil {
		return s
	}
	if o.Temperature != nil {
		s.Temperature = o.Temperature
	}
	if o.TopP != nil {
		s.TopP = o.TopP
	}
	if o.MaxTokens != nil {
		s.MaxTokens = o.MaxTokens
	}
	if o.Seed != nil {
		s.Seed = o.Seed
	}
	if o.Stream {
		s.Stream = true
	}
	return s
}

// Sampling overrides sampling parameters of the replayed requests. Nil
// fields keep the logged values.
type Sampling struct {
	Temperature *float64
	TopP        *float64
	MaxTokens   *int
	Seed        *int64
	// Stream asks for streamed replies (reassembled before scoring).
	Stream bool
	// Extra sets or replaces other body fields.
	Extra map[string]json.RawMessage
}

// Options configures a Runner.
type Options struct {
	// Concurrency is the number of requests in flight (ConcurrencyDefault).
	Concurrency int
	// Timeout bounds each request attempt (TimeoutDefault).
	Timeout time.Duration
	// MaxRetries is the number of retries per request (the client's
	// default when zero; negative disables).
	MaxRetries int
	// RetryBaseDelay is the first backoff (the client's default when zero).
	RetryBaseDelay time.Duration
	// HTTPClient sends every request; nil builds a pooled one.
	HTTPClient *http.Client
	// Sampling applies to every candidate; SamplingByModel, keyed by the
	// target model id, replaces it for one candidate.
	Sampling        Sampling
	SamplingByModel map[string]Sampling
	// JudgePrompts overrides the judge's prompts (empty fields keep ours).
	JudgePrompts JudgePrompts
	Bootstrap    Bootstrap
	// MaxItemBytes caps the reference and prediction kept per item
	// (MaxItemBytesDefault; negative: no cap).
	MaxItemBytes int
	// IncludeRequests keeps each item's replayed request in its result.
	IncludeRequests bool
	// ItemSink, when set, receives every item result as it is produced and
	// EvalResult.Items stays empty, so memory does not grow with the
	// dataset. It is called from one goroutine; an error stops the run.
	ItemSink func(ctx context.Context, item flywheel.ItemResult) error
	// Answers holds BFCL-style acceptable values by logged response id; an
	// item without one is checked against its reference call.
	Answers map[string]Answer
	// ToolCallChecker is the AST checker's mode (CheckerFlywheel when
	// empty).
	ToolCallChecker ToolCallChecker
	// PricePerHourByModel prices a candidate by the hour (a GPU-hour, a
	// dedicated endpoint), keyed by target model id. When a candidate has
	// no per-token price (EvalRequest.PricePer1KTokens is 0) its cost per
	// 1k requests is this price × the run's wall-clock hours / items ×
	// 1000, which depends on the concurrency used.
	PricePerHourByModel map[string]float64
	// Prices prices candidates by their measured CPU time and production
	// by its logged usage (see Prices).
	Prices Prices
	// ProgressInterval is the least time between progress reports.
	ProgressInterval time.Duration
	// Logger receives the runner's logs (the caller names the component);
	// nil discards them.
	Logger *slog.Logger
}

// Runner replays evaluation datasets against OpenAI-compatible endpoints
// and scores the replies. It implements flywheel.Evaluator and is safe for
// concurrent use.
type Runner struct {
	opts   Options
	http   *http.Client
	logger *slog.Logger
}

var _ flywheel.Evaluator = (*Runner)(nil)

// NewRunner returns a Runner.
func NewRunner(opts Options) *Runner {
	opts.Concurrency = cmp.Or(opts.Concurrency, ConcurrencyDefault)
	opts.Timeout = cmp.Or(opts.Timeout, TimeoutDefault)
	opts.MaxItemBytes = cmp.Or(opts.MaxItemBytes, MaxItemBytesDefault)
	opts.ProgressInterval = cmp.Or(opts.ProgressInterval, ProgressIntervalDefault)
	r := &Runner{opts: opts, http: opts.HTTPClient, logger: opts.Logger}
	if r.http == nil {
		r.http = &http.Client{Transport: openai.NewTransport()}
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// metric indexes the per-item score array.
type metric int

const (
	mFunctionName metric = iota
	mNameAndArgs
	mCallP
	mCallR
	mCallF1
	mArgP
	mArgR
	mArgF1
	mAST
	mToolJudge
	mExact
	mTokenF1
	mRougeL
	mSimilarity
	numMetrics
)

// key returns the score key of a metric.
func (m metric) key() string {
	return [numMetrics]string{
		flywheel.ScoreFunctionName, flywheel.ScoreFunctionNameAndArgs,
		ScoreToolCallPrecision, ScoreToolCallRecall, ScoreToolCallF1,
		ScoreToolArgPrecision, ScoreToolArgRecall, ScoreToolArgF1, ScoreASTAccuracy,
		flywheel.ScoreToolCallingCorrectness,
		ScoreExactMatch, ScoreTokenF1, ScoreRougeL, flywheel.ScoreSimilarity,
	}[m]
}

// perItem reports whether an item result carries the metric. Tool-call
// precision and recall are aggregate-only: with them an item's score map
// would pass eight entries and double in size.
func (m metric) perItem() bool {
	switch m {
	case mCallP, mCallR, mArgP, mArgR:
		return false
	}
	return true
}

// job is one dataset line to evaluate.
type job struct {
	index int // position among evaluated records
	line  int // 1-based line number in the file
	data  []byte
}

// failure says why an item got no usable reply.
type failure uint8

const (
	noFailure failure = iota
	failServer
	failTimeout
	failUnparseable
	failConnection
)

// classifyFailure returns the failure class of a request's error and the
// item's error class.
func classifyFailure(err error) (failure, string) {
	var apiErr *openai.APIError
	switch {
	case openai.IsModelOutputError(err):
		return failServer, ClassInvalidOutput
	case errors.As(err, &apiErr):
		return failServer, ClassServerError
	case openai.IsTimeout(err):
		return failTimeout, ClassTimeout
	case errors.Is(err, flywheel.ErrPermanent):
		// The client marks a reply it cannot decode as permanent.
		return failUnparseable, ClassUnparseable
	}
	return failConnection, ClassConnectionError
}

// outcome is one evaluated item in compact form.
type outcome struct {
	index, line      int
	tool             string
	scores           [numMetrics]float32
	class, err       string
	invalid          bool
	failure          failure
	judged           bool
	judgeFailed      bool
	judgeErr         string
	permanent        bool
	usage            bool
	latencyMS        float32
	ttftMS           float32 // streamed replies only
	prompt, complete int32
	// computeMS is the server's own compute time (llama-server's timings);
	// computed says whether the reply reported it.
	computed  bool
	computeMS float32
	// refUsage says whether the logged response reported its usage, the
	// production model's tokens refPrompt and refComplete.
	refUsage               bool
	refPrompt, refComplete int32
	request                json.RawMessage
	reference, pred        json.RawMessage
}

// Evaluate replays the dataset's records against req.Target and scores the
// replies against the logged responses. It stops within a second of ctx
// being cancelled and returns ctx's error. Bad records are reported per
// item (class invalid_record, naming the line) and left out of the
// scores; a failed request scores 0 on every deterministic metric and is
// counted by class in the summary (Failures). Evaluate fails when no
// record is valid or no request reached a server.
func (r *Runner) Evaluate(ctx context.Context, req flywheel.EvalRequest, progress flywheel.ProgressFunc) (flywheel.EvalResult, error) {
	path, err := evalFile(req.Dataset.Path)
	if err != nil {
		return flywheel.EvalResult{}, err
	}
	total, err := countRecords(path, req.Limit)
	if err != nil {
		return flywheel.EvalResult{}, err
	}
	client, err := openai.New(openai.Config{BaseURL: req.Target.BaseURL, APIKey: req.Target.APIKey, HTTPClient: r.http,
		Timeout: r.opts.Timeout, MaxRetries: r.opts.MaxRetries, RetryBaseDelay: r.opts.RetryBaseDelay, Logger: r.logger})
	if err != nil {
		return flywheel.EvalResult{}, flywheel.Permanent(fmt.Errorf("evaluate %s: %w", req.Target.Model, err))
	}
	var judge *Judge
	if req.Judge != nil {
		jc, err := openai.New(openai.Config{BaseURL: req.Judge.BaseURL, APIKey: req.Judge.APIKey, HTTPClient: r.http,
			Timeout: r.opts.Timeout, MaxRetries: r.opts.MaxRetries, RetryBaseDelay: r.opts.RetryBaseDelay, Logger: r.logger})
		if err != nil {
			return flywheel.EvalResult{}, flywheel.Permanent(fmt.Errorf("evaluate %s: judge: %w", req.Target.Model, err))
		}
		judge = NewJudge(jc, req.Judge.Model, r.opts.JudgePrompts)
	}
	sampling := r.opts.Sampling
	if s, ok := r.opts.SamplingByModel[req.Target.Model]; ok {
		sampling = s
	}
	sampling = sampling.with(req.Sampling)
	w := &worker{r: r, client: client, judge: judge, req: req, sampling: sampling}

	started := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job, r.opts.Concurrency)
	results := make(chan outcome, r.opts.Concurrency)
	readErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		readErr <- readJobs(ctx, path, req.Limit, jobs)
	}()
	var wg sync.WaitGroup
	for range r.opts.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				select {
				case results <- w.process(ctx, j):
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	agg := newAggregate(total, r.opts.ItemSink == nil)
	lastReport := time.Now()
	var sinkErr error
	for o := range results {
		if sinkErr != nil {
			continue
		}
		item := agg.add(o, req.EvaluationID)
		if r.opts.ItemSink != nil {
			if err := r.opts.ItemSink(ctx, item); err != nil {
				sinkErr = fmt.Errorf("store item %d: %w", o.index, err)
				cancel()
			}
		}
		if progress != nil && total > 0 && time.Since(lastReport) >= r.opts.ProgressInterval {
			lastReport = time.Now()
			progress(min(100*float64(agg.done)/float64(total), 99.9))
		}
	}
	if sinkErr != nil {
		return flywheel.EvalResult{}, sinkErr
	}
	if err := context.Cause(ctx); err != nil {
		return flywheel.EvalResult{}, fmt.Errorf("evaluate %s: %w", req.Target.Model, err)
	}
	if err := <-readErr; err != nil {
		return flywheel.EvalResult{}, err
	}
	res, err := agg.result(req, r.opts.Bootstrap)
	if err == nil {
		res.Summary.Concurrency = r.opts.Concurrency
		perHour := req.PricePerHour
		if perHour == 0 {
			perHour = r.opts.PricePerHourByModel[req.Target.Model]
		}
		agg.costs.price(&res.Summary, req.PricePer1KTokens, perHour, time.Since(started), r.opts.Prices)
	}
	if err != nil {
		return flywheel.EvalResult{}, fmt.Errorf("evaluate %s on %s: %w", req.Target.Model, path, err)
	}
	if progress != nil {
		progress(100)
	}
	r.logger.InfoContext(ctx, "Evaluation finished", slog.String("evaluation_id", req.EvaluationID),
		slog.String("model", req.Target.Model), slog.Int("items", res.Summary.Items), slog.Int("answered", res.Summary.Answered),
		slog.Int("errors", res.Summary.Errors), slog.Any("failures", res.Summary.Failures))
	return res, nil
}

// evalFile resolves a dataset path: a directory holding eval_data.jsonl,
// or the file itself.
func evalFile(path string) (string, error) {
	if path == "" {
		return "", flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "evaluation dataset has no local path"))
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", flywheel.Permanent(fmt.Errorf("open evaluation dataset: %w", err))
	}
	if st.IsDir() {
		path = filepath.Join(path, EvalFileName)
		if _, err := os.Stat(path); err != nil {
			return "", flywheel.Permanent(fmt.Errorf("open evaluation dataset: %w", err))
		}
	}
	return path, nil
}

// countRecords counts the non-blank lines of a file, up to limit (> 0).
func countRecords(path string, limit int) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, flywheel.Permanent(fmt.Errorf("open evaluation dataset: %w", err))
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	n, blank := 0, true
	for {
		k, err := f.Read(buf)
		for _, b := range buf[:k] {
			switch b {
			case '\n':
				if !blank {
					n++
				}
				blank = true
			case ' ', '\t', '\r':
			default:
				blank = false
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read evaluation dataset: %w", err)
		}
	}
	if !blank {
		n++
	}
	if limit > 0 {
		n = min(n, limit)
	}
	return n, nil
}

// readJobs streams the non-blank lines of path into jobs.
func readJobs(ctx context.Context, path string, limit int, jobs chan<- job) error {
	f, err := os.Open(path)
	if err != nil {
		return flywheel.Permanent(fmt.Errorf("open evaluation dataset: %w", err))
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	index := 0
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			if limit > 0 && index >= limit {
				return nil
			}
			select {
			case jobs <- job{index: index, line: line, data: b}:
				index++
			case <-ctx.Done():
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read evaluation dataset line %d: %w", line, err)
		}
	}
}

// worker evaluates items for one Evaluate call.
type worker struct {
	r        *Runner
	client   *openai.Client
	judge    *Judge
	req      flywheel.EvalRequest
	sampling Sampling
	tools    toolsCache
}

// process evaluates one record.
func (w *worker) process(ctx context.Context, j job) outcome {
	o := outcome{index: j.index, line: j.line}
	for i := range o.scores {
		o.scores[i] = float32(math.NaN())
	}
	rec, err := parseRecord(j.data, &w.tools)
	if err != nil {
		o.invalid, o.class, o.err = true, ClassInvalidRecord, fmt.Sprintf("line %d: %v", j.line, err)
		return o
	}
	tooling := w.req.WorkloadType == flywheel.WorkloadToolCalling ||
		(w.req.WorkloadType == "" && (len(rec.tools) > 0 || len(rec.refCalls) > 0))
	if tooling {
		o.tool = rec.toolName()
	}
	body, err := buildBody(rec.req, w.req.Target.Model, w.sampling)
	if err != nil {
		o.invalid, o.class, o.err = true, ClassInvalidRecord, fmt.Sprintf("line %d: %v", j.line, err)
		return o
	}
	if w.r.opts.IncludeRequests {
		o.request = body
	}
	o.reference = w.compact(rec.ref)
	if u := rec.refUsage; u != nil {
		o.refUsage, o.refPrompt, o.refComplete = true, int32(u.PromptTokens), int32(u.CompletionTokens)
	}
	resp, err := w.client.ChatRaw(ctx, body)
	if err != nil {
		// A failed request scores 0 like any wrong answer (a server that
		// refuses the model's own output says the model answered wrongly),
		// and is counted by class so the summary says how many failed.
		o.failure, o.class = classifyFailure(err)
		o.err = fmt.Sprintf("line %d: %v", j.line, err)
		o.permanent = errors.Is(err, flywheel.ErrPermanent)
		failedScores(&o.scores, tooling)
		return o
	}
	o.latencyMS = float32(resp.Latency.Seconds() * 1000)
	if resp.Streamed && resp.TimeToFirstToken > 0 {
		o.ttftMS = float32(resp.TimeToFirstToken.Seconds() * 1000)
	}
	if resp.Usage != nil {
		o.usage = true
		o.prompt, o.complete = int32(resp.Usage.PromptTokens), int32(resp.Usage.CompletionTokens)
	}
	if resp.Timings != nil {
		o.computed, o.computeMS = true, float32(resp.Timings.ComputeMS())
	}
	pred := resp.FirstMessage()
	o.pred = w.compact(pred)
	if tooling {
		w.scoreTools(ctx, rec, pred, &o)
	} else {
		w.scoreText(ctx, rec, pred, &o)
	}
	return o
}

func (w *worker) scoreTools(ctx context.Context, rec *parsedRecord, pred openai.Message, o *outcome) {
	calls := ParseCalls(pred.ToolCalls)
	answer, ok := w.r.opts.Answers[rec.responseID]
	if !ok {
		answer = w.r.opts.ToolCallChecker.AnswerFromCalls(rec.tools, rec.refCalls)
	}
	if ch := toolScores(&o.scores, w.r.opts.ToolCallChecker, rec.tools, rec.refCalls, answer, calls); !ch.Valid {
		o.class, o.err = ch.Class, ch.Detail
	}
	if w.judge != nil {
		o.judged = true
		v, err := w.judge.ToolCallingCorrectness(ctx, string(callsJSON(rec.ref.ToolCalls)), string(callsJSON(pred.ToolCalls)))
		if err != nil {
			o.judgeFailed, o.judgeErr = true, fmt.Sprintf("line %d: judge: %v", o.line, err)
			return
		}
		o.scores[mToolJudge] = float32(v)
	}
}

func (w *worker) scoreText(ctx context.Context, rec *parsedRecord, pred openai.Message, o *outcome) {
	s := ScoreText(pred.Content, rec.ref.Content)
	o.scores[mExact], o.scores[mTokenF1], o.scores[mRougeL] = float32(s.ExactMatch), float32(s.TokenF1), float32(s.RougeL)
	if w.judge != nil {
		o.judged = true
		v, err := w.judge.Similarity(ctx, conversationText(get(rec.req, "messages")), rec.ref.Content, pred.Content)
		if err != nil {
			o.judgeFailed, o.judgeErr = true, fmt.Sprintf("line %d: judge: %v", o.line, err)
			return
		}
		o.scores[mSimilarity] = float32(v)
	}
}

// conversationText renders messages as "role: content" lines for the judge.
func conversationText(raw json.RawMessage) string {
	var msgs []openai.Message
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return string(raw)
	}
	var sb strings.Builder
	for _, m := range msgs {
		sb.WriteString(m.Role)
		sb.WriteString(": ")
		sb.WriteString(m.Content)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// callsJSON renders tool calls as [{"name", "arguments"}].
func callsJSON(tcs []openai.ToolCall) []byte {
	return appendCalls(nil, tcs)
}

func appendCalls(b []byte, tcs []openai.ToolCall) []byte {
	b = append(b, '[')
	for i, tc := range tcs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, tc.Function.Name)
		b = append(b, `,"arguments":`...)
		b = appendJSONString(b, tc.Function.Arguments)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced with U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s { // an invalid byte comes as utf8.RuneError (U+FFFD)
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// compact renders a message as the stored prediction or reference:
// {"content", "tool_calls"}, cut to MaxItemBytes.
func (w *worker) compact(m openai.Message) json.RawMessage {
	b := make([]byte, 0, 64+len(m.Content))
	b = append(b, '{')
	if m.Content != "" {
		b = append(b, `"content":`...)
		b = appendJSONString(b, m.Content)
	}
	if len(m.ToolCalls) > 0 {
		if m.Content != "" {
			b = append(b, ',')
		}
		b = append(b, `"tool_calls":`...)
		b = appendCalls(b, m.ToolCalls)
	}
	b = append(b, '}')
	limit := w.r.opts.MaxItemBytes
	if limit < 0 || len(b) <= limit {
		return b
	}
	cut := strings.ToValidUTF8(string(b[:limit]), "")
	tb := append([]byte(`{"truncated":true,"text":`), appendJSONString(nil, cut)...)
	return append(tb, '}')
}

// buildBody makes the replayed request: the logged request with the
// target model, sampling overrides, streaming as asked, and tool-call
// arguments in earlier assistant messages turned into JSON strings.
// Members keep their logged order; replaced ones are written at the end.
func buildBody(req []member, model string, s Sampling) ([]byte, error) {
	var over []member
	add := func(k string, v any) {
		b, _ := json.Marshal(v)
		over = append(over, member{key: k, val: b})
	}
	add("model", model)
	if s.Stream {
		over = append(over, member{key: "stream", val: []byte("true")},
			member{key: "stream_options", val: []byte(`{"include_usage":true}`)})
	}
	if s.Temperature != nil {
		add("temperature", *s.Temperature)
	}
	if s.TopP != nil {
		add("top_p", *s.TopP)
	}
	if s.MaxTokens != nil {
		add("max_tokens", *s.MaxTokens)
	}
	if s.Seed != nil {
		add("seed", *s.Seed)
	}
	for _, k := range sortedKeys(s.Extra) {
		over = append(over, member{key: k, val: s.Extra[k]})
	}
	replaced := func(k string) bool {
		if k == "stream" || k == "stream_options" {
			return true
		}
		for _, o := range over {
			if o.key == k {
				return true
			}
		}
		return false
	}
	size := 64
	for _, m := range req {
		size += len(m.key) + len(m.val) + 4
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteByte('{')
	n := 0
	write := func(k string, v []byte) {
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
	}
	for _, m := range req {
		if replaced(m.key) {
			continue
		}
		v := m.val
		if m.key == "messages" && bytes.Contains(v, []byte(`"tool_calls"`)) {
			fixed, err := stringifyHistoryArgs(v)
			if err != nil {
				return nil, err
			}
			v = fixed
		}
		write(m.key, v)
	}
	for _, o := range over {
		write(o.key, o.val)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// stringifyHistoryArgs turns object-valued tool-call arguments of logged
// messages into JSON strings, as the API expects.
func stringifyHistoryArgs(raw json.RawMessage) (json.RawMessage, error) {
	var msgs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, fmt.Errorf("decode request.messages: %w", err)
	}
	changed := false
	for _, m := range msgs {
		tcRaw, ok := m["tool_calls"]
		if !ok {
			continue
		}
		var tcs []map[string]json.RawMessage
		if json.Unmarshal(tcRaw, &tcs) != nil {
			continue
		}
		for _, tc := range tcs {
			var fn map[string]json.RawMessage
			if json.Unmarshal(tc["function"], &fn) != nil {
				continue
			}
			args := bytes.TrimSpace(fn["arguments"])
			if len(args) > 0 && args[0] == '{' {
				s, _ := json.Marshal(string(args))
				fn["arguments"] = s
				tc["function"], _ = json.Marshal(fn)
				changed = true
			}
		}
		m["tool_calls"], _ = json.Marshal(tcs)
	}
	if !changed {
		return raw, nil
	}
	return json.Marshal(msgs)
}

// aggregate accumulates outcomes compactly.
type aggregate struct {
	total       int
	done        int
	keepItems   bool
	items       []flywheel.ItemResult
	scores      [numMetrics][]float32
	perTool     map[string][]float32
	latencies   []float64
	ttfts       []float64
	prompt      int64
	completion  int64
	tokensN     int
	costs       costFigures
	answered    int
	invalid     int
	failures    flywheel.FailureCounts
	permanent   int
	first       firstMessage // of the first failed item
	firstJudge  firstMessage // of the first item whose judge call failed
	judgeCalls  int
	judgeFailed int
	firstBad    string
	classes     map[string]int
}

// firstMessage keeps the message of the lowest-indexed item offered, so
// the summary names the same error whatever order items finish in.
type firstMessage struct {
	index int
	msg   string
}

func (f *firstMessage) offer(index int, msg string) {
	if f.msg == "" || index < f.index {
		f.index, f.msg = index, msg
	}
}

func newAggregate(total int, keepItems bool) *aggregate {
	a := &aggregate{total: total, keepItems: keepItems, perTool: map[string][]float32{}, classes: map[string]int{}}
	for i := range a.scores {
		a.scores[i] = make([]float32, 0, total)
	}
	a.latencies = make([]float64, 0, total)
	if keepItems {
		a.items = make([]flywheel.ItemResult, 0, total)
	}
	return a
}

// add records one outcome and returns its item result.
func (a *aggregate) add(o outcome, evaluationID string) flywheel.ItemResult {
	a.done++
	item := flywheel.ItemResult{EvaluationID: evaluationID, Index: o.index, Tool: o.tool, Request: o.request,
		Reference: o.reference, Prediction: o.pred, ErrorClass: o.class, Error: o.err,
		LatencyMS: float64(o.latencyMS), PromptTokens: int(o.prompt), CompletionTokens: int(o.complete)}
	if o.class != "" {
		a.classes[o.class]++
	}
	if o.judged {
		a.judgeCalls++
	}
	if o.judgeFailed {
		a.classes[ClassJudgeFailed]++
		a.judgeFailed++
		a.firstJudge.offer(o.index, o.judgeErr)
	}
	switch {
	case o.invalid:
		a.invalid++
		if a.firstBad == "" {
			a.firstBad = o.err
		}
	case o.failure != noFailure:
		switch o.failure {
		case failServer:
			a.failures.ServerError++
		case failTimeout:
			a.failures.Timeout++
		case failUnparseable:
			a.failures.Unparseable++
		default:
			a.failures.Connection++
		}
		a.first.offer(o.index, o.err)
		if o.permanent {
			a.permanent++
		}
	default:
		a.answered++
		a.latencies = append(a.latencies, float64(o.latencyMS))
		if o.ttftMS > 0 {
			a.ttfts = append(a.ttfts, float64(o.ttftMS))
		}
		if o.usage {
			a.tokensN++
			a.prompt += int64(o.prompt)
			a.completion += int64(o.complete)
		}
	}
	if !o.invalid {
		a.costs.add(o)
		item.Scores = make(map[string]float64, 8)
		for m, v := range o.scores {
			a.scores[m] = append(a.scores[m], v)
			if !math.IsNaN(float64(v)) && metric(m).perItem() {
				item.Scores[metric(m).key()] = float64(v)
			}
		}
		if o.tool != "" {
			a.perTool[o.tool] = append(a.perTool[o.tool], o.scores[mNameAndArgs])
		}
	}
	if a.keepItems {
		a.items = append(a.items, item)
	}
	return item
}

// result computes the scores and summary.
func (a *aggregate) result(req flywheel.EvalRequest, boot Bootstrap) (flywheel.EvalResult, error) {
	if a.done == 0 {
		return flywheel.EvalResult{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "evaluation dataset has no records"))
	}
	if a.invalid == a.done {
		return flywheel.EvalResult{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID,
			"evaluation dataset has no valid record (%d invalid; first: %s)", a.invalid, a.firstBad))
	}
	if failed := a.failures.Total(); a.answered == 0 && a.failures.Connection == failed {
		// No request reached a server: the endpoint is down, which says
		// nothing about the model. (A server that answered every request
		// with an error, or timed out, is measured and reported.)
		err := fmt.Errorf("all %d requests failed; first: %s", failed, a.first.msg)
		if a.permanent == failed {
			err = flywheel.Permanent(err)
		}
		return flywheel.EvalResult{}, err
	}
	res := flywheel.EvalResult{Scores: map[string]float64{}, Details: map[string]flywheel.ScoreDetail{}}
	vals := make([]float64, 0, a.done)
	for m := range numMetrics {
		vals = vals[:0]
		for _, v := range a.scores[m] {
			vals = append(vals, float64(v))
		}
		d := Describe(vals, boot)
		if d.N == 0 {
			continue // not run for this workload (or no judge): absent, not zero
		}
		res.Scores[m.key()] = d.Mean
		res.Details[m.key()] = d
	}
	s := flywheel.EvalSummary{Items: a.done - a.invalid, Answered: a.answered, Errors: a.invalid + a.failures.Total(),
		Failures: a.failures, FirstError: a.first.msg, JudgeCalls: a.judgeCalls, JudgeFailures: a.judgeFailed,
		FirstJudgeError: a.firstJudge.msg, ErrorClasses: a.classes}
	// Latency and tokens are over the answered items only: a failed
	// request has neither, and counting it as 0 ms would flatter the model.
	if s.LatencyN = len(a.latencies); s.LatencyN > 0 {
		p := Percentiles(a.latencies, 0.5, 0.95)
		s.LatencyP50MS, s.LatencyP95MS = &p[0], &p[1]
	}
	if len(a.ttfts) > 0 {
		s.TTFTP50MS = Percentiles(a.ttfts, 0.5)[0]
	}
	if s.TokensN = a.tokensN; s.TokensN > 0 {
		pt, ct := float64(a.prompt)/float64(a.tokensN), float64(a.completion)/float64(a.tokensN)
		s.PromptTokens, s.CompletionTokens = &pt, &ct
	}
	if len(a.perTool) > 0 {
		s.PerTool = make(map[string]flywheel.ScoreDetail, len(a.perTool))
		for tool, v := range a.perTool {
			vals = vals[:0]
			for _, x := range v {
				vals = append(vals, float64(x))
			}
			s.PerTool[tool] = Describe(vals, boot)
		}
	}
	res.Summary = s
	if a.keepItems {
		slices.SortFunc(a.items, func(x, y flywheel.ItemResult) int { return x.Index - y.Index })
		res.Items = a.items
	}
	return res, nil
}
