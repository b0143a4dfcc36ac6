package nemotest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b)) //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// records returns n logged tool-calling records, each with its own tools.
func records(n int) []flywheel.LogRecord {
	var out []flywheel.LogRecord
	for i := range n {
		req := fmt.Sprintf(`{"messages":[{"role":"user","content":"question %d"}],"tools":[
			{"type":"function","function":{"name":"right_%d"}},{"type":"function","function":{"name":"other_%d"}}]}`, i, i, i)
		resp := fmt.Sprintf(`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
			{"id":"c","type":"function","function":{"name":"right_%d","arguments":"{\"x\":%d}"}}]}}]}`, i, i)
		out = append(out, flywheel.LogRecord{Request: json.RawMessage(req), Response: json.RawMessage(resp)})
	}
	return out
}

func TestChatPolicy(t *testing.T) {
	t.Parallel()
	recs := records(200)
	tests := []struct {
		name     string
		accuracy float64
		lo, hi   int
	}{
		{name: "AlwaysLogged", accuracy: 1, lo: 200, hi: 200},
		{name: "NeverLogged", accuracy: -1, lo: 0, hi: 0},
		{name: "Half", accuracy: 0.5, lo: 70, hi: 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := nemotest.New(nemotest.Options{Records: recs, Models: []string{"m"},
				Accuracy: map[string]float64{"m": tt.accuracy}})
			defer fake.Close()
			right := 0
			for i, r := range recs {
				var req map[string]any
				require.NoError(t, json.Unmarshal(r.Request, &req))
				req["model"] = "m"
				code, out := post(t, fake.NIMURL+"/v1/chat/completions", req)
				require.Equal(t, http.StatusOK, code)
				msg := out["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
				name := msg["tool_calls"].([]any)[0].(map[string]any)["function"].(map[string]any)["name"]
				if name == fmt.Sprintf("right_%d", i) {
					right++
				} else {
					require.Equal(t, fmt.Sprintf("other_%d", i), name, "a wrong answer calls another offered tool")
				}
			}
			require.GreaterOrEqual(t, right, tt.lo)
			require.LessOrEqual(t, right, tt.hi)
		})
	}

	t.Run("UnknownModelIs404", func(t *testing.T) {
		t.Parallel()
		fake := nemotest.New(nemotest.Options{})
		defer fake.Close()
		code, _ := post(t, fake.NIMURL+"/v1/chat/completions", map[string]any{"model": "nope", "messages": []any{}})
		require.Equal(t, http.StatusNotFound, code)
	})
}

func TestFailureInjection(t *testing.T) {
	t.Parallel()
	fake := nemotest.New(nemotest.Options{ErrorRates: map[string]float64{nemotest.EndpointNIMModels: 1}})
	defer fake.Close()
	resp, err := http.Get(fake.NIMURL + "/v1/models") //nolint:noctx // test
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	code, _ := post(t, fake.URL+"/v1/namespaces", map[string]string{"id": "ns"})
	require.Equal(t, http.StatusCreated, code, "other endpoints are unaffected")

	fake.Update(func(o *nemotest.Options) { o.ErrorRates = nil })
	resp, err = http.Get(fake.NIMURL + "/v1/models") //nolint:noctx // test
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c := fake.Counts()
	require.Equal(t, 1, c.Injected)
	require.Equal(t, 2, c.Requests[nemotest.EndpointNIMModels])
}

func TestDuplicateDeploymentCounted(t *testing.T) {
	t.Parallel()
	fake := nemotest.New(nemotest.Options{})
	defer fake.Close()
	body := map[string]any{"name": "m", "namespace": "dfwbp", "config": map[string]any{"model": "org/m",
		"nim_deployment": map[string]any{"image_name": "i", "image_tag": "t", "gpu": 1}}}
	code, _ := post(t, fake.URL+"/v1/deployment/model-deployments", body)
	require.Equal(t, http.StatusOK, code)
	code, out := post(t, fake.URL+"/v1/deployment/model-deployments", body)
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, out["detail"], "already exists")
	require.Equal(t, 1, fake.Counts().Duplicates[nemotest.KindDeployment])
	require.Equal(t, []string{"dfwbp/m"}, fake.Live().Deployments)
}

func TestListenAndServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- nemotest.ListenAndServe(ctx, addr, nemotest.Options{Models: []string{"judge"}}, slog.New(slog.DiscardHandler))
	}()
	var resp *http.Response
	require.Eventually(t, func() bool {
		resp, err = http.Get("http://" + addr + nemotest.NIMPrefix + "/v1/models") //nolint:noctx // test
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	var out struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Equal(t, "judge", out.Data[0].ID)
	require.Contains(t, resp.Header.Get("X-Fake"), "test and development aid")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not stop")
	}
}

func TestErrorRateKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rates map[string]float64
		// fails lists which of the probed endpoints are answered 503.
		models, namespace, chat bool
	}{
		{name: "Class", rates: map[string]float64{nemotest.ClassNIM: 1}, models: true, chat: true},
		{name: "Method", rates: map[string]float64{"POST": 1}, namespace: true, chat: true},
		{name: "PatternWinsOverClass", rates: map[string]float64{nemotest.ClassNIM: 1, nemotest.EndpointNIMModels: 0},
			chat: true},
		{name: "ClassWinsOverMethod", rates: map[string]float64{"POST": 1, nemotest.ClassEntityStore: 0}, chat: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := nemotest.New(nemotest.Options{ErrorRates: tt.rates, Models: []string{"m"}})
			defer fake.Close()
			resp, err := http.Get(fake.NIMURL + "/v1/models") //nolint:noctx // test
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.models, resp.StatusCode == http.StatusServiceUnavailable, "GET models: %d", resp.StatusCode)
			code, _ := post(t, fake.URL+"/v1/namespaces", map[string]string{"id": "ns"})
			require.Equal(t, tt.namespace, code == http.StatusServiceUnavailable, "POST namespace: %d", code)
			code, _ = post(t, fake.NIMURL+"/v1/chat/completions", map[string]any{"model": "m",
				"messages": []any{map[string]any{"role": "user", "content": "hi"}}})
			require.Equal(t, tt.chat, code == http.StatusServiceUnavailable, "POST chat: %d", code)
		})
	}
}

func TestEndpointClass(t *testing.T) {
	t.Parallel()
	fake := nemotest.NewHandler(nemotest.Options{})
	endpoints := fake.Endpoints()
	require.Contains(t, endpoints, nemotest.EndpointCustomizationCreate)
	for _, e := range endpoints {
		require.Contains(t, nemotest.Classes, nemotest.EndpointClass(e), "every endpoint has a class: %s", e)
	}
	require.Equal(t, nemotest.ClassDataStore, nemotest.EndpointClass(nemotest.EndpointCommit))
	require.Equal(t, nemotest.ClassEntityStore, nemotest.EndpointClass(nemotest.EndpointDatasetRegister))
	require.Empty(t, nemotest.EndpointClass("GET "+nemotest.CountersPath))
}

// TestLostResponseCut checks that a cut answer reaches the client as a
// broken connection, after the fake acted on the request.
func TestLostResponseCut(t *testing.T) {
	t.Parallel()
	fake := nemotest.New(nemotest.Options{LostResponseRate: 1, CutLostResponses: true})
	defer fake.Close()
	body := map[string]any{"name": "m", "namespace": "dfwbp", "config": map[string]any{"model": "org/m",
		"nim_deployment": map[string]any{"image_name": "i", "image_tag": "t", "gpu": 1}}}
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(fake.URL+"/v1/deployment/model-deployments", "application/json", bytes.NewReader(b)) //nolint:noctx // test
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "no answer")
	require.Equal(t, []string{"dfwbp/m"}, fake.Live().Deployments, "the deployment was created")
	c := fake.Counters()
	require.Equal(t, 1, c.Faults[nemotest.FaultLostResponse])
	require.Equal(t, 1, c.Created[nemotest.KindDeployment])
}

// TestCounters follows resources through the counters endpoint: created,
// live, cancelled, deleted, and the injected faults by kind.
func TestCounters(t *testing.T) {
	t.Parallel()
	fake := nemotest.New(nemotest.Options{SpikeRate: 1, Spike: time.Millisecond})
	defer fake.Close()
	counters := func() nemotest.Counters {
		t.Helper()
		resp, err := http.Get(fake.URL + nemotest.CountersPath) //nolint:noctx // test
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var c nemotest.Counters
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
		return c
	}
	c := counters()
	require.Zero(t, c.Requests)
	require.Empty(t, c.Live.Deployments)
	require.NotNil(t, c.Live.Deployments, "empty lists, not nulls")

	body := map[string]any{"name": "m", "namespace": "dfwbp", "config": map[string]any{"model": "org/m",
		"nim_deployment": map[string]any{"image_name": "i", "image_tag": "t", "gpu": 1}}}
	code, _ := post(t, fake.URL+"/v1/deployment/model-deployments", body)
	require.Equal(t, http.StatusOK, code)
	c = counters()
	require.Equal(t, 1, c.Requests, "the counters' own requests are not counted")
	require.Equal(t, 1, c.Created[nemotest.KindDeployment])
	require.Equal(t, 1, c.Stored[nemotest.KindDeployment])
	require.Equal(t, []string{"dfwbp/m"}, c.Live.Deployments)
	require.Equal(t, 1, c.LiveTotal)
	require.Equal(t, 1, c.Faults[nemotest.FaultLatencySpike])
	require.Zero(t, c.Faults[nemotest.FaultError5xx])

	req, err := http.NewRequest(http.MethodDelete, fake.URL+"/v1/deployment/model-deployments/dfwbp/m", nil) //nolint:noctx // test
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c = counters()
	require.Equal(t, 1, c.Deleted[nemotest.KindDeployment])
	require.Zero(t, c.Stored[nemotest.KindDeployment])
	require.Zero(t, c.LiveTotal)
	require.Equal(t, 2, c.Requests)
	require.Equal(t, 1, c.RequestsByEndpoint[nemotest.EndpointDeploymentDelete])
	require.Zero(t, c.DuplicatesTotal)

	fake.Update(func(o *nemotest.Options) { o.ErrorRate = 1 })
	resp, err = http.Get(fake.URL + "/v1/deployment/model-deployments") //nolint:noctx // test
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	c = counters()
	require.Equal(t, 1, c.Faults[nemotest.FaultError5xx], "the counters endpoint itself never fails")
}
