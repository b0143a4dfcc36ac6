package local

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/flywheel-go/flywheel/internal/gguf"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// ModelSize is the shape of a tiny llama-architecture model.
type ModelSize struct {
	Name    string
	Embd    int
	Layers  int
	Heads   int
	FF      int
	Context int
}

// Params returns the number of parameters of a model of this size with a
// vocabulary of vocab tokens (the output projection is the token
// embedding).
func (s ModelSize) Params(vocab int) int {
	perLayer := 4*s.Embd*s.Embd + 3*s.Embd*s.FF + 2*s.Embd
	return vocab*s.Embd + s.Layers*perLayer + s.Embd
}

// Sizes returns the model sizes the local platform can create, smallest
// first.
func Sizes() []ModelSize {
	return []ModelSize{
		{Name: "tiny-xs", Embd: 64, Layers: 2, Heads: 2, FF: 192, Context: 2048},
		{Name: "tiny-s", Embd: 128, Layers: 4, Heads: 4, FF: 384, Context: 2048},
		{Name: "tiny-m", Embd: 192, Layers: 4, Heads: 6, FF: 576, Context: 2048},
		{Name: "tiny-l", Embd: 256, Layers: 6, Heads: 8, FF: 768, Context: 2048},
	}
}

// SizeFor maps a candidate's model name to a size: the name's last path
// element ("local/tiny-s" → "tiny-s") must be one of Sizes.
func SizeFor(modelName string) (ModelSize, error) {
	base := modelName[strings.LastIndex(modelName, "/")+1:]
	for _, s := range Sizes() {
		if s.Name == base {
			return s, nil
		}
	}
	var names []string
	for _, s := range Sizes() {
		names = append(names, s.Name)
	}
	return ModelSize{}, fmt.Errorf("model %q: unknown size %q (known: %s)", modelName, base, strings.Join(names, ", "))
}

// TokenizerMerges is the number of BPE merges of the built-in tokenizer.
const TokenizerMerges = 700

// DefaultTokenizer trains the tokenizer every model made here uses, on the
// built-in corpus. It is deterministic.
func DefaultTokenizer() *tokenizer.Tokenizer {
	return tokenizer.Train(CorpusText(Corpus(3000, 1)), TokenizerMerges)
}

// NewModel returns a randomly initialised model (seeded, so the same
// arguments give the same weights) with the tokenizer and chat template.
//
// The model has no output.weight: llama.cpp (and the trainer) then use the
// token embedding as the output projection. With tied embeddings a model
// that learns to copy a token from the request can write any token it
// reads, including tokens it never wrote in training (the city or name of
// a held-out request); with a separate random output matrix it could only
// write the tokens it was trained to write.
func NewModel(name string, size ModelSize, tok *tokenizer.Tokenizer, seed uint64) (*gguf.File, error) {
	if size.Embd%size.Heads != 0 {
		return nil, fmt.Errorf("size %s: embedding %d not divisible by %d heads", size.Name, size.Embd, size.Heads)
	}
	h := fnv.New64a()
	h.Write([]byte(size.Name))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	vocab := tok.VocabSize()
	f := &gguf.File{KVs: []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: name},
		{Key: "general.alignment", Value: uint32(32)},
		{Key: "general.file_type", Value: uint32(0)},
		{Key: "llama.context_length", Value: uint32(size.Context)},
		{Key: "llama.embedding_length", Value: uint32(size.Embd)},
		{Key: "llama.block_count", Value: uint32(size.Layers)},
		{Key: "llama.feed_forward_length", Value: uint32(size.FF)},
		{Key: "llama.attention.head_count", Value: uint32(size.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(size.Heads)},
		{Key: "llama.rope.dimension_count", Value: uint32(size.Embd / size.Heads)},
		{Key: "llama.rope.freq_base", Value: float32(10000)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
		{Key: "llama.vocab_size", Value: uint32(vocab)},
	}}
	f.KVs = append(f.KVs, tok.KVs(tokenizer.ChatTemplate)...)

	// linear is a torch-style (out, in) weight: ggml dims [in, out].
	linear := func(name string, in, out int, std float64) gguf.Tensor {
		data := make([]float32, in*out)
		for i := range data {
			data[i] = float32(rng.NormFloat64() * std)
		}
		return gguf.Tensor{Name: name, Dims: []uint64{uint64(in), uint64(out)}, Data: data}
	}
	ones := func(name string, n int) gguf.Tensor {
		data := make([]float32, n)
		for i := range data {
			data[i] = 1
		}
		return gguf.Tensor{Name: name, Dims: []uint64{uint64(n)}, Data: data}
	}
	const std = 0.02
	resid := std / math.Sqrt(2*float64(size.Layers))
	f.Tensors = append(f.Tensors, linear("token_embd.weight", size.Embd, vocab, std))
	for l := 0; l < size.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		f.Tensors = append(f.Tensors,
			ones(p+"attn_norm.weight", size.Embd),
			linear(p+"attn_q.weight", size.Embd, size.Embd, std),
			linear(p+"attn_k.weight", size.Embd, size.Embd, std),
			linear(p+"attn_v.weight", size.Embd, size.Embd, std),
			linear(p+"attn_output.weight", size.Embd, size.Embd, resid),
			ones(p+"ffn_norm.weight", size.Embd),
			linear(p+"ffn_gate.weight", size.Embd, size.FF, std),
			linear(p+"ffn_up.weight", size.Embd, size.FF, std),
			linear(p+"ffn_down.weight", size.FF, size.Embd, resid),
		)
	}
	f.Tensors = append(f.Tensors, ones("output_norm.weight", size.Embd))
	return f, nil
}
