package demo_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/demo"
)

func TestRecordsAreValidAndDeterministic(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := demo.Records(50, 1, "w", "c", end)
	require.NoError(t, err)
	b, err := demo.Records(50, 1, "w", "c", end)
	require.NoError(t, err)
	require.Equal(t, a, b)
	seen := map[string]bool{}
	for i, r := range a {
		_, ferr := dataset.Validate(r)
		require.Nil(t, ferr, "record %d: %v", i, ferr)
		var resp struct {
			Choices []struct {
				Message struct {
					ToolCalls []struct {
						Function struct{ Name, Arguments string } `json:"function"`
					} `json:"tool_calls"`
				} `json:"message"`
			} `json:"choices"`
		}
		require.NoError(t, json.Unmarshal(r.Response, &resp))
		call := resp.Choices[0].Message.ToolCalls[0].Function
		require.True(t, json.Valid([]byte(call.Arguments)))
		seen[call.Name] = true
	}
	require.Len(t, seen, 3, "every tool is used")
}
