package capture_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// TestProxyRedactsBeforeStoring: the caller and the upstream see the
// request and the answer as they are; the stored record has the card and
// the key replaced, the same card by the same placeholder in the user's
// message and the tool call's arguments.
func TestProxyRedactsBeforeStoring(t *testing.T) {
	t.Parallel()
	const req = `{"model":"m","messages":[{"role":"user","content":"charge 4111 1111 1111 1111 with key sk-proj-abcdefghijklmnopqrstuvwxyz"}]}`
	const resp = `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"charge","arguments":"{\"card\": \"4111 1111 1111 1111\"}"}}]},"finish_reason":"tool_calls"}]}`
	counts := redact.Counts{}
	r := redact.MustNew(redact.Config{}).WithObserver(func(path string, c redact.Counts) {
		require.Equal(t, redact.PathCapture, path)
		counts.Add(c)
	})
	b := setup(t, jsonReply(http.StatusOK, resp), func(c *capture.Config) { c.Redactor = r }, false)
	res := b.post(t, req, ids)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.JSONEq(t, resp, string(body), "the caller gets the upstream's answer unchanged")
	require.JSONEq(t, req, (<-b.calls).body, "the upstream gets the request unchanged")

	require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, time.Millisecond)
	rec := b.ing.records()[0]
	require.Contains(t, string(rec.Request), `"charge <CARD_1> with key <SECRET_1>"`)
	require.Contains(t, string(rec.Response), `{\"card\": \"<CARD_1>\"}`)
	require.NotContains(t, string(rec.Request)+string(rec.Response), "4111")
	require.Equal(t, redact.Counts{redact.Cards: 2, redact.Secrets: 1}, counts)
}
