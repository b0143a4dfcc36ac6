package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// blueprintLogs is n logged tool calls of workload in the blueprint's log
// format; prefix starts every user message.
func blueprintLogs(workload, prefix string, n int) string {
	var b strings.Builder
	tools := `[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	for i := range n {
		fmt.Fprintf(&b, `{"workload_id":%q,"client_id":"acme","timestamp":%d,"request":{"model":"prod","messages":[{"role":"user","content":"%sWhat is the weather in city %d?"}],"tools":%s},`+
			`"response":{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c%d","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"city %d\"}"}}]}}]}}`+"\n",
			workload, 1700000000+i, prefix, i, tools, i, i)
	}
	return b.String()
}

// TestBlueprintPythonClient runs the blueprint's client flows, written in
// Python with requests as its notebook and docs do (testdata), against the
// real app: create, poll to completion, get, list, cancel, delete and the
// error answers, with every timestamp parsed by datetime.fromisoformat
// under Python 3.10's rules. It needs python3 and python3-requests
// (scripts/test.sh installs them).
func TestBlueprintPythonClient(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	require.NoError(t, err, "this test needs python3 and python3-requests (apt-get install python3-requests; scripts/test.sh installs them)")
	out, err := exec.Command(python, "-c", "import requests").CombinedOutput()
	require.NoError(t, err, "this test needs python3-requests (apt-get install python3-requests): %s", out)

	// Replies to the slow workload's requests wait until the test ends, so
	// its run is still running when the script deletes and cancels it.
	release := make(chan struct{})
	model := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
		if strings.HasPrefix(c.LastUserContent(), "slow: ") {
			select {
			case <-release:
			case <-time.After(time.Minute):
			}
		}
		return openaitest.Reply{Message: c.Messages[len(c.Messages)-1]}
	}})
	defer model.Close()
	defer close(release)

	cfg := testConfig(t)
	cfg.DataSplit.EvalSize = 20
	cfg.Eval.MaxRetries = -1
	cfg.Eval.RequestTimeout = 5 * time.Minute
	cfg.Engine.PollInterval = 10 * time.Millisecond
	cfg.NIMs = cfg.NIMs[:1]
	ctx := context.Background()
	base, stop := serveWithEndpoint(t, cfg, model.URL)
	defer stop()

	for _, logs := range []string{blueprintLogs("bp-client", "", 100), blueprintLogs("bp-client-slow", "slow: ", 100)} {
		resp, err := http.Post(base+"/api/logs", "application/x-ndjson", strings.NewReader(logs))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}

	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, python, "testdata/blueprint_client.py", base, "bp-client", "bp-client-slow", "acme")
	out, err = cmd.CombinedOutput()
	t.Logf("blueprint client:\n%s", out)
	require.NoError(t, err, "the blueprint's client flows failed:\n%s", out)
	require.Contains(t, string(out), "all flows passed")
}
