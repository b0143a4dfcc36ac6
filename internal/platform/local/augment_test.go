package local

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

func augRecord(t *testing.T, user, name, args string) Record {
	t.Helper()
	tools := mustTools([]map[string]any{
		tool("get_weather", []string{"city", "unit"}, map[string]any{
			"city": map[string]any{"type": "string"},
			"unit": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
		}),
		tool("top_items", []string{"limit"}, map[string]any{"limit": map[string]any{"type": "integer"}}),
	})
	return Record{Messages: []tokenizer.Message{
		{Role: "system", Content: jsonString("Use the tools.")},
		{Role: "user", Content: jsonString(user)},
		assistantCall(name, args),
	}, Tools: tools}
}

// callOf returns the user text and the decoded arguments of a record.
func callOf(t *testing.T, r Record) (string, []member) {
	t.Helper()
	user, err := contentString(r.Messages[1].Content)
	require.NoError(t, err)
	ms, err := objectMembers(r.Messages[2].ToolCalls[0].Function.Arguments)
	require.NoError(t, err)
	return user, ms
}

func TestAugmentReplacesCopiedValues(t *testing.T) {
	rec := augRecord(t, "What's the weather in Lima in celsius?", "get_weather", `{"city": "Lima", "unit": "celsius"}`)
	vs := Augment(rec, 5, 1)
	require.Len(t, vs, 5)
	changed := 0
	for _, v := range vs {
		user, ms := callOf(t, v)
		require.Equal(t, []string{"city", "unit"}, []string{ms[0].key, ms[1].key}, "argument order kept")
		var city, unit string
		require.NoError(t, json.Unmarshal(ms[0].value, &city))
		require.NoError(t, json.Unmarshal(ms[1].value, &unit))
		require.Contains(t, []string{"celsius", "fahrenheit"}, unit, "an enum argument stays in its enum")
		require.True(t, containsWord(user, city), "the new city %q is in the message %q", city, user)
		require.True(t, containsWord(user, unit), "the unit %q is in the message %q", unit, user)
		require.True(t, strings.HasPrefix(user, "What's the weather in "), user)
		require.Regexp(t, `^[A-Z][a-z]+$`, city, "made-up value shaped like the original")
		if city != "Lima" {
			changed++
		}
		// The original record is untouched.
		u0, _ := callOf(t, rec)
		require.Equal(t, "What's the weather in Lima in celsius?", u0)
	}
	require.Equal(t, 5, changed)
	require.Equal(t, vs, Augment(rec, 5, 1), "same seed, same variants")
	require.NotEqual(t, vs, Augment(rec, 5, 2), "another seed, other variants")
}

func TestAugmentIntegersAndArgumentStrings(t *testing.T) {
	// An integer copied from the text, arguments as a JSON object (the
	// record helper writes them as a JSON string, OpenAI's form).
	rec := augRecord(t, "Show the top 25 items", "top_items", "")
	rec.Messages[2].ToolCalls[0].Function.Arguments = json.RawMessage(`{"limit": 25}`)
	vs := Augment(rec, 3, 7)
	require.Len(t, vs, 3)
	for _, v := range vs {
		user, ms := callOf(t, v)
		require.Len(t, ms, 1)
		require.Regexp(t, `^[1-9][0-9]$`, string(ms[0].value), "an integer of the same number of digits")
		require.Equal(t, "Show the top "+string(ms[0].value)+" items", user)
	}
}

func TestAugmentLeavesWhatItCannotVary(t *testing.T) {
	for name, rec := range map[string]Record{
		"value not in the message": augRecord(t, "Weather at my place", "get_weather", `{"city": "Lima", "unit": "celsius"}`),
		"value inside a word":      augRecord(t, "Weather in Limassol", "get_weather", `{"city": "Lima"}`),
		"arguments not an object":  augRecord(t, "Weather in Lima", "get_weather", `["Lima"]`),
		"plain answer": {Messages: []tokenizer.Message{
			{Role: "user", Content: jsonString("Hello Lima")}, {Role: "assistant", Content: jsonString("Hi")},
		}},
	} {
		require.Empty(t, Augment(rec, 3, 1), name)
	}
}

func TestPrepareTrainingDataWithVariants(t *testing.T) {
	recs := []Record{
		augRecord(t, "What's the weather in Lima in celsius?", "get_weather", `{"city": "Lima", "unit": "celsius"}`),
		augRecord(t, "Weather at my place", "get_weather", `{"city": "Lima", "unit": "celsius"}`),
	}
	var in bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		in.Write(append(b, '\n'))
	}
	in.WriteString("{not json}\n")
	tok := DefaultTokenizer()
	var out bytes.Buffer
	st, err := PrepareTrainingDataWith(bytes.NewReader(in.Bytes()), &out, tok, PrepareOptions{Augment: 2, Seed: 1})
	require.NoError(t, err)
	require.Equal(t, 3, st.Records)
	require.Equal(t, 2, st.Written)
	require.Equal(t, 2, st.Variants, "two variants of the first record, none of the second")
	require.Len(t, st.Skipped, 1)
	require.Contains(t, st.Skipped[0], "line 3")
	require.Equal(t, 4, strings.Count(out.String(), "\n"))
}
