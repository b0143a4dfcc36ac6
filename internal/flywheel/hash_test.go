package flywheel_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestHashIgnoresWhitespaceAndHashCompactAgrees(t *testing.T) {
	t.Parallel()
	a := flywheel.LogRecord{WorkloadID: "w", ClientID: "c", Request: json.RawMessage(`{"a":1,"b":[1,2]}`), Response: json.RawMessage(`{"x":"y"}`)}
	b := a
	b.Request = json.RawMessage("{ \"a\": 1,\n \"b\": [1, 2] }")
	require.Equal(t, a.Hash(), b.Hash())
	require.Equal(t, a.Hash(), a.HashCompact())
	c := a
	c.ClientID = "other"
	require.NotEqual(t, a.Hash(), c.Hash())
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://judge:9022/v1/chat/completions": "http://judge:9022",
		"http://nim/v1/embeddings":              "http://nim",
		"http://nim/v1/":                        "http://nim",
		"http://nim":                            "http://nim",
	} {
		require.Equal(t, want, flywheel.BaseURL(in), in)
	}
}
