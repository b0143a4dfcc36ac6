package toolcorpus

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// fewShotParts decodes what a few-shot test checks of a record.
func fewShotParts(t *testing.T, rec flywheel.LogRecord) (system string, tools json.RawMessage, call string) {
	t.Helper()
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	require.NoError(t, json.Unmarshal(rec.Request, &req))
	var resp struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					Function struct {
						Name string `json:"name"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(rec.Response, &resp))
	names := map[string]bool{}
	for _, tl := range req.Tools {
		names[tl.Function.Name] = true
	}
	b, err := json.Marshal(names)
	require.NoError(t, err)
	return req.Messages[0].Content, b, resp.Choices[0].Message.ToolCalls[0].Function.Name
}

func TestEachFewShotDrill(t *testing.T) {
	t.Parallel()
	var first []FewShotDrill
	seen := map[int]int{}
	for range 2 {
		var got []FewShotDrill
		require.NoError(t, EachFewShotDrill(DrillConfig{N: 200, Seed: 5}, 3, func(d FewShotDrill) error {
			got = append(got, d)
			return nil
		}))
		require.Len(t, got, 200)
		if first == nil {
			first = got
			continue
		}
		require.Equal(t, first, got, "the same seed gives the same drills")
	}
	otherCalls := 0
	for _, d := range first {
		seen[len(d.Examples)]++
		sys, tools, call := fewShotParts(t, d.Record)
		for _, ex := range d.Examples {
			exSys, exTools, exCall := fewShotParts(t, ex)
			require.Equal(t, sys, exSys, "an example has the request's system message")
			require.JSONEq(t, string(tools), string(exTools), "an example offers the request's tools")
			if exCall != call {
				otherCalls++
			}
		}
	}
	require.Equal(t, 3, len(seen), "one to three examples: %v", seen)
	require.Positive(t, otherCalls, "some examples call another offered tool")

	require.Error(t, EachFewShotDrill(DrillConfig{N: 1}, 0, func(FewShotDrill) error { return nil }))
}
