package dataset

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// Embedder turns texts into vectors for semantic_similarity selection. The
// vectors of one call must share a dimension; any dimension will do.
type Embedder interface {
	// Embed returns one vector per text, in order. inputType is "query" or
	// "passage" for asymmetric embedding models.
	Embed(ctx context.Context, texts []string, inputType string) ([][]float32, error)
}

// OpenAIEmbedder embeds through an OpenAI-compatible /v1/embeddings
// endpoint, in batches.
type OpenAIEmbedder struct {
	Client *openai.Client
	Model  string
	// BatchSize is the number of texts per request
	// (openai.EmbedBatchSizeDefault when zero).
	BatchSize int
	// SendInputType sends input_type (an NVIDIA extension that NIM
	// embedding models require and some other servers reject).
	SendInputType bool
}

// Embed implements Embedder.
func (e *OpenAIEmbedder) Embed(ctx context.Context, texts []string, inputType string) ([][]float32, error) {
	req := openai.EmbeddingRequest{Model: e.Model, Input: texts}
	if e.SendInputType {
		req.InputType = inputType
	}
	vecs, err := e.Client.EmbedBatches(ctx, req, e.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("embed %d texts with %s: %w", len(texts), e.Model, err)
	}
	return vecs, nil
}

// scorer gives, for one eval record, a similarity score per training record.
type scorer interface {
	scores(evalIndex int) []float32
}

// denseScorer compares unit-normalised embedding vectors.
type denseScorer struct {
	train, eval [][]float32
}

func newDenseScorer(ctx context.Context, e Embedder, trainTexts, evalTexts []string) (*denseScorer, error) {
	train, err := e.Embed(ctx, trainTexts, "passage")
	if err != nil {
		return nil, fmt.Errorf("embed training queries: %w", err)
	}
	eval, err := e.Embed(ctx, evalTexts, "query")
	if err != nil {
		return nil, fmt.Errorf("embed evaluation queries: %w", err)
	}
	if len(train) != len(trainTexts) || len(eval) != len(evalTexts) {
		return nil, fmt.Errorf("embedder returned %d+%d vectors for %d+%d texts", len(train), len(eval), len(trainTexts), len(evalTexts))
	}
	dim := -1
	for _, set := range [][][]float32{train, eval} {
		for _, v := range set {
			if dim == -1 {
				dim = len(v)
			}
			if len(v) != dim || dim == 0 {
				return nil, fmt.Errorf("embedder returned vectors of dimensions %d and %d", dim, len(v))
			}
			normalize(v)
		}
	}
	return &denseScorer{train: train, eval: eval}, nil
}

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		clear(v)
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

func (d *denseScorer) scores(ei int) []float32 {
	q := d.eval[ei]
	out := make([]float32, len(d.train))
	for i, t := range d.train {
		var s float32
		for j := range q {
			s += q[j] * t[j]
		}
		out[i] = s
	}
	return out
}

// lexicalScorer is the fallback when no embedding endpoint is configured:
// TF-IDF vectors over lower-cased words (letters and digits), compared by
// cosine similarity through an inverted index.
type lexicalScorer struct {
	nTrain   int
	postings map[int][]posting // term → training records holding it
	eval     []map[int]float32
}

type posting struct {
	doc    int
	weight float32
}

func newLexicalScorer(trainTexts, evalTexts []string) *lexicalScorer {
	vocab := map[string]int{}
	docs := make([]map[int]int, 0, len(trainTexts)+len(evalTexts))
	df := map[int]int{}
	for _, t := range append(append([]string(nil), trainTexts...), evalTexts...) {
		tf := map[int]int{}
		for _, w := range words(t) {
			id, ok := vocab[w]
			if !ok {
				id = len(vocab)
				vocab[w] = id
			}
			tf[id]++
		}
		for id := range tf {
			df[id]++
		}
		docs = append(docs, tf)
	}
	n := float64(len(docs))
	vec := func(tf map[int]int) map[int]float32 {
		v := make(map[int]float32, len(tf))
		var norm float64
		for id, c := range tf {
			w := float64(c) * (math.Log((1+n)/(1+float64(df[id]))) + 1)
			v[id] = float32(w)
			norm += w * w
		}
		if norm > 0 {
			inv := float32(1 / math.Sqrt(norm))
			for id := range v {
				v[id] *= inv
			}
		}
		return v
	}
	s := &lexicalScorer{nTrain: len(trainTexts), postings: map[int][]posting{}}
	for d, tf := range docs[:len(trainTexts)] {
		for id, w := range vec(tf) {
			s.postings[id] = append(s.postings[id], posting{doc: d, weight: w})
		}
	}
	for _, tf := range docs[len(trainTexts):] {
		s.eval = append(s.eval, vec(tf))
	}
	return s
}

func (s *lexicalScorer) scores(ei int) []float32 {
	out := make([]float32, s.nTrain)
	for id, w := range s.eval[ei] {
		for _, p := range s.postings[id] {
			out[p.doc] += w * p.weight
		}
	}
	return out
}

// words splits text into lower-cased runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
