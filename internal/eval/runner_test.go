package eval_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bfclDir writes the generated tool-calling corpus (BFCL's four categories
// and their answers) into a temporary directory of tb and returns it.
func bfclDir(tb testing.TB) string {
	tb.Helper()
	return testcorpus.BFCLDir(tb)
}

// logged maps a request (last user message + tools) to its logged answer.
type logged struct {
	answers map[string]openai.Message
	n       int
}

func replayKey(user string, tools []byte) string {
	var buf bytes.Buffer
	if len(tools) > 0 {
		_ = json.Compact(&buf, tools)
	}
	return user + "\x00" + buf.String()
}

// loadLogged reads a log file and indexes its answers.
func loadLogged(t testing.TB, path string) *logged {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	l := &logged{answers: map[string]openai.Message{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec struct {
			Request struct {
				Messages []openai.Message `json:"messages"`
				Tools    json.RawMessage  `json:"tools"`
			} `json:"request"`
			Response openai.ChatResponse `json:"response"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		call := openaitest.ChatCall{Messages: rec.Request.Messages}
		l.answers[replayKey(call.LastUserContent(), rec.Request.Tools)] = rec.Response.Choices[0].Message
		l.n++
	}
	require.NoError(t, sc.Err())
	return l
}

// policy answers each request with its logged answer, passing it through
// change (when not nil) first.
func (l *logged) policy(t testing.TB, change func(n int64, m openai.Message) openai.Message) openaitest.ChatFunc {
	return func(c openaitest.ChatCall) openaitest.Reply {
		m, ok := l.answers[replayKey(c.LastUserContent(), c.Tools)]
		if !ok {
			t.Errorf("request %d has no logged answer", c.N)
			return openaitest.Reply{Status: 500}
		}
		if change != nil {
			m = change(c.N, m)
		}
		return openaitest.Reply{Message: m}
	}
}

// loadAnswers reads the answers of one log file of dir, keyed by response id.
func loadAnswers(t *testing.T, dir, name string) map[string]eval.Answer {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name+".answers.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	a, err := eval.LoadAnswers(f)
	require.NoError(t, err)
	out := make(map[string]eval.Answer, len(a))
	for id, ans := range a {
		out["chatcmpl-"+id] = ans
	}
	return out
}

type runBundle struct {
	srv    *openaitest.Server
	runner *eval.Runner
	req    flywheel.EvalRequest
}

func setupRun(t *testing.T, srvOpts openaitest.Options, opts eval.Options, dataset string) *runBundle {
	t.Helper()
	srv := openaitest.New(srvOpts)
	t.Cleanup(srv.Close)
	tr := openai.NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	opts.HTTPClient = cmpClient(opts.HTTPClient, tr)
	opts.RetryBaseDelay = time.Millisecond
	opts.Logger = nil
	return &runBundle{
		srv:    srv,
		runner: eval.NewRunner(opts),
		req: flywheel.EvalRequest{EvaluationID: "ev-1", EvalType: flywheel.EvalBase, WorkloadType: flywheel.WorkloadToolCalling,
			Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "candidate"}, Dataset: flywheel.Dataset{Path: dataset},
			PricePer1KTokens: 0.002},
	}
}

func cmpClient(c *http.Client, tr *http.Transport) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Transport: tr}
}

func TestRunnerReplaysGroundTruth(t *testing.T) {
	t.Parallel()

	for _, corpus := range testcorpus.Dirs(t) {
		for _, name := range []string{"simple", "multiple", "parallel", "parallel_multiple"} {
			for _, stream := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/stream=%v", corpus.Name, name, stream), func(t *testing.T) {
					t.Parallel()
					testRunnerReplaysGroundTruth(t, corpus.Dir, name, stream)
				})
			}
		}
	}
}

func testRunnerReplaysGroundTruth(t *testing.T, dir, name string, stream bool) {
	path := filepath.Join(dir, name+".jsonl")
	l := loadLogged(t, path)
	b := setupRun(t, openaitest.Options{Chat: l.policy(t, nil)},
		eval.Options{Concurrency: 8, Answers: loadAnswers(t, dir, name), Sampling: eval.Sampling{Stream: stream}}, path)
	var mu sync.Mutex
	var reports []float64
	res, err := b.runner.Evaluate(context.Background(), b.req, func(p float64) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, p)
	})
	require.NoError(t, err)
	require.Equal(t, l.n, b.srv.Count("/v1/chat/completions"))
	require.LessOrEqual(t, b.srv.MaxInFlight(), 8, "bounded concurrency")
	require.Equal(t, l.n, res.Summary.Items)
	require.Zero(t, res.Summary.Errors)
	for _, k := range []string{flywheel.ScoreFunctionName, flywheel.ScoreFunctionNameAndArgs, eval.ScoreToolCallPrecision,
		eval.ScoreToolCallRecall, eval.ScoreToolCallF1, eval.ScoreToolArgPrecision, eval.ScoreToolArgRecall,
		eval.ScoreToolArgF1, eval.ScoreASTAccuracy} {
		require.Equal(t, 1.0, res.Scores[k], k)
		require.Equal(t, l.n, res.Details[k].N, k)
		require.Equal(t, 1.0, res.Details[k].CILow, k)
	}
	require.NotContains(t, res.Scores, flywheel.ScoreToolCallingCorrectness, "no judge: not run")
	require.NotContains(t, res.Scores, flywheel.ScoreSimilarity)
	require.Len(t, res.Items, l.n)
	for i, it := range res.Items {
		require.Equal(t, i, it.Index)
		require.Empty(t, it.ErrorClass)
		require.JSONEq(t, string(it.Reference), string(it.Prediction))
		require.Positive(t, it.LatencyMS)
	}
	require.Equal(t, l.n, res.Summary.Answered)
	require.Zero(t, res.Summary.Failures.Total())
	require.Equal(t, l.n, res.Summary.LatencyN)
	require.Equal(t, 8, res.Summary.Concurrency, "the latency's load is stated")
	require.Positive(t, *res.Summary.LatencyP50MS)
	require.GreaterOrEqual(t, *res.Summary.LatencyP95MS, *res.Summary.LatencyP50MS)
	if stream {
		require.Positive(t, res.Summary.TTFTP50MS, "time to first token of streamed replies")
		require.LessOrEqual(t, res.Summary.TTFTP50MS, *res.Summary.LatencyP95MS)
	} else {
		require.Zero(t, res.Summary.TTFTP50MS, "no stream, no time to first token")
	}
	require.Equal(t, l.n, res.Summary.TokensN)
	require.Positive(t, *res.Summary.PromptTokens)
	require.InDelta(t, 0.002*(*res.Summary.PromptTokens+*res.Summary.CompletionTokens), res.Summary.CostPer1KReq, 1e-9)
	require.NotEmpty(t, res.Summary.PerTool)
	require.Equal(t, 100.0, reports[len(reports)-1])
}

func TestRunnerScoresPerturbedReplies(t *testing.T) {
	t.Parallel()

	dir := bfclDir(t)
	path := filepath.Join(dir, "simple.jsonl")
	l := loadLogged(t, path)
	// With one request at a time, request n is item n-1. Every fourth reply
	// calls a misspelt function, every fourth+1 adds an argument, every
	// fourth+2 makes no call.
	change := func(n int64, m openai.Message) openai.Message {
		k := n - 1
		tc := m.ToolCalls[0]
		switch k % 4 {
		case 0:
			tc.Function.Name += "_x"
		case 1:
			tc.Function.Arguments = strings.Replace(tc.Function.Arguments, "{", `{"zz_extra": true, `, 1)
		case 2:
			return openai.Message{Content: "I cannot help with that."}
		}
		m.ToolCalls = []openai.ToolCall{tc}
		return m
	}
	b := setupRun(t, openaitest.Options{Chat: l.policy(t, change)}, eval.Options{Concurrency: 1, Answers: loadAnswers(t, dir, "simple")}, path)
	res, err := b.runner.Evaluate(context.Background(), b.req, nil)
	require.NoError(t, err)
	counts := res.Summary.ErrorClasses
	q := l.n / 4
	require.Equal(t, q, counts[eval.ClassWrongName])
	require.Equal(t, q, counts[eval.ClassUnexpectedParam])
	require.Equal(t, q, counts[eval.ClassNoToolCall])
	require.InDelta(t, 0.5, res.Scores[flywheel.ScoreFunctionName], 1e-9)
	require.InDelta(t, 0.25, res.Scores[flywheel.ScoreFunctionNameAndArgs], 1e-9)
	require.InDelta(t, 0.25, res.Scores[eval.ScoreASTAccuracy], 1e-9)
	d := res.Details[flywheel.ScoreFunctionNameAndArgs]
	require.Less(t, d.CILow, 0.25)
	require.Greater(t, d.CIHigh, 0.25)
	require.Positive(t, d.StdErr)
}

func TestRunnerWithJudge(t *testing.T) {
	t.Parallel()

	judge := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
		if strings.Contains(c.Messages[0].Content, "function calls") {
			return openaitest.Reply{Message: openai.Message{Content: "RATING: 1\nEXPLANATION: same call"}}
		}
		return openaitest.Reply{Message: openai.Message{Content: "10"}}
	}})
	t.Cleanup(judge.Close)

	t.Run("ToolCalling", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(bfclDir(t), "multiple.jsonl")
		l := loadLogged(t, path)
		b := setupRun(t, openaitest.Options{Chat: l.policy(t, nil)}, eval.Options{}, path)
		b.req.Judge = &flywheel.Endpoint{BaseURL: judge.URL, Model: "judge"}
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, 1.0, res.Scores[flywheel.ScoreToolCallingCorrectness])
		require.Equal(t, l.n, res.Details[flywheel.ScoreToolCallingCorrectness].N)
	})

	t.Run("UnparsableJudgeIsAbsentNotZero", func(t *testing.T) {
		t.Parallel()
		mute := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
			if c.N%2 == 0 {
				return openaitest.Reply{Status: 400} // a judge that refuses
			}
			return openaitest.Reply{Message: openai.Message{Content: "I would rather not say."}}
		}})
		t.Cleanup(mute.Close)
		path := writeGeneric(t, []genericRec{{"a", "a"}, {"b", "b"}, {"c", "c"}})
		b := setupRun(t, openaitest.Options{}, eval.Options{Concurrency: 1}, path)
		b.req.WorkloadType = flywheel.WorkloadGeneric
		b.req.Judge = &flywheel.Endpoint{BaseURL: mute.URL, Model: "judge"}
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.NotContains(t, res.Scores, flywheel.ScoreSimilarity)
		require.Equal(t, 3, res.Summary.ErrorClasses[eval.ClassJudgeFailed])
		require.Equal(t, 3, res.Summary.JudgeCalls)
		require.Equal(t, 3, res.Summary.JudgeFailures)
		require.Contains(t, res.Summary.FirstJudgeError, "line 1: judge:", "the first item's judge error")
		require.Zero(t, res.Summary.Failures.Total(), "the candidate answered every item")
		require.Equal(t, 1.0, res.Scores[eval.ScoreExactMatch])
		for _, it := range res.Items {
			require.NotContains(t, it.Scores, flywheel.ScoreSimilarity)
		}
	})

	t.Run("Generic", func(t *testing.T) {
		t.Parallel()
		path := writeGeneric(t, []genericRec{{"What is 2+2?", "4"}, {"Capital of France?", "Paris is the capital."}, {"Say hi", "hi"}})
		b := setupRun(t, openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
			answers := map[string]string{"What is 2+2?": "4", "Capital of France?": "The capital is Paris.", "Say hi": "bye"}
			return openaitest.Reply{Message: openai.Message{Content: answers[c.LastUserContent()]}}
		}}, eval.Options{}, path)
		b.req.WorkloadType = flywheel.WorkloadGeneric
		b.req.Judge = &flywheel.Endpoint{BaseURL: judge.URL, Model: "judge"}
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, 10.0, res.Scores[flywheel.ScoreSimilarity], "a judge reply of 10 is ten")
		require.InDelta(t, 1.0/3, res.Scores[eval.ScoreExactMatch], 1e-9)
		require.NotContains(t, res.Scores, flywheel.ScoreFunctionName)
		require.Less(t, res.Scores[eval.ScoreRougeL], 1.0)
		require.Greater(t, res.Scores[eval.ScoreRougeL], 1.0/3)
	})
}

type genericRec struct{ q, a string }

func writeGeneric(t *testing.T, recs []genericRec) string {
	t.Helper()
	var buf bytes.Buffer
	for i, r := range recs {
		b, err := json.Marshal(map[string]any{
			"workload_id": "w", "client_id": "c", "timestamp": 1700000000 + i,
			"request":  map[string]any{"model": "prod", "messages": []map[string]string{{"role": "user", "content": r.q}}},
			"response": map[string]any{"id": fmt.Sprint(i), "choices": []map[string]any{{"message": map[string]any{"role": "assistant", "content": r.a}}}},
		})
		require.NoError(t, err)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, eval.EvalFileName), buf.Bytes(), 0o600))
	return dir
}

func TestRunnerBadInputAndFailures(t *testing.T) {
	t.Parallel()

	t.Run("BadLinesReportedGoodKept", func(t *testing.T) {
		t.Parallel()
		dir := writeGeneric(t, []genericRec{{"a", "a"}, {"b", "b"}})
		path := filepath.Join(dir, eval.EvalFileName)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		lines := strings.SplitN(string(data), "\n", 2)
		bad := lines[0] + "\n{not json\n\n" + `{"request":{"messages":[]},"response":{"choices":[{"message":{"content":"x"}}]}}` + "\n" + lines[1]
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
		b := setupRun(t, openaitest.Options{}, eval.Options{}, path)
		b.req.WorkloadType = flywheel.WorkloadGeneric
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, 2, res.Summary.Items)
		require.Equal(t, 2, res.Summary.Errors)
		require.Equal(t, 2, res.Summary.ErrorClasses[eval.ClassInvalidRecord])
		require.Equal(t, 1.0, res.Scores[eval.ScoreExactMatch], "the echo server repeats the question, which is the answer here")
		require.Equal(t, 2, res.Details[eval.ScoreExactMatch].N)
		require.Contains(t, res.Items[1].Error, "line 2")
		require.Contains(t, res.Items[2].Error, "line 4: request.messages is missing or empty")
	})

	t.Run("NoValidRecord", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "x.jsonl")
		require.NoError(t, os.WriteFile(path, []byte("[1]\n"), 0o600))
		b := setupRun(t, openaitest.Options{}, eval.Options{}, path)
		_, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
		require.Contains(t, err.Error(), "line 1")
	})

	t.Run("MissingDataset", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t, openaitest.Options{}, eval.Options{}, filepath.Join(t.TempDir(), "nope"))
		_, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.ErrorIs(t, err, flywheel.ErrPermanent)
	})

	t.Run("TransientErrorsRetried", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(bfclDir(t), "parallel.jsonl")
		l := loadLogged(t, path)
		b := setupRun(t, openaitest.Options{Chat: l.policy(t, nil), ErrorRate: 0.2, ErrorStatus: 503, Seed: 7},
			eval.Options{MaxRetries: 10, Concurrency: 4}, path)
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, 1.0, res.Scores[flywheel.ScoreFunctionNameAndArgs])
		require.Zero(t, res.Summary.Errors)
		require.Greater(t, b.srv.Count("/v1/chat/completions"), l.n)
	})

	t.Run("PermanentFailuresScoreZero", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(bfclDir(t), "simple.jsonl")
		l := loadLogged(t, path)
		b := setupRun(t, openaitest.Options{Chat: l.policy(t, nil)}, eval.Options{Concurrency: 1}, path)
		b.srv.FailNext(40, 400, "")
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, 40, res.Summary.ErrorClasses[eval.ClassServerError])
		require.Equal(t, 40, res.Summary.Failures.ServerError)
		require.Equal(t, l.n-40, res.Summary.Answered)
		require.Equal(t, l.n-40, res.Summary.LatencyN, "latency over answered requests only")
		require.Contains(t, res.Summary.FirstError, "line 1:", "one request at a time: the first 40 items failed")
		require.Contains(t, res.Summary.FirstError, "status 400")
		require.InDelta(t, float64(l.n-40)/float64(l.n), res.Scores[flywheel.ScoreFunctionName], 1e-9)
	})

	t.Run("PricePerHour", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t, openaitest.Options{Latency: 20 * time.Millisecond}, eval.Options{Concurrency: 1,
			PricePerHourByModel: map[string]float64{"candidate": 3600}}, writeGeneric(t, []genericRec{{"a", "a"}, {"b", "b"}}))
		b.req.PricePer1KTokens = 0
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		// 3600 per hour is 1 per second; each request takes at least 20 ms,
		// so 1k requests cost at least 20.
		require.GreaterOrEqual(t, res.Summary.CostPer1KReq, 20.0)
		require.Less(t, res.Summary.CostPer1KReq, 1000.0)
	})

	t.Run("EveryRequestAnsweredWithAnError", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t, openaitest.Options{ErrorRate: 1, ErrorStatus: 500}, eval.Options{RetryBaseDelay: time.Millisecond},
			writeGeneric(t, []genericRec{{"a", "a"}, {"b", "b"}, {"c", "c"}}))
		b.req.WorkloadType = flywheel.WorkloadGeneric
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err, "a server that answers is measured, not retried as an outage")
		s := res.Summary
		require.Equal(t, 3, s.Items)
		require.Zero(t, s.Answered)
		require.Equal(t, 3, s.Errors)
		require.Equal(t, flywheel.FailureCounts{ServerError: 3}, s.Failures)
		require.Equal(t, 3, s.ErrorClasses[eval.ClassServerError])
		require.Zero(t, s.LatencyN)
		require.Nil(t, s.LatencyP50MS, "no percentile over no reply")
		require.Nil(t, s.LatencyP95MS)
		require.Zero(t, s.TokensN)
		require.Nil(t, s.PromptTokens)
		require.Nil(t, s.CompletionTokens)
		require.Zero(t, s.CostPer1KReq)
		require.Contains(t, s.FirstError, "line 1:")
		require.Contains(t, s.FirstError, "status 500: injected failure")
		require.Equal(t, 0.0, res.Scores[eval.ScoreExactMatch])
		b2, err := json.Marshal(s)
		require.NoError(t, err)
		require.Contains(t, string(b2), `"latency_p50_ms":null`)
		require.Contains(t, string(b2), `"failures":{"server_error":3,"timeout":0,"unparseable":0,"connection":0}`)
	})

	t.Run("Timeouts", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t, openaitest.Options{Latency: 2 * time.Second}, eval.Options{Timeout: 50 * time.Millisecond, MaxRetries: -1},
			writeGeneric(t, []genericRec{{"a", "a"}, {"b", "b"}}))
		b.req.WorkloadType = flywheel.WorkloadGeneric
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, flywheel.FailureCounts{Timeout: 2}, res.Summary.Failures)
		require.Equal(t, 2, res.Summary.ErrorClasses[eval.ClassTimeout])
		require.Nil(t, res.Summary.LatencyP50MS)
	})

	t.Run("UnparseableReplies", func(t *testing.T) {
		t.Parallel()
		b := setupRun(t, openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
			if c.LastUserContent() == "a" {
				return openaitest.Reply{Body: []byte(`{"choices": "not a list"}`)}
			}
			return openaitest.Reply{Message: openai.Message{Content: c.LastUserContent()}}
		}}, eval.Options{}, writeGeneric(t, []genericRec{{"a", "a"}, {"b", "b"}}))
		b.req.WorkloadType = flywheel.WorkloadGeneric
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Equal(t, flywheel.FailureCounts{Unparseable: 1}, res.Summary.Failures)
		require.Equal(t, 1, res.Summary.Answered)
		require.Equal(t, 1, res.Summary.LatencyN)
		require.Equal(t, 0.5, res.Scores[eval.ScoreExactMatch])
	})

	t.Run("NoServerReached", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close() // nothing listens there any more
		r := eval.NewRunner(eval.Options{MaxRetries: -1})
		_, err := r.Evaluate(context.Background(), flywheel.EvalRequest{EvaluationID: "e", WorkloadType: flywheel.WorkloadGeneric,
			Target: flywheel.Endpoint{BaseURL: url, Model: "m"}, Dataset: flywheel.Dataset{Path: writeGeneric(t, []genericRec{{"a", "a"}})}}, nil)
		require.Error(t, err)
		require.NotErrorIs(t, err, flywheel.ErrPermanent, "an endpoint that is down may come back: the stage is retried")
		require.Contains(t, err.Error(), "all 1 requests failed; first: line 1:")
	})

	t.Run("CancelStopsWithinASecond", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(bfclDir(t), "simple.jsonl")
		b := setupRun(t, openaitest.Options{Latency: 30 * time.Second}, eval.Options{Concurrency: 4}, path)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := b.runner.Evaluate(ctx, b.req, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 1200*time.Millisecond)
	})

	t.Run("LimitSinkAndSampling", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(bfclDir(t), "simple.jsonl")
		l := loadLogged(t, path)
		var bodies []string
		var mu sync.Mutex
		policy := l.policy(t, nil)
		b := setupRun(t, openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
			mu.Lock()
			bodies = append(bodies, string(c.Body))
			mu.Unlock()
			return policy(c)
		}}, eval.Options{
			Sampling:        eval.Sampling{Temperature: ptr(0.7)},
			SamplingByModel: map[string]eval.Sampling{"candidate": {Temperature: ptr(0.0), MaxTokens: ptr(64)}},
			ItemSink: func(_ context.Context, it flywheel.ItemResult) error {
				require.Equal(t, "ev-1", it.EvaluationID)
				return nil
			},
		}, path)
		b.req.Limit = 10
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		require.Empty(t, res.Items, "items went to the sink")
		require.Equal(t, 10, res.Summary.Items)
		require.Len(t, bodies, 10)
		for _, body := range bodies {
			require.Contains(t, body, `"model":"candidate"`)
			require.Contains(t, body, `"temperature":0,`)
			require.Contains(t, body, `"max_tokens":64`)
			require.Contains(t, body, `"tool_choice":"auto"`)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// A server that cannot parse the model's output (llama.cpp answers 500 for
// it) reports a wrong answer: the items score 0, the evaluation succeeds,
// and the requests are not retried.
func TestRunnerScoresUnparseableModelOutputAsWrong(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":500,"message":"The model produced output that does not match the expected peg-native format","type":"server_error"}}`))
	}))
	defer srv.Close()
	r := eval.NewRunner(eval.Options{Concurrency: 2, RetryBaseDelay: time.Millisecond})
	res, err := r.Evaluate(context.Background(), flywheel.EvalRequest{EvaluationID: "e", EvalType: flywheel.EvalBase,
		WorkloadType: flywheel.WorkloadToolCalling, Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "m"},
		Dataset: flywheel.Dataset{Path: filepath.Join(bfclDir(t), "simple.jsonl")}, Limit: 20}, nil)
	require.NoError(t, err)
	require.Equal(t, 0.0, res.Scores[flywheel.ScoreFunctionName])
	require.Equal(t, 20, res.Summary.ErrorClasses[eval.ClassInvalidOutput])
	require.Equal(t, flywheel.FailureCounts{ServerError: 20}, res.Summary.Failures, "counted as failed at the server")
	require.Zero(t, res.Summary.Answered)
	require.Nil(t, res.Summary.LatencyP50MS)
	require.Contains(t, res.Summary.FirstError, "does not match the expected")
	require.EqualValues(t, 20, calls.Load(), "no retries")
}

// A candidate's sampling overrides reach every replayed request.
func TestRunnerAppliesCandidateSampling(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`))
	}))
	defer srv.Close()
	temp, maxTokens := 0.7, 33
	r := eval.NewRunner(eval.Options{Concurrency: 2, RetryBaseDelay: time.Millisecond})
	_, err := r.Evaluate(context.Background(), flywheel.EvalRequest{EvaluationID: "e", EvalType: flywheel.EvalBase,
		WorkloadType: flywheel.WorkloadToolCalling, Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "cand"},
		Dataset: flywheel.Dataset{Path: filepath.Join(bfclDir(t), "simple.jsonl")}, Limit: 5,
		Sampling: &flywheel.SamplingConfig{Temperature: &temp, MaxTokens: &maxTokens}}, nil)
	require.NoError(t, err)
	require.Len(t, bodies, 5)
	for _, b := range bodies {
		require.Equal(t, "cand", b["model"])
		require.Equal(t, 0.7, b["temperature"])
		require.Equal(t, 33.0, b["max_tokens"])
	}
}

// A candidate priced by the GPU-hour gets a cost per 1k requests from the
// evaluation's wall time.
func TestRunnerPricesByTheHour(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`))
	}))
	defer srv.Close()
	r := eval.NewRunner(eval.Options{Concurrency: 1, RetryBaseDelay: time.Millisecond})
	req := flywheel.EvalRequest{EvaluationID: "e", EvalType: flywheel.EvalBase, WorkloadType: flywheel.WorkloadToolCalling,
		Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "cand"}, Dataset: flywheel.Dataset{Path: filepath.Join(bfclDir(t), "simple.jsonl")},
		Limit: 4, PricePerHour: 3.6}
	res, err := r.Evaluate(context.Background(), req, nil)
	require.NoError(t, err)
	// At 3.6 per hour, each request of at least 5 ms costs at least 0.000005: 0.005 per 1k.
	require.Greater(t, res.Summary.CostPer1KReq, 0.004)
	req.PricePer1KTokens = 0.002
	res, err = r.Evaluate(context.Background(), req, nil)
	require.NoError(t, err)
	require.InDelta(t, 0.002*12, res.Summary.CostPer1KReq, 1e-9, "per-token price wins: 10+2 tokens per request")
}
