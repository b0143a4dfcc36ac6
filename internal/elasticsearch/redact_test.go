package elasticsearch_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/elasticsearch"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// TestNewestRecordsRedacted: records read from the index are redacted
// before they are used, the observer told what was replaced.
func TestNewestRecordsRedacted(t *testing.T) {
	t.Parallel()
	f := newFakeES(t)
	for i := range 3 {
		f.add(i, "w", "c", 1_700_000_000+i, int64(1_700_000_000+i))
		f.docs[i].src["request"].(map[string]any)["messages"].([]any)[0].(map[string]any)["content"] = "my key is nvapi-abcdefghijklmnopqrstuvwxyz0123"
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	seen := redact.Counts{}
	r := redact.MustNew(redact.Config{}).WithObserver(func(path string, c redact.Counts) {
		require.Equal(t, redact.PathES, path)
		seen.Add(c)
	})
	src, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{srv.URL}, Redactor: r})
	require.NoError(t, err)
	recs, err := src.NewestRecords(context.Background(), "w", "c", 0)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	for _, rec := range recs {
		require.Contains(t, string(rec.Request), `"my key is <SECRET_1>"`)
		require.False(t, strings.Contains(string(rec.Request), "nvapi-"))
	}
	require.Equal(t, redact.Counts{redact.Secrets: 3}, seen)
}
