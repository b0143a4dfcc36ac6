// Package tokenizer is a byte-level BPE tokenizer compatible with
// llama.cpp's "gpt2" tokenizer model: it is trained on text here, exported
// into a GGUF file's metadata, and splits text exactly as llama.cpp does
// (GPT-2 pre-tokenization, merges applied by rank, special tokens matched
// first), so that training data tokenized in Go matches what llama-server
// sees.
package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/flywheel-go/flywheel/internal/gguf"
)

// Token types stored in tokenizer.ggml.token_type (llama.cpp's numbering).
const (
	TypeNormal  = 1
	TypeControl = 3
)

// Special tokens of the chat format.
const (
	EndOfText     = "<|endoftext|>"
	ImStart       = "<|im_start|>"
	ImEnd         = "<|im_end|>"
	ToolCallOpen  = "<tool_call>"
	ToolCallClose = "</tool_call>"
)

// Specials are the control tokens every model made here carries, after
// the byte and merge tokens.
func Specials() []string { return []string{ImStart, ImEnd, ToolCallOpen, ToolCallClose} }

// Tokenizer is a trained byte-level BPE vocabulary.
type Tokenizer struct {
	tokens  []string // byte-encoded token texts
	types   []int32
	merges  []string // "left right", by rank
	ids     map[string]int
	ranks   map[string]int
	special []int // control token ids, longest text first
	eos     int
}

// Train learns numMerges BPE merges from corpus and returns a tokenizer
// whose vocabulary is <|endoftext|>, the 256 byte symbols, the merges and
// the Specials. Training is deterministic: ties are broken by the pair's
// text.
//
// A space is never merged with the letter or digit after it, so a word
// has the same tokens after a space as after a quote: "Lima" in
// `weather in Lima` and in `{"city": "Lima"}` are the same tokens, and a
// model fills in an argument by copying tokens from the request (with
// GPT-2's merges it would have to learn that " Li" is written "Li").
func Train(corpus []string, numMerges int) *Tokenizer {
	byteEnc := byteEncoder()
	space := string(byteEnc[' '])
	words := map[string]int{}
	for _, doc := range corpus {
		for _, part := range splitSpecial(doc, Specials()) {
			if part.special {
				continue
			}
			for _, w := range preTokenize(part.text) {
				words[encodeBytes(byteEnc, w)]++
			}
		}
	}
	// Each distinct word as a list of symbols, with its count.
	type entry struct {
		syms  []string
		count int
	}
	keys := make([]string, 0, len(words))
	for w := range words {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	entries := make([]entry, 0, len(keys))
	for _, w := range keys {
		var syms []string
		for _, r := range w {
			syms = append(syms, string(r))
		}
		entries = append(entries, entry{syms: syms, count: words[w]})
	}

	var merges []string
	for len(merges) < numMerges {
		counts := map[[2]string]int{}
		for _, e := range entries {
			for i := 0; i+1 < len(e.syms); i++ {
				counts[[2]string{e.syms[i], e.syms[i+1]}] += e.count
			}
		}
		var best [2]string
		bestN := 0
		for p, n := range counts {
			if p[0] == space && startsWord(p[1]) {
				continue
			}
			if n > bestN || (n == bestN && (p[0]+" "+p[1]) < (best[0]+" "+best[1])) {
				best, bestN = p, n
			}
		}
		if bestN < 2 {
			break
		}
		merges = append(merges, best[0]+" "+best[1])
		joined := best[0] + best[1]
		for k := range entries {
			s := entries[k].syms
			out := s[:0]
			for i := 0; i < len(s); i++ {
				if i+1 < len(s) && s[i] == best[0] && s[i+1] == best[1] {
					out = append(out, joined)
					i++
					continue
				}
				out = append(out, s[i])
			}
			entries[k].syms = out
		}
	}

	tokens := []string{EndOfText}
	types := []int32{TypeControl}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, string(byteEnc[b]))
		types = append(types, TypeNormal)
	}
	seen := map[string]bool{}
	for _, t := range tokens {
		seen[t] = true
	}
	for _, m := range merges {
		t := strings.Replace(m, " ", "", 1)
		if !seen[t] {
			seen[t] = true
			tokens = append(tokens, t)
			types = append(types, TypeNormal)
		}
	}
	for _, s := range Specials() {
		tokens = append(tokens, s)
		types = append(types, TypeControl)
	}
	tok, _ := build(tokens, types, merges)
	return tok
}

func build(tokens []string, types []int32, merges []string) (*Tokenizer, error) {
	if len(types) != len(tokens) {
		return nil, fmt.Errorf("%d token types for %d tokens", len(types), len(tokens))
	}
	t := &Tokenizer{tokens: tokens, types: types, merges: merges, ids: map[string]int{}, ranks: map[string]int{}, eos: -1}
	for i, s := range tokens {
		if _, dup := t.ids[s]; !dup {
			t.ids[s] = i
		}
		if types[i] == TypeControl {
			t.special = append(t.special, i)
		}
	}
	for i, m := range merges {
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = i
		}
	}
	sort.SliceStable(t.special, func(a, b int) bool { return len(tokens[t.special[a]]) > len(tokens[t.special[b]]) })
	if id, ok := t.ids[ImEnd]; ok {
		t.eos = id
	}
	byteEnc := byteEncoder()
	for b := 0; b < 256; b++ {
		if _, ok := t.ids[string(byteEnc[b])]; !ok {
			return nil, fmt.Errorf("vocabulary lacks the symbol of byte %#x", b)
		}
	}
	return t, nil
}

// startsWord reports whether a symbol starts with a letter or a digit.
func startsWord(sym string) bool {
	for _, r := range sym {
		return unicode.IsLetter(r) || unicode.IsNumber(r)
	}
	return false
}

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// NumMerges returns the number of merges.
func (t *Tokenizer) NumMerges() int { return len(t.merges) }

// EOS returns the id of <|im_end|>, the end of a turn.
func (t *Tokenizer) EOS() int { return t.eos }

// ID returns the id of a token text (for special tokens, their text).
func (t *Tokenizer) ID(text string) (int, bool) {
	id, ok := t.ids[text]
	return id, ok
}

// Encode tokenizes text; special token texts become their single control
// token (llama.cpp's parse_special=true).
func (t *Tokenizer) Encode(text string) []int {
	byteEnc := byteEncoder()
	specials := make([]string, len(t.special))
	for i, id := range t.special {
		specials[i] = t.tokens[id]
	}
	var out []int
	for _, part := range splitSpecial(text, specials) {
		if part.special {
			out = append(out, t.ids[part.text])
			continue
		}
		for _, w := range preTokenize(part.text) {
			out = t.encodeWord(out, encodeBytes(byteEnc, w))
		}
	}
	return out
}

// encodeWord applies the merges to one pre-token: repeatedly merge the
// adjacent pair of lowest rank (leftmost first), as llama.cpp does.
func (t *Tokenizer) encodeWord(out []int, word string) []int {
	var syms []string
	for _, r := range word {
		syms = append(syms, string(r))
	}
	for len(syms) > 1 {
		best, bestRank := -1, int(^uint(0)>>1)
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[syms[i]+" "+syms[i+1]]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		syms[best] += syms[best+1]
		syms = append(syms[:best+1], syms[best+2:]...)
	}
	for _, s := range syms {
		if id, ok := t.ids[s]; ok {
			out = append(out, id)
			continue
		}
		// A merge whose result is not in the vocabulary: fall back to
		// the symbols (never happens for vocabularies made by Train).
		for _, r := range s {
			out = append(out, t.ids[string(r)])
		}
	}
	return out
}

// Decode turns ids back into text; control tokens are written as their text.
func (t *Tokenizer) Decode(ids []int) string {
	dec := byteDecoder()
	var b strings.Builder
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) {
			continue
		}
		s := t.tokens[id]
		if t.types[id] == TypeControl {
			b.WriteString(s)
			continue
		}
		for _, r := range s {
			if c, ok := dec[r]; ok {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// GGUF metadata keys of the tokenizer.
const (
	KeyModel        = "tokenizer.ggml.model"
	KeyPre          = "tokenizer.ggml.pre"
	KeyTokens       = "tokenizer.ggml.tokens"
	KeyTokenType    = "tokenizer.ggml.token_type"
	KeyMerges       = "tokenizer.ggml.merges"
	KeyEOS          = "tokenizer.ggml.eos_token_id"
	KeyEOT          = "tokenizer.ggml.eot_token_id"
	KeyPadding      = "tokenizer.ggml.padding_token_id"
	KeyAddBOS       = "tokenizer.ggml.add_bos_token"
	KeyChatTemplate = "tokenizer.chat_template"
)

// KVs returns the GGUF metadata describing t, with chatTemplate as the
// model's chat template.
func (t *Tokenizer) KVs(chatTemplate string) []gguf.KV {
	eos := uint32(max(t.eos, 0))
	return []gguf.KV{
		{Key: KeyModel, Value: "gpt2"},
		{Key: KeyPre, Value: "gpt-2"},
		{Key: KeyTokens, Value: append([]string(nil), t.tokens...)},
		{Key: KeyTokenType, Value: append([]int32(nil), t.types...)},
		{Key: KeyMerges, Value: append([]string(nil), t.merges...)},
		{Key: KeyEOS, Value: eos},
		{Key: KeyEOT, Value: eos},
		{Key: KeyPadding, Value: uint32(0)},
		{Key: KeyAddBOS, Value: false},
		{Key: KeyChatTemplate, Value: chatTemplate},
	}
}

// ErrNoTokenizer is returned by FromGGUF for a file without a gpt2 tokenizer.
var ErrNoTokenizer = errors.New("model has no gpt2 tokenizer")

// FromGGUF loads the tokenizer stored in a model file's metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	if m := f.String(KeyModel); m != "gpt2" {
		return nil, fmt.Errorf("tokenizer model %q: %w", m, ErrNoTokenizer)
	}
	v, _ := f.Get(KeyTokens)
	tokens, ok := v.([]string)
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("%s missing or not a string array: %w", KeyTokens, ErrNoTokenizer)
	}
	v, _ = f.Get(KeyTokenType)
	types, ok := v.([]int32)
	if !ok {
		types = make([]int32, len(tokens))
		for i := range types {
			types[i] = TypeNormal
		}
	}
	v, _ = f.Get(KeyMerges)
	merges, _ := v.([]string)
	t, err := build(tokens, types, merges)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if id, ok := f.Uint(KeyEOS); ok && id < uint64(len(tokens)) {
		t.eos = int(id)
	}
	return t, nil
}

type piece struct {
	text    string
	special bool
}

// splitSpecial cuts text at every occurrence of a special token (longest
// match first at each position).
func splitSpecial(text string, specials []string) []piece {
	var out []piece
	start := 0
	for i := 0; i < len(text); {
		matched := ""
		if text[i] == '<' {
			for _, s := range specials {
				if strings.HasPrefix(text[i:], s) && len(s) > len(matched) {
					matched = s
				}
			}
		}
		if matched == "" {
			i++
			continue
		}
		if start < i {
			out = append(out, piece{text: text[start:i]})
		}
		out = append(out, piece{text: matched, special: true})
		i += len(matched)
		start = i
	}
	if start < len(text) {
		out = append(out, piece{text: text[start:]})
	}
	return out
}

// preTokenize splits text like llama.cpp's GPT-2 pre-tokenizer:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func preTokenize(text string) []string {
	var rs []rune
	for _, r := range text {
		rs = append(rs, r)
	}
	n := len(rs)
	at := func(i int) rune {
		if i < n {
			return rs[i]
		}
		return -1
	}
	isL := func(i int) bool { return i < n && unicode.IsLetter(rs[i]) }
	isN := func(i int) bool { return i < n && unicode.IsNumber(rs[i]) }
	isS := func(i int) bool { return i < n && unicode.IsSpace(rs[i]) }
	isO := func(i int) bool { return i < n && !isL(i) && !isN(i) && !isS(i) }

	var out []string
	prev := 0
	add := func(end int) {
		if end > prev {
			out = append(out, string(rs[prev:end]))
		}
		prev = end
	}
	for pos := 0; pos < n; {
		c := rs[pos]
		if c == '\'' && pos+1 < n {
			nx := at(pos + 1)
			if nx == 's' || nx == 't' || nx == 'm' || nx == 'd' {
				pos += 2
				add(pos)
				continue
			}
			if pos+2 < n {
				nn := at(pos + 2)
				if (nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l') {
					pos += 3
					add(pos)
					continue
				}
			}
		}
		q := pos
		if c == ' ' {
			q = pos + 1
		}
		switch {
		case isL(q):
			for pos = q; isL(pos); pos++ {
			}
			add(pos)
			continue
		case isN(q):
			for pos = q; isN(pos); pos++ {
			}
			add(pos)
			continue
		case isO(q):
			for pos = q; isO(pos); pos++ {
			}
			add(pos)
			continue
		}
		ws := 0
		for isS(pos + ws) {
			ws++
		}
		if ws > 1 && pos+ws < n {
			pos += ws - 1
			add(pos)
			continue
		}
		if ws > 0 {
			pos += ws
			add(pos)
			continue
		}
		pos++
		add(pos)
	}
	return out
}

// byteEncoder is GPT-2's reversible map from bytes to printable runes.
func byteEncoder() [256]rune {
	var enc [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			enc[b] = rune(b)
		} else {
			enc[b] = rune(256 + n)
			n++
		}
	}
	return enc
}

func byteDecoder() map[rune]byte {
	enc := byteEncoder()
	dec := make(map[rune]byte, 256)
	for b, r := range enc {
		dec[r] = byte(b)
	}
	return dec
}

func encodeBytes(enc [256]rune, s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(enc[s[i]])
	}
	return b.String()
}
