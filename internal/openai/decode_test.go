package openai

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

func requireSameDecoding(t *testing.T, in []byte) {
	t.Helper()
	var want ChatResponse
	wantErr := json.Unmarshal(in, &want)
	got, err := DecodeChatResponse(in)
	if wantErr != nil {
		require.Error(t, err, "%s", in)
		return
	}
	require.NoError(t, err, "%s", in)
	require.Equal(t, &want, got, "%s", in)
}

func TestDecodeChatResponse(t *testing.T) {
	t.Parallel()

	for _, in := range []string{
		`{"id":"x","object":"chat.completion","created":5,"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi \"there\"\n\u00e9"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
		`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":[1,2]}}},{"index":1,"function":{"name":"g","arguments":"{\"b\":\"\\u00e9\"}"}}]}}],"usage":null}`,
		`{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}},{"index":1,"message":{"content":"second"}}]}`,
		`{"choices":[{"message":{"content":"hi"}}],"timings":{"prompt_n":3,"prompt_ms":1.5,"predicted_n":2,"predicted_ms":2.5,"predicted_per_second":800}}`,
		`{"choices":[],"timings":null}`, `{"timings":{"prompt_ms":"x"}}`,
		`{"choices":[]}`, `{}`, `{"choices":[null,{"message":null}]}`, `{"choices":[{"message":{"tool_calls":[null]}}]}`, `{"id":null,"created":null,"choices":null}`,
		`[1]`, `{"choices":[{"message":{"content":5}}]}`, `{"choices":"x"}`, `{"id":`, `{"created":"x"}`,
	} {
		requireSameDecoding(t, []byte(in))
	}

	// Every logged response of the generated tool-calling corpus, and of
	// FLYWHEEL_BFCL_DIR's corpus when set.
	var matches []string
	for _, corpus := range testcorpus.Dirs(t) {
		m, err := filepath.Glob(filepath.Join(corpus.Dir, "*.jsonl"))
		require.NoError(t, err)
		require.NotEmpty(t, m, corpus.Dir)
		matches = append(matches, m...)
	}
	for _, m := range matches {
		f, err := os.Open(m)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var rec struct {
				Response json.RawMessage `json:"response"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
			if rec.Response != nil {
				requireSameDecoding(t, rec.Response)
			}
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
	}
}

func FuzzDecodeChatResponse(f *testing.F) {
	f.Add([]byte(`{"id":"x","choices":[{"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}],"usage":{"prompt_tokens":3}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var want ChatResponse
		wantErr := json.Unmarshal(in, &want)
		got, err := DecodeChatResponse(in)
		if wantErr != nil {
			require.Error(t, err, "%s", in)
			return
		}
		require.NoError(t, err, "%s", in)
		require.Equal(t, &want, got)
	})
}
