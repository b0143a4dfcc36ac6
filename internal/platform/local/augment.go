package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// Copy augmentation. A tiny model fine-tuned on a few hundred logged calls
// learns the tool names at once but memorises argument values instead of
// copying them from the request: with 50 cities seen about three times
// each, it answers a held-out "weather in Lima" with a city it saw more
// often. Variants of a record in which every argument value the user
// spelled out is replaced, in the message and in the call alike, by a
// fresh value make copying the only way to lower the loss, and the model
// learns it within a few hundred steps.

// Augment returns n variants of rec (none when rec has nothing to vary).
// An argument is varied when it is a string or an integer whose text
// appears as a whole word in the last user message; an enum argument gets
// another value of its enum, any other a made-up value of the same shape
// (capitalisation, letters, digits). The variants depend only on rec, n
// and seed.
func Augment(rec Record, n int, seed uint64) []Record {
	if n <= 0 || len(rec.Messages) < 2 {
		return nil
	}
	last := rec.Messages[len(rec.Messages)-1]
	user := -1
	for i := len(rec.Messages) - 2; i >= 0; i-- {
		if rec.Messages[i].Role == "user" {
			user = i
			break
		}
	}
	if last.Role != "assistant" || len(last.ToolCalls) == 0 || user < 0 {
		return nil
	}
	text, err := contentString(rec.Messages[user].Content)
	if err != nil || text == "" {
		return nil
	}
	calls := make([][]member, len(last.ToolCalls))
	type slot struct {
		call, arg int
		old       string
		str       bool
		enum      []string
	}
	var slots []slot
	for ci, tc := range last.ToolCalls {
		args, err := objectMembers(tc.Function.Arguments)
		if err != nil {
			return nil
		}
		calls[ci] = args
		enums := toolEnums(rec.Tools, tc.Function.Name)
		for ai, m := range args {
			var s string
			var isStr bool
			if json.Unmarshal(m.value, &s) == nil {
				isStr = true
			} else if _, err := strconv.ParseInt(string(m.value), 10, 64); err == nil {
				s = string(m.value)
			} else {
				continue
			}
			if utf8.RuneCountInString(s) < 2 || !containsWord(text, s) {
				continue
			}
			slots = append(slots, slot{call: ci, arg: ai, old: s, str: isStr, enum: enums[m.key]})
		}
	}
	if len(slots) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, recordHash(rec)))
	out := make([]Record, 0, n)
	for v := 0; v < n; v++ {
		newText := text
		newCalls := make([][]member, len(calls))
		for ci := range calls {
			newCalls[ci] = append([]member(nil), calls[ci]...)
		}
		used := map[string]bool{}
		for _, s := range slots {
			var repl string
			switch {
			case len(s.enum) > 0:
				repl = s.enum[rng.IntN(len(s.enum))]
			case s.str:
				repl = madeUpLike(rng, s.old)
			default:
				repl = madeUpNumber(rng, s.old)
			}
			if used[repl] || containsWord(newText, repl) && repl != s.old {
				// Keep every value findable in exactly one place.
				continue
			}
			used[repl] = true
			newText = replaceWord(newText, s.old, repl)
			val := []byte(repl)
			if s.str {
				val, _ = json.Marshal(repl)
			}
			newCalls[s.call][s.arg].value = val
		}
		r := Record{Messages: append([]tokenizer.Message(nil), rec.Messages...), Tools: rec.Tools}
		r.Messages[user].Content = jsonString(newText)
		a := r.Messages[len(r.Messages)-1]
		a.ToolCalls = append([]tokenizer.ToolCall(nil), a.ToolCalls...)
		for ci := range a.ToolCalls {
			a.ToolCalls[ci].Function.Arguments = membersJSON(newCalls[ci])
		}
		r.Messages[len(r.Messages)-1] = a
		out = append(out, r)
	}
	return out
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers decodes a JSON object (or a JSON string holding one) into
// its members, in order.
func objectMembers(raw json.RawMessage) ([]member, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("arguments are not a JSON object")
	}
	var out []member
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key: k.(string), value: v})
	}
	return out, nil
}

func membersJSON(ms []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteString(": ")
		b.Write(m.value)
	}
	b.WriteByte('}')
	return json.RawMessage(b.Bytes())
}

// toolEnums returns the enum values of a tool's string parameters.
func toolEnums(tools []tokenizer.Tool, name string) map[string][]string {
	for _, t := range tools {
		if t.Function.Name != name {
			continue
		}
		var p struct {
			Properties map[string]struct {
				Enum []any `json:"enum"`
			} `json:"properties"`
		}
		if json.Unmarshal(t.Function.Parameters, &p) != nil {
			return nil
		}
		out := map[string][]string{}
		for k, prop := range p.Properties {
			for _, e := range prop.Enum {
				if s, ok := e.(string); ok {
					out[k] = append(out[k], s)
				}
			}
		}
		return out
	}
	return nil
}

func contentString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// wordAt reports whether s occurs in text at i with no letter or digit
// right before or after it.
func wordAt(text, s string, i int) bool {
	if i > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:i]); isWordRune(r) {
			return false
		}
	}
	if j := i + len(s); j < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[j:]); isWordRune(r) {
			return false
		}
	}
	return true
}

func containsWord(text, s string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], s)
		if j < 0 {
			return false
		}
		if wordAt(text, s, i+j) {
			return true
		}
		i += j + 1
	}
}

func replaceWord(text, old, repl string) string {
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(text[i:], old)
		if j < 0 {
			break
		}
		if wordAt(text, old, i+j) {
			b.WriteString(text[i : i+j])
			b.WriteString(repl)
		} else {
			b.WriteString(text[i : i+j+len(old)])
		}
		i += j + len(old)
	}
	b.WriteString(text[i:])
	return b.String()
}

const (
	consonants = "bcdfghjklmnprstvwz"
	vowels     = "aeiou"
)

// madeUpLike returns a made-up word shaped like old: pronounceable
// syllables for its letters, random digits for its digits, its other
// characters kept, and its capitalisation (Title, UPPER, lower).
func madeUpLike(rng *rand.Rand, old string) string {
	var b strings.Builder
	runes := []rune(old)
	for i := 0; i < len(runes); {
		r := runes[i]
		switch {
		case unicode.IsLetter(r):
			j := i
			for j < len(runes) && unicode.IsLetter(runes[j]) {
				j++
			}
			b.WriteString(shapeCase(runes[i:j], syllables(rng, max(2, j-i+rng.IntN(3)-1))))
			i = j
		case unicode.IsDigit(r):
			b.WriteByte(byte('0' + rng.IntN(10)))
			i++
		default:
			b.WriteRune(r)
			i++
		}
	}
	return b.String()
}

func syllables(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteByte(consonants[rng.IntN(len(consonants))])
		b.WriteByte(vowels[rng.IntN(len(vowels))])
		if rng.IntN(3) == 0 {
			b.WriteByte(consonants[rng.IntN(len(consonants))])
		}
	}
	return b.String()[:n]
}

// shapeCase gives word the capitalisation of like.
func shapeCase(like []rune, word string) string {
	upper := 0
	for _, r := range like {
		if unicode.IsUpper(r) {
			upper++
		}
	}
	switch {
	case upper == len(like) && len(like) > 1:
		return strings.ToUpper(word)
	case upper > 0 && unicode.IsUpper(like[0]):
		return strings.ToUpper(word[:1]) + word[1:]
	}
	return word
}

// madeUpNumber returns a random integer with as many digits as old.
func madeUpNumber(rng *rand.Rand, old string) string {
	digits := len(strings.TrimPrefix(old, "-"))
	if digits <= 1 {
		return strconv.Itoa(rng.IntN(10))
	}
	lo := 1
	for range digits - 1 {
		lo *= 10
	}
	return strconv.Itoa(lo + rng.IntN(9*lo))
}

// recordHash is a stable hash of a record's messages (FNV-1a).
func recordHash(rec Record) uint64 {
	h := uint64(14695981039346656037)
	for _, m := range rec.Messages {
		for _, b := range append([]byte(m.Role), m.Content...) {
			h ^= uint64(b)
			h *= 1099511628211
		}
		for _, tc := range m.ToolCalls {
			for _, b := range append([]byte(tc.Function.Name), tc.Function.Arguments...) {
				h ^= uint64(b)
				h *= 1099511628211
			}
		}
	}
	return h
}
