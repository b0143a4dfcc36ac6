package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/openai"
)

// Builder builds a run's datasets from logged records. It implements
// flywheel.DatasetBuilder and is safe for concurrent use once set up.
type Builder struct {
	// Source yields the logged records.
	Source flywheel.RecordSource
	// Embedder embeds queries for semantic_similarity selection. When nil,
	// the run's icl_config.similarity_config.embedding_nim_config.url (an
	// OpenAI-compatible server, ".../v1/embeddings" or its base URL) is
	// used through HTTPClient; when there is none, or embedding fails, a
	// local TF-IDF similarity is used instead.
	Embedder Embedder
	// HTTPClient calls the configured embedding endpoint (nil: a pooled
	// client with per-attempt timeouts).
	HTTPClient *http.Client
	// Logger receives progress and warnings; nil discards.
	Logger *slog.Logger
	// Now gives the time for dataset names when BuildRequest.Timestamp is
	// zero, and the seed when DataSplitConfig.RandomSeed is nil
	// (default time.Now).
	Now flywheel.Clock
}

var _ flywheel.DatasetBuilder = (*Builder)(nil)

// minRecords is the least a split can work with: one record to evaluate
// and one to learn from.
const minRecords = 2

// Build implements flywheel.DatasetBuilder.
func (b *Builder) Build(ctx context.Context, req flywheel.BuildRequest) (flywheel.BuildResult, error) {
	logger := b.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "dataset", "run_id", req.RunID, "workload_id", req.WorkloadID, "client_id", req.ClientID)
	now := b.Now
	if now == nil {
		now = time.Now
	}
	cfg := req.Split
	if cfg.EvalSize <= 0 {
		return flywheel.BuildResult{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "data_split_config.eval_size must be positive, got %d", cfg.EvalSize))
	}
	if cfg.ValRatio < 0 || cfg.ValRatio >= 1 {
		return flywheel.BuildResult{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "data_split_config.val_ratio must be in [0, 1), got %g", cfg.ValRatio))
	}
	if req.Replay != nil {
		return b.buildReplay(ctx, req, logger, now)
	}
	limit := 0
	if cfg.Limit != nil && *cfg.Limit > 0 {
		limit = *cfg.Limit
		if limit < cfg.MinTotalRecords {
			return flywheel.BuildResult{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID,
				"data_split_config.limit (%d) is below min_total_records (%d)", limit, cfg.MinTotalRecords))
		}
	}

	// 1. Fetch the newest records: twice the limit, leaving room for the
	// ones validation and deduplication drop.
	records, err := b.Source.NewestRecords(ctx, req.WorkloadID, req.ClientID, 2*limit)
	if err != nil {
		return flywheel.BuildResult{}, fmt.Errorf("read records of workload %q, client %q: %w", req.WorkloadID, req.ClientID, err)
	}
	stats := flywheel.DataStats{Total: len(records), Reasons: map[string]int{}}
	minTotal := max(cfg.MinTotalRecords, minRecords)
	if len(records) < minTotal {
		return flywheel.BuildResult{Stats: stats}, flywheel.Permanent(flywheel.Errorf(flywheel.EPRECONDITION,
			"not enough records for workload %q and client %q: found %d, need at least %d",
			req.WorkloadID, req.ClientID, len(records), minTotal))
	}

	// 2-5. Validate, classify, filter, deduplicate.
	kept, workload, err := curate(ctx, records, cfg, &stats, logger)
	if err != nil {
		return flywheel.BuildResult{Stats: stats}, err
	}
	if len(kept) < minTotal {
		return flywheel.BuildResult{WorkloadType: workload, Stats: stats}, flywheel.Permanent(flywheel.Errorf(flywheel.EPRECONDITION,
			"insufficient valid records for workload %q and client %q: %d left, need at least %d "+
				"(total %d, invalid format %d, filtered %d, duplicates %d)",
			req.WorkloadID, req.ClientID, len(kept), minTotal, stats.Total, stats.InvalidFormat, stats.Filtered, stats.Deduplicated))
	}

	// 6. Sample.
	seed := uint64(now().UnixNano())
	if cfg.RandomSeed != nil {
		seed = uint64(*cfg.RandomSeed)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed5eed5eed5eed))
	rng.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
	if limit > 0 && len(kept) > limit {
		kept = kept[:limit]
	}
	stats.Selected = len(kept)

	// 7. Split.
	labels := make([]string, len(kept))
	for i, r := range kept {
		labels[i] = r.ToolName()
	}
	evalIdx, trainIdx, valIdx := Split(labels, cfg.EvalSize, cfg.ValRatio, rng)
	if len(evalIdx) < cfg.EvalSize {
		logger.WarnContext(ctx, "Evaluation set smaller than eval_size: records left for training",
			slog.Int("eval_size", cfg.EvalSize), slog.Int("eval", len(evalIdx)), slog.Int("selected", len(kept)))
	}
	pickRecords := func(idx []int) []*Record {
		out := make([]*Record, len(idx))
		for i, j := range idx {
			out[i] = kept[j]
		}
		return out
	}
	eval, train, val := pickRecords(evalIdx), pickRecords(trainIdx), pickRecords(valIdx)

	// 7b. The leakage guard: no evaluation question in train or val.
	train, val, stats.Leakage = guardLeakage(eval, train, val)
	if n := stats.Leakage.Removed(); n > 0 {
		stats.Reasons[ReasonLeakage] += n
		logger.InfoContext(ctx, "Leakage guard removed training records that repeat evaluation records",
			slog.Int("exact", stats.Leakage.Exact), slog.Int("near", stats.Leakage.Near),
			slog.Int("train", stats.Leakage.Train), slog.Int("val", stats.Leakage.Val))
	}
	stats.Eval, stats.Train, stats.Val = len(eval), len(train), len(val)
	if len(train) == 0 {
		return flywheel.BuildResult{WorkloadType: workload, Stats: stats}, flywheel.Permanent(flywheel.Errorf(flywheel.EPRECONDITION,
			"no training records left for workload %q and client %q: the leakage guard removed all %d, which repeat evaluation records",
			req.WorkloadID, req.ClientID, stats.Leakage.Removed()))
	}
	return b.write(ctx, req, workload, stats, int64(seed), eval, train, val, nil, logger, now)
}

// buildReplay builds the datasets a manifest pins (BuildRequest.Replay):
// the same records in the same order, the same few-shot examples.
func (b *Builder) buildReplay(ctx context.Context, req flywheel.BuildRequest, logger *slog.Logger, now flywheel.Clock) (flywheel.BuildResult, error) {
	stats := flywheel.DataStats{Reasons: map[string]int{}}
	eval, train, val, picks, err := b.replayRecords(ctx, req, &stats, logger)
	if err != nil {
		return flywheel.BuildResult{Stats: stats}, err
	}
	workload := req.Replay.WorkloadType
	if workload == "" {
		workload = flywheel.WorkloadGeneric
		for _, r := range slices.Concat(eval, train, val) {
			if len(r.Calls) > 0 {
				workload = flywheel.WorkloadToolCalling
				break
			}
		}
	}
	if req.Replay.Leakage != nil {
		l := *req.Replay.Leakage
		stats.Leakage = &l
	} else {
		stats.Leakage = &flywheel.LeakageStats{}
	}
	stats.Selected = len(eval) + len(train) + len(val)
	stats.Eval, stats.Train, stats.Val = len(eval), len(train), len(val)
	if picks == nil {
		picks = make([][]int, len(eval))
	}
	return b.write(ctx, req, workload, stats, req.Replay.Seed, eval, train, val, picks, logger, now)
}

// write builds the ICL records (with the given few-shot picks, or chosen
// now when picks is nil), writes the dataset files and lists their records
// for the manifest.
func (b *Builder) write(ctx context.Context, req flywheel.BuildRequest, workload flywheel.WorkloadType, stats flywheel.DataStats, seed int64,
	eval, train, val []*Record, picks [][]int, logger *slog.Logger, now flywheel.Clock,
) (flywheel.BuildResult, error) {
	// 8. ICL records.
	iclRequests, picks, err := b.iclRequests(ctx, req.ICL, workload, train, eval, picks, logger)
	if err != nil {
		return flywheel.BuildResult{WorkloadType: workload, Stats: stats}, err
	}

	// 9. Files.
	ts := req.Timestamp
	if ts == 0 {
		ts = now().Unix()
	}
	evalDS := flywheel.Dataset{Type: flywheel.DatasetBase, Name: Name("eval", req.WorkloadID, ts), NumRecords: len(eval)}
	iclDS := flywheel.Dataset{Type: flywheel.DatasetICL, Name: Name("icl", req.WorkloadID, ts), NumRecords: len(eval)}
	trainDS := flywheel.Dataset{Type: flywheel.DatasetTrain, Name: Name("train", req.WorkloadID, ts), NumRecords: len(train)}
	for _, ds := range []*flywheel.Dataset{&evalDS, &iclDS, &trainDS} {
		ds.Path = filepath.Join(req.Dir, ds.Name)
	}
	if err := writeJSONL(filepath.Join(evalDS.Path, EvalFile), len(eval), func(i int) ([]byte, error) {
		return evalLine(eval[i], eval[i].Log.Request)
	}); err != nil {
		return flywheel.BuildResult{}, fmt.Errorf("write %s: %w", evalDS.Name, err)
	}
	if err := writeJSONL(filepath.Join(iclDS.Path, EvalFile), len(eval), func(i int) ([]byte, error) {
		return evalLine(eval[i], iclRequests[i])
	}); err != nil {
		return flywheel.BuildResult{}, fmt.Errorf("write %s: %w", iclDS.Name, err)
	}
	if err := writeJSONL(filepath.Join(trainDS.Path, TrainFile), len(train), func(i int) ([]byte, error) {
		return trainLine(train[i], workload)
	}); err != nil {
		return flywheel.BuildResult{}, fmt.Errorf("write %s: %w", trainDS.Name, err)
	}
	if err := writeJSONL(filepath.Join(trainDS.Path, ValFile), len(val), func(i int) ([]byte, error) {
		return trainLine(val[i], workload)
	}); err != nil {
		return flywheel.BuildResult{}, fmt.Errorf("write %s: %w", trainDS.Name, err)
	}
	logger.InfoContext(ctx, "Datasets built", slog.String("workload_type", string(workload)),
		slog.Int("total", stats.Total), slog.Int("invalid_format", stats.InvalidFormat), slog.Int("filtered", stats.Filtered),
		slog.Int("deduplicated", stats.Deduplicated), slog.Int("selected", stats.Selected),
		slog.Int("eval", stats.Eval), slog.Int("train", stats.Train), slog.Int("val", stats.Val))
	names := map[string]string{flywheel.ManifestEval: evalDS.Name, flywheel.ManifestICL: iclDS.Name, flywheel.ManifestTrain: trainDS.Name}
	return flywheel.BuildResult{
		WorkloadType: workload,
		Stats:        stats,
		Datasets:     []flywheel.Dataset{evalDS, iclDS, trainDS},
		NumRecords:   stats.Selected,
		Seed:         seed,
		Manifest:     manifestDatasets(names, eval, train, val, picks),
	}, nil
}

// curate validates, classifies, filters and deduplicates records, keeping
// their order (newest first), and counts every step in stats.
func curate(ctx context.Context, records []flywheel.LogRecord, cfg flywheel.DataSplitConfig, stats *flywheel.DataStats, logger *slog.Logger) ([]*Record, flywheel.WorkloadType, error) {
	valid := make([]*Record, 0, len(records))
	logged := 0
	for i, rec := range records {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, "", fmt.Errorf("validate records: %w", err)
			}
		}
		r, ferr := Validate(rec)
		if ferr == nil {
			r.hash = RecordHash(rec)
		}
		if ferr != nil {
			stats.InvalidFormat++
			stats.Reasons[ReasonInvalidFormat+":"+stripIndexes(ferr.Field)]++
			if logged < 5 {
				logged++
				logger.DebugContext(ctx, "Invalid record", slog.Int64("record_id", rec.ID), slog.String("error", ferr.Error()))
			}
			continue
		}
		valid = append(valid, r)
	}

	workload := flywheel.WorkloadGeneric
	for _, r := range valid {
		if len(r.Calls) > 0 {
			workload = flywheel.WorkloadToolCalling
			break
		}
	}

	filtered := valid[:0]
	drop := func(reason string) {
		stats.Filtered++
		stats.Reasons[reason]++
	}
	for _, r := range valid {
		if workload == flywheel.WorkloadToolCalling {
			if len(r.Calls) == 0 {
				drop(ReasonNoToolCalls)
				continue
			}
			if cfg.ParseFunctionArguments {
				if err := r.parseArguments(); err != nil {
					drop(ReasonInvalidArguments)
					continue
				}
			}
		}
		if cfg.MaxToolProperties > 0 && r.MaxToolProperties > cfg.MaxToolProperties {
			drop(ReasonTooManyToolProperties)
			continue
		}
		filtered = append(filtered, r)
	}

	seen := map[[sha256.Size]byte]bool{}
	deduped := filtered[:0]
	for _, r := range filtered {
		key, ok := userKey(r)
		if ok && seen[key] {
			stats.Deduplicated++
			stats.Reasons[ReasonDuplicate]++
			continue
		}
		if ok {
			seen[key] = true
		}
		deduped = append(deduped, r)
	}
	return deduped, workload, nil
}

// stripIndexes turns "request.messages[3].role" into
// "request.messages[].role", so reasons group by field.
func stripIndexes(field string) string {
	var b strings.Builder
	skip := false
	for _, r := range field {
		switch {
		case r == '[':
			skip = true
			b.WriteRune(r)
		case r == ']':
			skip = false
			b.WriteRune(r)
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// userKey is the deduplication key of a record: a hash of all its user
// messages' contents in canonical JSON, so multimodal content counts too.
// ok is false for records without user content.
func userKey(r *Record) (key [sha256.Size]byte, ok bool) {
	h := sha256.New()
	for _, m := range r.Messages {
		if m.Role != roleUser || !present(m.Content) {
			continue
		}
		c := ingest.Canonical(m.Content)
		if string(c) == `""` || string(c) == `[]` {
			continue
		}
		ok = true
		h.Write(c)
		h.Write([]byte{0})
	}
	copy(key[:], h.Sum(nil))
	return key, ok
}

// iclRequests returns, per eval record, its request with few-shot examples
// from the training set injected, and the examples (indexes into train).
// When forced is not nil its picks are used instead of choosing.
func (b *Builder) iclRequests(ctx context.Context, cfg flywheel.ICLConfig, workload flywheel.WorkloadType, train, eval []*Record,
	forced [][]int, logger *slog.Logger,
) ([]json.RawMessage, [][]int, error) {
	p := newICLPlanner(cfg, workload, train)
	if forced == nil && cfg.ExampleSelection == flywheel.SelectionSemantic && len(train) > 0 && len(eval) > 0 {
		trainTexts := make([]string, len(train))
		for i, r := range train {
			trainTexts[i] = queryText(r)
		}
		evalTexts := make([]string, len(eval))
		for i, r := range eval {
			evalTexts[i] = queryText(r)
		}
		emb, err := b.embedder(cfg)
		if err != nil {
			logger.WarnContext(ctx, "Embedding endpoint unusable; using lexical similarity for ICL examples", slog.String("error", err.Error()))
		}
		if emb != nil {
			s, err := newDenseScorer(ctx, emb, trainTexts, evalTexts)
			switch {
			case err == nil:
				p.scorer = s
			case ctx.Err() != nil:
				return nil, nil, fmt.Errorf("select ICL examples: %w", errors.Join(ctx.Err(), err))
			default:
				logger.WarnContext(ctx, "Embedding failed; using lexical similarity for ICL examples", slog.String("error", err.Error()))
			}
		}
		if p.scorer == nil {
			p.scorer = newLexicalScorer(trainTexts, evalTexts)
		}
	}
	out := make([]json.RawMessage, len(eval))
	all := make([][]int, len(eval))
	var shown, short int
	for i, r := range eval {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("select ICL examples: %w", err)
		}
		var picks []int
		if forced != nil {
			picks = forced[i]
		} else {
			picks = p.pick(r, i)
		}
		all[i] = picks
		texts := make([]string, len(picks))
		for j, k := range picks {
			texts[j] = p.examples[k].text
		}
		shown += len(picks)
		if len(picks) < cfg.MinExamples {
			short++
		}
		req, err := injectExamples(r.Log.Request, texts)
		if err != nil {
			return nil, nil, fmt.Errorf("inject ICL examples into eval record %d: %w", i, err)
		}
		out[i] = req
	}
	if len(eval) > 0 {
		attrs := []any{slog.Float64("examples_per_record", float64(shown)/float64(len(eval)))}
		if short > 0 {
			logger.WarnContext(ctx, "Some ICL records have fewer examples than min_examples (token budget)",
				append(attrs, slog.Int("records", short), slog.Int("min_examples", cfg.MinExamples))...)
		} else {
			logger.DebugContext(ctx, "ICL examples chosen", attrs...)
		}
	}
	return out, all, nil
}

// embedder returns the Embedder for a run: Builder.Embedder, else one for
// the configured endpoint, else nil.
func (b *Builder) embedder(cfg flywheel.ICLConfig) (Embedder, error) {
	if b.Embedder != nil {
		return b.Embedder, nil
	}
	sc := cfg.SimilarityConfig
	if sc == nil || sc.EmbeddingNIMConfig == nil || strings.TrimSpace(sc.EmbeddingNIMConfig.URL) == "" {
		return nil, nil
	}
	ec := sc.EmbeddingNIMConfig
	base := strings.TrimRight(strings.TrimSpace(ec.URL), "/")
	base = strings.TrimSuffix(base, "/embeddings")
	client, err := openai.New(openai.Config{BaseURL: base, APIKey: ec.APIKey, HTTPClient: b.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("embedding endpoint: %w", err)
	}
	return &OpenAIEmbedder{Client: client, Model: ec.ModelName, SendInputType: true}, nil
}

// String helps debugging: the record's tool and user query.
func (r *Record) String() string {
	return r.ToolName() + ": " + strings.TrimSpace(r.UserQuery())
}
