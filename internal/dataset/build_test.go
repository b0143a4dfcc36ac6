package dataset

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

type testBundle struct {
	src     *memSource
	builder *Builder
	dir     string
}

func setup(t *testing.T, recs ...flywheel.LogRecord) *testBundle {
	t.Helper()
	src := &memSource{recs: recs}
	return &testBundle{
		src:     src,
		builder: &Builder{Source: src, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }},
		dir:     t.TempDir(),
	}
}

func (b *testBundle) request(split flywheel.DataSplitConfig, icl flywheel.ICLConfig) flywheel.BuildRequest {
	return flywheel.BuildRequest{RunID: "run1", WorkloadID: "w", ClientID: "c", Split: split, ICL: icl, Dir: b.dir, Timestamp: 1234}
}

// readJSONL reads a JSONL file into generic values.
func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var v map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "line %q", sc.Text())
		out = append(out, v)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestBuildCurates(t *testing.T) {
	t.Parallel()

	var recs []flywheel.LogRecord
	for i := range 30 {
		recs = append(recs, toolRec(i, fmt.Sprintf("question %d", i), fmt.Sprintf("tool%d", i%3), `{"x":1}`, 2))
	}
	recs = append(recs,
		textRec(100, "no tool here", "plain answer"),      // dropped: no tool calls
		toolRec(101, "bad args", "tool0", `{"x":`, 2),     // dropped: arguments
		toolRec(102, "too wide", "tool1", `{}`, 12),       // dropped: 12 > 8 properties
		toolRec(103, "question 5", "tool2", `{"x":2}`, 2), // duplicate of record 5 (newer: kept)
		flywheel.LogRecord{WorkloadID: "w", ClientID: "c", Request: json.RawMessage(`{}`), Response: json.RawMessage(`{}`)}, // invalid
		flywheel.LogRecord{WorkloadID: "w", ClientID: "other", Request: json.RawMessage(`{}`)},                              // other client
	)
	mm := func(i int, ts int64) flywheel.LogRecord { // multimodal duplicates
		r := toolRec(200+i, "", "tool0", `{}`, 1)
		r.Timestamp = time.Unix(ts, 0)
		r.Request = json.RawMessage(`{"messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:x"}}]}],"tools":[{"type":"function","function":{"name":"tool0"}}]}`)
		return r
	}
	recs = append(recs, mm(0, 1_700_000_500), mm(1, 1_700_000_400))
	b := setup(t, recs...)
	split := splitCfg(6, 0.25, 10, nil)
	split.MaxToolProperties = 8
	res, err := b.builder.Build(context.Background(), b.request(split, iclCfg(flywheel.SelectionUniform)))
	require.NoError(t, err)
	require.Equal(t, flywheel.WorkloadToolCalling, res.WorkloadType)
	require.Equal(t, flywheel.DataStats{
		Total: 37, InvalidFormat: 1, Filtered: 3, Deduplicated: 2, Selected: 31, Eval: 6, Train: 19, Val: 6,
		Leakage: &flywheel.LeakageStats{},
		Reasons: map[string]int{
			ReasonInvalidFormat + ":request.messages": 1, ReasonNoToolCalls: 1, ReasonInvalidArguments: 1,
			ReasonTooManyToolProperties: 1, ReasonDuplicate: 2,
		},
	}, res.Stats)
	require.Equal(t, 31, res.NumRecords)

	evalRecs := readJSONL(t, filepath.Join(b.dir, "flywheel-eval-w-1234", EvalFile))
	train := readJSONL(t, filepath.Join(b.dir, "flywheel-train-w-1234", TrainFile))
	val := readJSONL(t, filepath.Join(b.dir, "flywheel-train-w-1234", ValFile))
	require.Len(t, evalRecs, 6)
	require.Len(t, train, 19)
	require.Len(t, val, 6)
	var q5Args []any
	for _, line := range append(train, val...) {
		msgs := line["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		require.Equal(t, "assistant", last["role"])
		require.Equal(t, "", last["content"], "tool-calling answers have empty content")
		args := last["tool_calls"].([]any)[0].(map[string]any)["function"].(map[string]any)["arguments"]
		require.IsType(t, map[string]any{}, args, "arguments parsed to an object")
		require.NotEmpty(t, line["tools"])
		if msgs[1].(map[string]any)["content"] == "question 5" {
			q5Args = append(q5Args, args.(map[string]any)["x"])
		}
	}
	for _, line := range evalRecs {
		require.Equal(t, "w", line["workload_id"])
		msgs := line["request"].(map[string]any)["messages"].([]any)
		if msgs[1].(map[string]any)["content"] == "question 5" {
			calls := line["response"].(map[string]any)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["tool_calls"].([]any)
			q5Args = append(q5Args, calls[0].(map[string]any)["function"].(map[string]any)["arguments"].(map[string]any)["x"])
		}
	}
	require.Equal(t, []any{float64(2)}, q5Args, "one copy of the duplicate, the newer")

	t.Run("ParseFunctionArgumentsOff", func(t *testing.T) {
		t.Parallel()
		b := setup(t, recs...)
		split := splitCfg(6, 0.25, 10, nil)
		split.ParseFunctionArguments = false
		res, err := b.builder.Build(context.Background(), b.request(split, iclCfg(flywheel.SelectionUniform)))
		require.NoError(t, err)
		require.Zero(t, res.Stats.Reasons[ReasonInvalidArguments])
		require.Zero(t, res.Stats.Reasons[ReasonTooManyToolProperties], "max_tool_properties 0 keeps every record")
		train := readJSONL(t, filepath.Join(b.dir, "flywheel-train-w-1234", TrainFile))
		msgs := train[0]["messages"].([]any)
		args := msgs[len(msgs)-1].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)["function"].(map[string]any)["arguments"]
		require.IsType(t, "", args, "arguments stay strings")
	})
}

func TestBuildGeneric(t *testing.T) {
	t.Parallel()
	var recs []flywheel.LogRecord
	for i := range 40 {
		recs = append(recs, textRec(i, fmt.Sprintf("tell me about topic %d", i), fmt.Sprintf("topic %d is nice", i)))
	}
	b := setup(t, recs...)
	res, err := b.builder.Build(context.Background(), b.request(splitCfg(10, 0.1, 20, ptr(25)), iclCfg(flywheel.SelectionUniform)))
	require.NoError(t, err)
	require.Equal(t, flywheel.WorkloadGeneric, res.WorkloadType)
	require.Equal(t, 40, res.Stats.Total, "asks the source for 2×limit")
	require.Equal(t, 25, res.Stats.Selected)
	require.Equal(t, []flywheel.Dataset{
		{Type: flywheel.DatasetBase, Name: "flywheel-eval-w-1234", NumRecords: 10, Path: filepath.Join(b.dir, "flywheel-eval-w-1234")},
		{Type: flywheel.DatasetICL, Name: "flywheel-icl-w-1234", NumRecords: 10, Path: filepath.Join(b.dir, "flywheel-icl-w-1234")},
		{Type: flywheel.DatasetTrain, Name: "flywheel-train-w-1234", NumRecords: 13, Path: filepath.Join(b.dir, "flywheel-train-w-1234")},
	}, res.Datasets)
	train := readJSONL(t, filepath.Join(b.dir, "flywheel-train-w-1234", TrainFile))
	require.Len(t, train, 13)
	require.NotContains(t, train[0], "tools")
	msgs := train[0]["messages"].([]any)
	require.Contains(t, msgs[len(msgs)-1].(map[string]any)["content"], "is nice")

	icl := readJSONL(t, filepath.Join(b.dir, "flywheel-icl-w-1234", EvalFile))
	require.Len(t, icl, 10)
	for _, line := range icl {
		msgs := line["request"].(map[string]any)["messages"].([]any)
		sys := msgs[0].(map[string]any)
		require.Equal(t, "system", sys["role"])
		content := sys["content"].(string)
		require.True(t, strings.HasPrefix(content, DefaultSystemMessage+"\n\nFor example, if the conversation looks like this:\nuser: tell me about topic "))
		require.Equal(t, 3, strings.Count(content, "For example, if the conversation looks like this:"))
		require.Contains(t, content, "\nThen you'll respond with:\nassistant: topic ")
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()

	many := func(n int) []flywheel.LogRecord {
		var recs []flywheel.LogRecord
		for i := range n {
			recs = append(recs, textRec(i, fmt.Sprintf("q%d", i), "a"))
		}
		return recs
	}
	tests := []struct {
		name      string
		recs      []flywheel.LogRecord
		split     flywheel.DataSplitConfig
		wantCode  string
		wantParts []string
	}{
		{name: "TooFewRecords", recs: many(5), split: splitCfg(2, 0.1, 10, nil), wantCode: flywheel.EPRECONDITION,
			wantParts: []string{"found 5", "at least 10"}},
		{name: "TooFewAfterCuration", recs: append(many(6), many(6)...), split: splitCfg(2, 0.1, 10, nil), wantCode: flywheel.EPRECONDITION,
			wantParts: []string{"6 left", "at least 10", "total 12", "invalid format 0", "filtered 0", "duplicates 6"}},
		{name: "LimitBelowMinimum", recs: many(50), split: splitCfg(2, 0.1, 10, ptr(5)), wantCode: flywheel.EINVALID,
			wantParts: []string{"limit (5)", "min_total_records (10)"}},
		{name: "EvalSizeZero", recs: many(50), split: splitCfg(0, 0.1, 10, nil), wantCode: flywheel.EINVALID, wantParts: []string{"eval_size"}},
		{name: "ValRatioOne", recs: many(50), split: splitCfg(5, 1, 10, nil), wantCode: flywheel.EINVALID, wantParts: []string{"val_ratio"}},
		{name: "OneRecord", recs: many(1), split: splitCfg(1, 0, 0, nil), wantCode: flywheel.EPRECONDITION, wantParts: []string{"found 1", "at least 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.recs...)
			_, err := b.builder.Build(context.Background(), b.request(tt.split, iclCfg(flywheel.SelectionUniform)))
			require.Error(t, err)
			require.ErrorIs(t, err, flywheel.ErrPermanent)
			require.Equal(t, tt.wantCode, flywheel.ErrorCode(err))
			for _, p := range tt.wantParts {
				require.Contains(t, flywheel.ErrorMessage(err), p)
			}
		})
	}

	t.Run("SourceErrorIsNotPermanent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.src.err = errors.New("database is locked")
		_, err := b.builder.Build(context.Background(), b.request(splitCfg(2, 0.1, 10, nil), iclCfg(flywheel.SelectionUniform)))
		require.ErrorContains(t, err, "database is locked")
		require.NotErrorIs(t, err, flywheel.ErrPermanent)
	})

	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		b := setup(t, many(50)...)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := b.builder.Build(ctx, b.request(splitCfg(5, 0.1, 10, nil), iclCfg(flywheel.SelectionUniform)))
		require.ErrorIs(t, err, context.Canceled)
	})
}

// embedWords is a fake embedding: one dimension per word hash bucket, so
// texts sharing words are similar.
func embedWords(_, input string) []float32 {
	v := make([]float32, 64)
	for _, w := range words(input) {
		h := 0
		for _, c := range w {
			h = h*31 + int(c)
		}
		v[(h%64+64)%64]++
	}
	v[0] += 0.01
	return v
}

func TestBuildSemanticWithEmbeddings(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(openaitest.Options{Embed: embedWords})
	defer srv.Close()
	client, err := openai.New(openai.Config{BaseURL: srv.URL})
	require.NoError(t, err)

	var recs []flywheel.LogRecord
	topics := []string{"weather forecast city", "stock price ticker", "translate sentence language", "flight booking airport"}
	for i := range 40 {
		topic := topics[i%len(topics)]
		recs = append(recs, toolRec(i, fmt.Sprintf("%s number %d", topic, i), strings.Fields(topic)[0], `{"n":1}`, 2))
	}
	b := setup(t, recs...)
	b.builder.Embedder = &OpenAIEmbedder{Client: client, Model: "embed", BatchSize: 7}
	icl := iclCfg(flywheel.SelectionSemantic)
	icl.SimilarityConfig = &flywheel.SimilarityConfig{RelevanceRatio: 0.67}
	res, err := b.builder.Build(context.Background(), b.request(splitCfg(8, 0.1, 20, nil), icl))
	require.NoError(t, err)
	require.Equal(t, 8, res.Stats.Eval)
	require.Equal(t, (res.Stats.Train+6)/7+(res.Stats.Eval+6)/7, srv.Count("/v1/embeddings"), "batches of 7")

	checkRelevance(t, b.dir)
}

func TestBuildSemanticConfiguredEndpoint(t *testing.T) {
	t.Parallel()
	srv := openaitest.New(openaitest.Options{Embed: embedWords, APIKey: "emb-key"})
	defer srv.Close()
	var recs []flywheel.LogRecord
	topics := []string{"weather forecast city", "stock price ticker", "translate sentence language", "flight booking airport"}
	for i := range 40 {
		topic := topics[i%len(topics)]
		recs = append(recs, toolRec(i, fmt.Sprintf("%s number %d", topic, i), strings.Fields(topic)[0], `{"n":1}`, 2))
	}
	b := setup(t, recs...)
	icl := iclCfg(flywheel.SelectionSemantic)
	icl.SimilarityConfig = &flywheel.SimilarityConfig{RelevanceRatio: 0.67, EmbeddingNIMConfig: &flywheel.EmbeddingConfig{
		DeploymentType: "remote", URL: srv.URL + "/v1/embeddings", ModelName: "embed", APIKey: "emb-key",
	}}
	_, err := b.builder.Build(context.Background(), b.request(splitCfg(8, 0.1, 20, nil), icl))
	require.NoError(t, err)
	require.Equal(t, 2, srv.Count("/v1/embeddings"), "train and eval queries, one batch each")
	checkRelevance(t, b.dir)
}

func TestBuildSemanticLexicalFallback(t *testing.T) {
	t.Parallel()
	var recs []flywheel.LogRecord
	topics := []string{"weather forecast city", "stock price ticker", "translate sentence language", "flight booking airport"}
	for i := range 40 {
		topic := topics[i%len(topics)]
		recs = append(recs, toolRec(i, fmt.Sprintf("%s number %d", topic, i), strings.Fields(topic)[0], `{"n":1}`, 2))
	}
	b := setup(t, recs...)
	icl := iclCfg(flywheel.SelectionSemantic)
	icl.SimilarityConfig = &flywheel.SimilarityConfig{RelevanceRatio: 0.67}
	_, err := b.builder.Build(context.Background(), b.request(splitCfg(8, 0.1, 20, nil), icl))
	require.NoError(t, err)
	checkRelevance(t, b.dir)

	t.Run("WhenTheEmbedderFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, recs...)
		b.builder.Embedder = failingEmbedder{}
		_, err := b.builder.Build(context.Background(), b.request(splitCfg(8, 0.1, 20, nil), icl))
		require.NoError(t, err)
		checkRelevance(t, b.dir)
	})
}

type failingEmbedder struct{}

func (failingEmbedder) Embed(context.Context, []string, string) ([][]float32, error) {
	return nil, errors.New("embedding NIM is down")
}

// checkRelevance checks that the first (most relevant) few-shot example of
// every ICL record asks about the same topic as the record, and that with
// relevance_ratio 0.67 of 3 examples, the third covers another tool.
func checkRelevance(t *testing.T, dir string) {
	t.Helper()
	icl := readJSONL(t, filepath.Join(dir, "flywheel-icl-w-1234", EvalFile))
	require.Len(t, icl, 8)
	for _, line := range icl {
		msgs := line["request"].(map[string]any)["messages"].([]any)
		sys := msgs[0].(map[string]any)["content"].(string)
		query := msgs[1].(map[string]any)["content"].(string)
		topic := strings.Fields(query)[0]
		parts := strings.Split(sys, "For example, if the conversation looks like this:\n")
		require.Len(t, parts, 4, "three examples")
		require.Contains(t, parts[1], "user: "+topic, "most similar example first")
		require.Contains(t, parts[2], "user: "+topic)
		require.NotContains(t, parts[3], "user: "+topic, "coverage example shows another tool")
		require.True(t, strings.HasSuffix(sys, "\n\nbe brief"), "original system message kept at the end")
	}
}

func TestICLPlanner(t *testing.T) {
	t.Parallel()

	mk := func(recs ...flywheel.LogRecord) []*Record {
		var out []*Record
		for _, r := range recs {
			v, ferr := Validate(r)
			require.Nil(t, ferr)
			out = append(out, v)
		}
		return out
	}
	big := strings.Repeat("very long words ", 400)

	t.Run("SkipsExamplesThatDoNotFitAndTriesSmallerOnes", func(t *testing.T) {
		t.Parallel()
		train := mk(
			textRec(1, big, "a"), textRec(2, big+big, "b"), textRec(3, "short one", "c"), textRec(4, "short two", "d"),
		)
		eval := mk(textRec(9, "q", "a"))[0]
		cfg := iclCfg(flywheel.SelectionSemantic)
		p := newICLPlanner(cfg, flywheel.WorkloadGeneric, train)
		p.cfg.MaxContextLength = p.cfg.ReservedTokens + p.overhead + 300 // room for small examples only
		// A scorer that ranks the big ones first.
		p.scorer = fixedScorer{0.9, 0.8, 0.1, 0.05}
		require.Equal(t, []int{2, 3}, p.pick(eval, 0))
	})

	t.Run("UniformQuotasAndMinExamples", func(t *testing.T) {
		t.Parallel()
		var recs []flywheel.LogRecord
		for i := range 12 {
			recs = append(recs, toolRec(i, fmt.Sprintf("q%d", i), fmt.Sprintf("tool%d", i%4), `{}`, 1))
		}
		train := mk(recs...)
		eval := train[0]
		cfg := iclCfg(flywheel.SelectionUniform)
		p := newICLPlanner(cfg, flywheel.WorkloadToolCalling, train)
		picks := p.pick(eval, 0)
		require.Len(t, picks, 3)
		tools := map[string]bool{}
		for _, i := range picks {
			tools[train[i].ToolName()] = true
		}
		require.Len(t, tools, 3, "one example per tool for the first three tools")

		// No room at all: nothing, even with min_examples.
		p.cfg.MaxContextLength = p.cfg.ReservedTokens
		require.Empty(t, p.pick(eval, 0))
	})

	t.Run("MinExamplesFillsBeyondQuotas", func(t *testing.T) {
		t.Parallel()
		var recs []flywheel.LogRecord
		for i := range 10 {
			recs = append(recs, toolRec(i, fmt.Sprintf("q%d", i), fmt.Sprintf("tool%d", i), `{}`, 1))
		}
		train := mk(recs...)
		cfg := iclCfg(flywheel.SelectionUniform)
		cfg.MaxExamples, cfg.MinExamples = 4, 4
		p := newICLPlanner(cfg, flywheel.WorkloadToolCalling, train)
		// Ten tools for four slots: quotas 1,1,1,1,0,…; make two of the
		// quota'd examples too big by shrinking the budget around them.
		require.Len(t, p.pick(train[0], 0), 4)
	})
}

type fixedScorer []float32

func (f fixedScorer) scores(int) []float32 { return f }

func TestName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "flywheel-eval-my-app_1.x-5", Name("eval", "my app_1.x", 5))
	require.Equal(t, "flywheel-train-a-b-c-7", Name("train", "a/b:c", 7))
}

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0, EstimateTokens(""))
	require.Equal(t, 1, EstimateTokens("hi"))
	require.Equal(t, 343, EstimateTokens(strings.Repeat("x", 1000)))
}

// TestBuildBFCL builds datasets from every BFCL file and checks the split
// and ICL invariants.
// It runs on the generated corpus and, when FLYWHEEL_BFCL_DIR names one,
// on that corpus too.
func TestBuildBFCL(t *testing.T) {
	t.Parallel()
	for _, corpus := range testcorpus.Dirs(t) {
		t.Run(corpus.Name, func(t *testing.T) {
			t.Parallel()
			testBuildBFCL(t, corpus.Dir)
		})
	}
}

func testBuildBFCL(t *testing.T, bfclDir string) {
	files, err := filepath.Glob(filepath.Join(bfclDir, "*.jsonl"))
	require.NoError(t, err)
	var logs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".answers.jsonl") {
			logs = append(logs, f)
		}
	}
	require.Len(t, logs, 4, "BFCL files in %s", bfclDir)
	for _, f := range logs {
		for _, sel := range []string{flywheel.SelectionUniform, flywheel.SelectionSemantic} {
			t.Run(filepath.Base(f)+"/"+sel, func(t *testing.T) {
				t.Parallel()
				src := &memSource{}
				in, err := os.Open(f)
				require.NoError(t, err)
				defer in.Close()
				sum, err := ingest.Load(context.Background(), in, ingest.Options{}, src, nil)
				require.NoError(t, err)
				require.Zero(t, sum.Rejected)
				workload := src.recs[0].WorkloadID

				dir := t.TempDir()
				split := flywheel.DataSplitConfig{EvalSize: 40, ValRatio: 0.15, MinTotalRecords: 50, RandomSeed: ptr(int64(7)), Limit: ptr(150), ParseFunctionArguments: true}
				icl := flywheel.ICLConfig{MaxContextLength: 8192, ReservedTokens: 2048, MaxExamples: 3, MinExamples: 1, ExampleSelection: sel}
				builder := &Builder{Source: src}
				res, err := builder.Build(context.Background(), flywheel.BuildRequest{WorkloadID: workload, ClientID: "bfcl", Split: split, ICL: icl, Dir: dir, Timestamp: 99})
				require.NoError(t, err)
				require.Equal(t, flywheel.WorkloadToolCalling, res.WorkloadType)
				st := res.Stats
				require.Equal(t, min(sum.Loaded, 300), st.Total, "reads the newest 2×limit")
				require.Equal(t, 150, st.Selected)
				require.Equal(t, 40, st.Eval)
				rest := 150 - 40
				wantVal := int(float64(rest)*0.15 + 0.5)
				require.Equal(t, wantVal, st.Val)
				require.Equal(t, rest-wantVal, st.Train)

				evalPath := filepath.Join(dir, Name("eval", workload, 99), EvalFile)
				iclPath := filepath.Join(dir, Name("icl", workload, 99), EvalFile)
				trainPath := filepath.Join(dir, Name("train", workload, 99), TrainFile)
				valPath := filepath.Join(dir, Name("train", workload, 99), ValFile)
				evalRecs, iclRecs := readJSONL(t, evalPath), readJSONL(t, iclPath)
				trainRecs, valRecs := readJSONL(t, trainPath), readJSONL(t, valPath)
				require.Len(t, evalRecs, st.Eval)
				require.Len(t, iclRecs, st.Eval)
				require.Len(t, trainRecs, st.Train)
				require.Len(t, valRecs, st.Val)

				// No record in two splits (user queries are unique after dedup).
				queryOf := func(msgs []any) string {
					for i := len(msgs) - 1; i >= 0; i-- {
						m := msgs[i].(map[string]any)
						if m["role"] == "user" {
							return m["content"].(string)
						}
					}
					t.Fatal("no user message")
					return ""
				}
				owner := map[string]string{}
				add := func(set, q string) {
					prev, dup := owner[q]
					require.False(t, dup, "query %q in %s and %s", q, prev, set)
					owner[q] = set
				}
				for _, r := range evalRecs {
					add("eval", queryOf(r["request"].(map[string]any)["messages"].([]any)))
				}
				for _, r := range trainRecs {
					add("train", queryOf(r["messages"].([]any)))
				}
				for _, r := range valRecs {
					add("val", queryOf(r["messages"].([]any)))
				}
				require.Len(t, owner, 150)

				// Every ICL example comes from train.
				withExamples := 0
				for i, r := range iclRecs {
					msgs := r["request"].(map[string]any)["messages"].([]any)
					require.Equal(t, queryOf(evalRecs[i]["request"].(map[string]any)["messages"].([]any)), queryOf(msgs), "ICL record %d is eval record %d", i, i)
					sys := msgs[0].(map[string]any)
					require.Equal(t, "system", sys["role"])
					parts := strings.Split(sys["content"].(string), "For example, if the conversation looks like this:\n")
					require.LessOrEqual(t, len(parts)-1, 3)
					if len(parts) > 1 {
						withExamples++
					}
					for _, ex := range parts[1:] {
						q := strings.TrimPrefix(strings.SplitN(ex, "\n\n\nThen you'll respond with:", 2)[0], "user: ")
						require.Equal(t, "train", owner[q], "ICL example %q of eval record %d", q, i)
					}
					// The response (ground truth) is the eval record's.
					require.Equal(t, evalRecs[i]["response"], r["response"])
				}
				require.Equal(t, len(iclRecs), withExamples, "every record gets at least min_examples")
			})
		}
	}
}
