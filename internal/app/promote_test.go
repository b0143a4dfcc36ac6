package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// A run's candidate promoted through the API answers the workload's
// traffic on /v1 (full mode; the icl variant with the run's few-shot
// examples before the request's messages), and a rollback sends the next
// request to production again. The candidate is served by the
// endpoint-backed fake platform.
func TestPromoteRoutesGatewayTraffic(t *testing.T) {
	t.Parallel()
	model := openaitest.New(openaitest.Options{})
	defer model.Close()
	prod := openaitest.New(openaitest.Options{})
	defer prod.Close()
	cfg := testConfig(t)
	cfg.DataSplit.EvalSize = 60
	cfg.Eval.MaxRetries = -1
	cfg.Eval.RequestTimeout = 5 * time.Second
	cfg.Engine.PollInterval = 10 * time.Millisecond
	cfg.NIMs = cfg.NIMs[:1]
	cfg.Capture.UpstreamURL = prod.URL
	candidate := cfg.NIMs[0].ModelName
	base, stop := serveWithEndpoint(t, cfg, model.URL)
	defer stop()

	post := func(path, body string) (int, []byte) {
		resp, err := http.Post(base+path, "application/json", bytes.NewBufferString(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	resp, err := http.Post(base+"/api/logs", "application/x-ndjson", strings.NewReader(toolLogs(200)))
	require.NoError(t, err)
	resp.Body.Close()
	status, out := post("/api/jobs", `{"workload_id":"truth","client_id":"acme"}`)
	require.Equal(t, http.StatusOK, status, string(out))
	var created api.JobResponse
	require.NoError(t, json.Unmarshal(out, &created))
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/api/jobs/" + created.ID)
		require.NoError(t, err)
		defer resp.Body.Close()
		var d api.JobDetailResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
		return flywheel.RunStatus(d.Status).Terminal()
	}, 60*time.Second, 20*time.Millisecond)

	var (
		mu    sync.Mutex
		calls []openaitest.ChatCall
	)
	model.SetChat(func(c openaitest.ChatCall) openaitest.Reply {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return openaitest.Reply{Message: openai.Message{Role: "assistant", Content: "from the candidate"}}
	})
	chat := func() string {
		req, err := http.NewRequest(http.MethodPost, base+capture.Path,
			strings.NewReader(`{"model":"prod","messages":[{"role":"system","content":"Use the tools."},{"role":"user","content":"Weather in Oslo?"}]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(capture.HeaderWorkloadID, "truth")
		req.Header.Set(capture.HeaderClientID, "acme")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var answer struct {
			Model string `json:"model"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return answer.Model
	}
	require.Equal(t, "prod", chat(), "no promotion: production answers")

	status, out = post("/api/jobs/"+created.ID+"/promote", `{"candidate":"`+candidate+`","variant":"icl","mode":"full"}`)
	require.Equal(t, http.StatusOK, status, string(out))
	var p api.Promotion
	require.NoError(t, json.Unmarshal(out, &p))
	require.Equal(t, "active", p.Status)
	require.Equal(t, model.URL, p.Endpoint)
	require.Equal(t, candidate, chat(), "full: the candidate answers")
	mu.Lock()
	require.NotEmpty(t, calls)
	sys := calls[len(calls)-1].Messages[0]
	mu.Unlock()
	require.Equal(t, "system", sys.Role)
	require.True(t, strings.HasPrefix(sys.Content, "You are a helpful assistant"), "the run's few-shot block comes first: %q", sys.Content)
	require.Contains(t, sys.Content, "For example, if the conversation looks like this")
	require.True(t, strings.HasSuffix(sys.Content, "\n\nUse the tools."), "the app's system message follows")

	req, err := http.NewRequest(http.MethodDelete, base+"/api/jobs/"+created.ID, nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusConflict, resp.StatusCode, "a job serving a promotion is not deleted")

	status, out = post("/api/promotions/"+p.ID+"/rollback", `{"reason":"test"}`)
	require.Equal(t, http.StatusOK, status, string(out))
	require.Equal(t, "prod", chat(), "rolled back: production answers the next request")

	resp, err = http.Get(base + "/api/audit")
	require.NoError(t, err)
	var page api.AuditPage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	var actions []string
	for _, e := range page.Entries {
		actions = append(actions, e.Action)
	}
	require.Contains(t, actions, flywheel.AuditJobPromoted)
	require.Contains(t, actions, flywheel.AuditPromotionRolledBack)
}
