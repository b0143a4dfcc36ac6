package tokenizer

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/gguf"
)

func corpus() []string {
	return []string{
		"<|im_start|>user\nWhat's the weather in Paris today?<|im_end|>\n",
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n",
		"The weather in London is 12 degrees; the weather in Tokyo is 20 degrees.",
		"Book a meeting with Alice on monday, then a meeting with Bob on friday.",
	}
}

func TestPreTokenize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"it's 42!", []string{"it", "'s", " 42", "!"}},
		{"a  b", []string{"a", " ", " b"}},
		{"x\n\n", []string{"x", "\n\n"}},
		{"{\"k\": 1}", []string{"{\"", "k", "\":", " 1", "}"}},
		{"we'll  go   ", []string{"we", "'ll", " ", " go", "   "}},
		{"naïve café", []string{"naïve", " café"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, preTokenize(tt.in), "input %q", tt.in)
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	t.Parallel()

	a, b := Train(corpus(), 50), Train(corpus(), 50)
	require.Equal(t, a.tokens, b.tokens)
	require.Equal(t, a.merges, b.merges)
	// The small corpus runs out of pairs seen twice before 50 merges.
	require.Positive(t, a.NumMerges())
	require.LessOrEqual(t, a.NumMerges(), 50)
	require.Equal(t, 1+256+a.NumMerges()+len(Specials()), a.VocabSize())
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()

	tok := Train(corpus(), 80)
	texts := []string{
		"What's the weather in Paris?",
		"Ünïcödé ✓ and emoji 🙂 survive",
		"<|im_start|>user\nhi<|im_end|>\n<tool_call>\n{}\n</tool_call>",
		"",
		"   leading and trailing   ",
	}
	for _, s := range texts {
		ids := tok.Encode(s)
		require.Equal(t, s, tok.Decode(ids), "round trip of %q", s)
	}

	// Special tokens are single tokens; merges shorten common words.
	ids := tok.Encode("<|im_start|>weather<|im_end|>")
	start, _ := tok.ID(ImStart)
	end, _ := tok.ID(ImEnd)
	require.Equal(t, start, ids[0])
	require.Equal(t, end, ids[len(ids)-1])
	require.Less(t, len(ids)-2, len("weather"))
	require.Equal(t, end, tok.EOS())
}

func TestWordsTokenizeAlikeAfterSpaceAndQuote(t *testing.T) {
	t.Parallel()

	tok := Train(corpus(), 80)
	space := tok.Encode(" ")
	require.Len(t, space, 1)
	for _, w := range []string{"weather", "Paris", "Krakow", "AAPL", "2026"} {
		inText := tok.Encode("in " + w + "?")
		inJSON := tok.Encode(`{"city": "` + w + `"}`)
		word := tok.Encode(w)
		require.Subset(t, inText, word)
		require.Equal(t, append(append([]int{}, space...), word...), tok.Encode(" "+w), "%q after a space", w)
		require.True(t, containsRun(inText, word) && containsRun(inJSON, word), "%q: %v in %v and %v", w, word, inText, inJSON)
	}
}

func containsRun(xs, run []int) bool {
	for i := 0; i+len(run) <= len(xs); i++ {
		match := true
		for j := range run {
			if xs[i+j] != run[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func TestGGUFRoundTrip(t *testing.T) {
	t.Parallel()

	tok := Train(corpus(), 60)
	f := &gguf.File{KVs: tok.KVs(ChatTemplate)}
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	g, err := gguf.Read(&buf)
	require.NoError(t, err)
	require.Equal(t, ChatTemplate, g.String(KeyChatTemplate))

	back, err := FromGGUF(g)
	require.NoError(t, err)
	s := "Schedule a meeting with Carol on friday <tool_call>"
	require.Equal(t, tok.Encode(s), back.Encode(s))
	require.Equal(t, tok.EOS(), back.EOS())

	_, err = FromGGUF(&gguf.File{KVs: []gguf.KV{{Key: KeyModel, Value: "llama"}}})
	require.ErrorIs(t, err, ErrNoTokenizer)
	_, err = FromGGUF(&gguf.File{KVs: []gguf.KV{{Key: KeyModel, Value: "gpt2"}, {Key: KeyTokens, Value: []string{"a"}}}})
	require.ErrorContains(t, err, "lacks the symbol of byte")
}

func TestRenderChat(t *testing.T) {
	t.Parallel()

	var msgs []Message
	require.NoError(t, json.Unmarshal([]byte(`[
		{"role": "system", "content": "Be brief."},
		{"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Lima?"}]},
		{"role": "assistant", "content": null, "tool_calls": [
			{"function": {"name": "get_weather", "arguments": "{\"city\":\"Lima\",\"n\":[1,2.5,true,null],\"q\":\"<x>\"}"}},
			{"function": {"name": "noop", "arguments": {}}}]},
		{"role": "tool", "content": "18C"}]`), &msgs))
	var tools []Tool
	require.NoError(t, json.Unmarshal([]byte(`[
		{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {}, "n": {}, "q": {}}}}},
		{"type": "function", "function": {"name": "noop"}}]`), &tools))

	got, err := RenderChat(msgs, tools, true)
	require.NoError(t, err)
	want := "<|im_start|>system\nBe brief.\nTools: get_weather(city, n, q); noop()<|im_end|>\n" +
		"<|im_start|>user\nWeather in Lima?<|im_end|>\n" +
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lima\", \"n\": [1, 2.5, true, null], \"q\": \"<x>\"}}\n</tool_call>\n" +
		"<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n"
	require.Equal(t, want, got)

	plain, err := RenderChat(msgs[:2], nil, false)
	require.NoError(t, err)
	require.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWeather in Lima?<|im_end|>\n", plain)
}

func TestRenderChatErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		msgs  string
		tools string
		want  string
	}{
		{"NoMessages", `[]`, `[]`, "no messages"},
		{"BadContent", `[{"role": "user", "content": 5}]`, `[]`, "message 0: content is neither"},
		{"BadArguments", `[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]`, `[]`, "message 1: tool call 0 (f): arguments"},
		{"BadProperties", `[{"role": "user", "content": "x"}]`, `[{"function": {"name": "f", "parameters": {"properties": [1]}}}]`, "tool 0 (f): parameters.properties is not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var msgs []Message
			var tools []Tool
			require.NoError(t, json.Unmarshal([]byte(tt.msgs), &msgs))
			require.NoError(t, json.Unmarshal([]byte(tt.tools), &tools))
			_, err := RenderChat(msgs, tools, true)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
