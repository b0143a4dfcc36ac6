package capture_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// fakeRoutes is a fake of capture.Routes.
type fakeRoutes struct {
	mu     sync.Mutex
	active []flywheel.PromotionRoute
}

func (f *fakeRoutes) ActivePromotions(context.Context) ([]flywheel.PromotionRoute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flywheel.PromotionRoute(nil), f.active...), nil
}

func (f *fakeRoutes) set(rs ...flywheel.PromotionRoute) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active = rs
}

// fakeRecorder is a fake of flywheel.OnlineRecorder.
type fakeRecorder struct{ samples chan flywheel.OnlineSample }

func (f *fakeRecorder) Record(_ context.Context, s flywheel.OnlineSample) {
	select {
	case f.samples <- s:
	default:
	}
}

// modelServer is a fake chat completions server answering as model;
// delay slows every answer; fail makes it answer 500.
type modelServer struct {
	*httptest.Server
	model  string
	delay  time.Duration
	fail   atomic.Bool
	calls  atomic.Int64
	mu     sync.Mutex
	bodies []string
}

func newModelServer(t testing.TB, model string, delay time.Duration) *modelServer {
	m := &modelServer{model: model, delay: delay}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.calls.Add(1)
		m.mu.Lock()
		m.bodies = append(m.bodies, string(body))
		m.mu.Unlock()
		if m.delay > 0 {
			time.Sleep(m.delay)
		}
		if m.fail.Load() {
			http.Error(w, `{"error":{"message":"down"}}`, http.StatusInternalServerError)
			return
		}
		var req struct {
			Stream bool `json:"stream"`
		}
		_ = json.Unmarshal(body, &req)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, part := range []string{"hel", "lo"} {
				fmt.Fprintf(w, "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%q}}]}\n\n", m.model, part)
				w.(http.Flusher).Flush()
			}
			fmt.Fprintf(w, "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", m.model)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`, m.model)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *modelServer) lastBody(t testing.TB) map[string]any {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	require.NotEmpty(t, m.bodies)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(m.bodies[len(m.bodies)-1]), &v))
	return v
}

type routeBundle struct {
	prod, cand *modelServer
	routes     *fakeRoutes
	rec        *fakeRecorder
	proxy      *capture.Proxy
	srv        *httptest.Server
	reg        *prometheus.Registry
	ing        *fakeIngester
}

func promotion(mode flywheel.PromotionMode, percent float64, endpoint string) flywheel.PromotionRoute {
	return flywheel.PromotionRoute{Promotion: flywheel.Promotion{ID: "p1", WorkloadID: "w", ClientID: "c", JobID: "j",
		Candidate: "small", Variant: flywheel.VariantBase, Mode: mode, CanaryPercent: percent, Endpoint: endpoint,
		ServedModel: "small-served", Status: flywheel.PromotionActive}}
}

// setupRoutes starts production and candidate servers and a proxy in front
// of production with the routes (promotion p, its endpoint set to the
// candidate's), running unless noRun.
func setupRoutes(t testing.TB, p *flywheel.PromotionRoute, candDelay time.Duration, mod func(*capture.Config), noRun bool) *routeBundle {
	b := &routeBundle{prod: newModelServer(t, "prod", 0), cand: newModelServer(t, "small-served", candDelay), routes: &fakeRoutes{},
		rec: &fakeRecorder{samples: make(chan flywheel.OnlineSample, 20000)}, reg: prometheus.NewRegistry(), ing: &fakeIngester{}}
	if p != nil {
		p.Endpoint = b.cand.URL
		b.routes.set(*p)
	}
	cfg := capture.Config{UpstreamURL: b.prod.URL, Ingester: b.ing, Registerer: b.reg, Routes: b.routes, Recorder: b.rec,
		RouteRefresh: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	proxy, err := capture.New(cfg)
	require.NoError(t, err)
	b.proxy = proxy
	require.NoError(t, proxy.RefreshRoutes(context.Background()))
	b.srv = httptest.NewServer(proxy)
	t.Cleanup(b.srv.Close)
	if !noRun {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = proxy.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return b
}

// chat posts a chat completion as workload w, client c and returns the
// model that answered and the body.
func (b *routeBundle) chat(t testing.TB, body string) (string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+capture.Path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(capture.HeaderWorkloadID, "w")
	req.Header.Set(capture.HeaderClientID, "c")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var model string
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && data != "[DONE]" {
				var c struct {
					Model string `json:"model"`
				}
				require.NoError(t, json.Unmarshal([]byte(data), &c))
				model = c.Model
			}
		}
		return model, string(out)
	}
	var answer struct {
		Model string `json:"model"`
	}
	require.NoError(t, json.Unmarshal(out, &answer), string(out))
	return answer.Model, string(out)
}

func (b *routeBundle) sample(t testing.TB) flywheel.OnlineSample {
	t.Helper()
	select {
	case s := <-b.rec.samples:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no online sample recorded")
	}
	return flywheel.OnlineSample{}
}

func userReq(content string, stream bool) string {
	b, _ := json.Marshal(map[string]any{"model": "prod", "stream": stream,
		"messages": []map[string]any{{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}}})
	return string(b)
}

func TestShadowAnswersWithProductionAndRecordsBoth(t *testing.T) {
	p := promotion(flywheel.ModeShadow, 0, "")
	b := setupRoutes(t, &p, 300*time.Millisecond, nil, false)

	start := time.Now()
	model, _ := b.chat(t, userReq("hi", false))
	took := time.Since(start)
	require.Equal(t, "prod", model)
	require.Less(t, took, 250*time.Millisecond, "the caller never waits for the candidate")

	s := b.sample(t)
	require.Equal(t, "p1", s.PromotionID)
	require.Equal(t, "small", s.Model)
	require.Contains(t, string(s.Production), `"model":"prod"`)
	require.Contains(t, string(s.Candidate), `"model":"small-served"`)
	require.Empty(t, s.CandidateError)
	require.GreaterOrEqual(t, s.CandidateLatency, 300*time.Millisecond)
	require.Equal(t, "small-served", b.cand.lastBody(t)["model"], "the candidate is sent its served model")
	require.Equal(t, 1.0, counter(t, b.reg, "flywheel_gateway_routed_total", "shadow", "production", "w"))
	require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestShadowQueueFullDropsCopies(t *testing.T) {
	p := promotion(flywheel.ModeShadow, 0, "")
	// Not running: nothing takes copies off the queue of one.
	b := setupRoutes(t, &p, 0, func(c *capture.Config) { c.ShadowQueueSize = 1 }, true)
	for range 3 {
		model, _ := b.chat(t, userReq("hi", false))
		require.Equal(t, "prod", model)
	}
	require.Equal(t, 2.0, counter(t, b.reg, "flywheel_gateway_shadow_total", capture.ShadowDropped))
}

func TestCanarySplitIsStableAndNearItsPercent(t *testing.T) {
	const n = 10000
	in := 0
	for i := range n {
		if capture.CanaryChoosesCandidate([]byte(userReq(fmt.Sprintf("question %d about order %d", i, i*7), false)), "c", 20) {
			in++
		}
	}
	require.InDelta(t, 0.20, float64(in)/n, 0.015, "share of conversations given to the candidate")

	p := promotion(flywheel.ModeCanary, 20, "")
	b := setupRoutes(t, &p, 0, func(c *capture.Config) { c.ReferenceShareCanary = -1 }, false)
	var (
		wg   sync.WaitGroup
		cand atomic.Int64
		next atomic.Int64
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				if model, _ := b.chat(t, userReq(fmt.Sprintf("ticket %d", i), false)); model == "small-served" {
					cand.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.InDelta(t, 0.20, float64(cand.Load())/n, 0.015, "share answered by the candidate through the proxy")

	// One conversation always gets the same model, its later turns too.
	for _, q := range []string{"ticket 1", "ticket 2", "ticket 3", "ticket 4", "ticket 5"} {
		first, _ := b.chat(t, userReq(q, false))
		for range 20 {
			model, _ := b.chat(t, userReq(q, false))
			require.Equal(t, first, model)
		}
		long, _ := json.Marshal(map[string]any{"model": "prod", "messages": []map[string]any{
			{"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
			{"role": "assistant", "content": "ok"}, {"role": "user", "content": "and then?"}}})
		model, _ := b.chat(t, string(long))
		require.Equal(t, first, model, "a later turn of the conversation")
	}
	// The user field, when sent, names the conversation.
	a, _ := b.chat(t, `{"model":"prod","user":"u-1","messages":[{"role":"user","content":"x"}]}`)
	for i := range 20 {
		model, _ := b.chat(t, fmt.Sprintf(`{"model":"prod","user":"u-1","messages":[{"role":"user","content":"y%d"}]}`, i))
		require.Equal(t, a, model)
	}
}

func TestFullAnswersWithCandidateAndSamplesReference(t *testing.T) {
	p := promotion(flywheel.ModeFull, 0, "")
	b := setupRoutes(t, &p, 0, func(c *capture.Config) { c.ReferenceShareFull = 1 }, false)
	for range 5 {
		model, _ := b.chat(t, userReq("hi", false))
		require.Equal(t, "small-served", model)
	}
	s := b.sample(t)
	require.Contains(t, string(s.Candidate), `"model":"small-served"`)
	require.Contains(t, string(s.Production), `"model":"prod"`, "production answered the copy")
	require.Equal(t, 5.0, counter(t, b.reg, "flywheel_gateway_routed_total", "full", "small", "w"))
	require.Eventually(t, func() bool { return len(b.ing.records()) == 5 }, 5*time.Second, 10*time.Millisecond)
	rec := b.ing.records()[0]
	require.Contains(t, string(rec.Response), "small-served", "the record says which model answered")
	require.Contains(t, string(rec.Request), `"model":"prod"`, "the record keeps the app's request")
}

func TestCandidateFailureFallsBackToProduction(t *testing.T) {
	p := promotion(flywheel.ModeFull, 0, "")
	b := setupRoutes(t, &p, 0, nil, false)
	b.cand.fail.Store(true)
	model, _ := b.chat(t, userReq("hi", false))
	require.Equal(t, "prod", model)
	require.Equal(t, 1.0, counter(t, b.reg, "flywheel_gateway_fallback_total", "w"))

	b.cand.Close() // no answer at all
	model, _ = b.chat(t, userReq("hi", true))
	require.Equal(t, "prod", model)
	require.Equal(t, 2.0, counter(t, b.reg, "flywheel_gateway_fallback_total", "w"))
}

func TestRollbackSwitchesBackAtOnce(t *testing.T) {
	p := promotion(flywheel.ModeFull, 0, "")
	b := setupRoutes(t, &p, 0, nil, false)
	model, _ := b.chat(t, userReq("hi", false))
	require.Equal(t, "small-served", model)
	b.routes.set()
	require.NoError(t, b.proxy.RefreshRoutes(context.Background()))
	model, _ = b.chat(t, userReq("hi", false))
	require.Equal(t, "prod", model)
}

func TestRoutedStreaming(t *testing.T) {
	for _, mode := range []flywheel.PromotionMode{flywheel.ModeShadow, flywheel.ModeFull} {
		t.Run(string(mode), func(t *testing.T) {
			p := promotion(mode, 0, "")
			b := setupRoutes(t, &p, 0, func(c *capture.Config) { c.ReferenceShareFull = 1 }, false)
			model, body := b.chat(t, userReq("hi", true))
			want := map[flywheel.PromotionMode]string{flywheel.ModeShadow: "prod", flywheel.ModeFull: "small-served"}[mode]
			require.Equal(t, want, model)
			require.Contains(t, body, "data: [DONE]")
			s := b.sample(t)
			require.NotEmpty(t, s.Production)
			require.NotEmpty(t, s.Candidate)
			require.Contains(t, string(s.Candidate), `"content":"hello"`, "the streamed answer is reassembled for scoring")
			require.Contains(t, string(s.Production), `"content":"hello"`)
			require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, 10*time.Millisecond)
		})
	}
}

func TestICLVariantPrependsExamples(t *testing.T) {
	p := promotion(flywheel.ModeFull, 0, "")
	p.Variant, p.ICLPrompt = flywheel.VariantICL, "Here are some examples:\n\nExample one"
	b := setupRoutes(t, &p, 0, nil, false)
	_, _ = b.chat(t, userReq("hi", false))
	msgs := b.cand.lastBody(t)["messages"].([]any)
	require.Equal(t, "Here are some examples:\n\nExample one\n\nBe brief.", msgs[0].(map[string]any)["content"])

	_, _ = b.chat(t, `{"model":"prod","messages":[{"role":"user","content":"hi"}]}`)
	msgs = b.cand.lastBody(t)["messages"].([]any)
	require.Len(t, msgs, 2)
	require.Equal(t, "system", msgs[0].(map[string]any)["role"])
	require.Equal(t, "Here are some examples:\n\nExample one", msgs[0].(map[string]any)["content"])
}

func TestPromotionWithoutEndpointKeepsProduction(t *testing.T) {
	b := setupRoutes(t, nil, 0, nil, false)
	p := promotion(flywheel.ModeFull, 0, "") // not serving yet
	b.routes.set(p)
	require.NoError(t, b.proxy.RefreshRoutes(context.Background()))
	model, _ := b.chat(t, userReq("hi", false))
	require.Equal(t, "prod", model)
}

// counter returns the value of a registered counter, labels given in the
// order of their names (0 when it has not been counted).
func counter(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			vals := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if strings.Join(vals, ",") == strings.Join(labels, ",") {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
