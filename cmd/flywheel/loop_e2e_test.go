package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// loopProduction is a fake production model behind the gateway. With
// tools on it answers the demo workload's requests as the demo's
// production model did (the tool call logged for that question); with
// tools off it answers in a sentence and calls no tool, as the candidate
// (a random base: it never learns the tool-call format) does.
type loopProduction struct {
	answers map[string]json.RawMessage // by the request's last user message
	tools   atomic.Bool
}

func newLoopProduction(t *testing.T, recs ...[]flywheel.LogRecord) (*loopProduction, *httptest.Server) {
	t.Helper()
	p := &loopProduction{answers: map[string]json.RawMessage{}}
	p.tools.Store(true)
	for _, rs := range recs {
		for _, r := range rs {
			p.answers[lastUserMessage(t, r.Request)] = r.Response
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q := lastUserMessage(t, body)
		answer, ok := p.answers[q]
		switch {
		case !p.tools.Load():
			answer = textAnswer(t)
		case !ok:
			http.Error(w, "unknown question "+q, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return p, srv
}

// textAnswer is production's answer without tools: a sentence.
func textAnswer(t *testing.T) json.RawMessage {
	b, err := json.Marshal(map[string]any{
		"id": "chatcmpl-text", "object": "chat.completion", "created": time.Now().Unix(), "model": demo.ProductionModel,
		"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": "Let me look into that for you."}}},
		"usage": map[string]int{"prompt_tokens": 180, "completion_tokens": 8, "total_tokens": 188},
	})
	require.NoError(t, err)
	return b
}

// lastUserMessage is the content of the last user message of a chat
// completion request body.
func lastUserMessage(t *testing.T, body []byte) string {
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Errorf("production: request: %v", err)
		return ""
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			return req.Messages[i].Content
		}
	}
	return ""
}

// loopGateway sends the demo workload's requests through the gateway of a
// serve process.
type loopGateway struct {
	t    *testing.T
	base string
	http *http.Client
}

// chat sends a logged request (its answer kept short) with the workload's
// headers and returns the model that answered.
func (g loopGateway) chat(r flywheel.LogRecord) string {
	g.t.Helper()
	return g.chatAs(r, "")
}

// chatAs is chat with the request's user field set (when not empty): the
// conversation the canary split hashes.
func (g loopGateway) chatAs(r flywheel.LogRecord, user string) string {
	g.t.Helper()
	var req map[string]any
	require.NoError(g.t, json.Unmarshal(r.Request, &req))
	req["max_tokens"] = 24
	if user != "" {
		req["user"] = user
	}
	body, err := json.Marshal(req)
	require.NoError(g.t, err)
	hr, err := http.NewRequest(http.MethodPost, g.base+"/v1/chat/completions", strings.NewReader(string(body)))
	require.NoError(g.t, err)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Workload-Id", r.WorkloadID)
	hr.Header.Set("X-Client-Id", r.ClientID)
	resp, err := g.http.Do(hr)
	require.NoError(g.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(g.t, err)
	require.Equal(g.t, http.StatusOK, resp.StatusCode, "gateway: %s", out)
	var answer struct {
		Model string `json:"model"`
	}
	require.NoError(g.t, json.Unmarshal(out, &answer), "%s", out)
	return answer.Model
}

// loopCandidate is the candidate of the loop's runs.
const loopCandidate = "local/tiny-xs"

// loopBundle is a serve process on the local platform whose gateway
// fronts a fake production model, after a schedule started a run on the
// traffic recorded through it and the run completed.
type loopBundle struct {
	client  *apiClient
	gw      loopGateway
	prod    *loopProduction
	serve   *child
	runID   string
	started time.Time
	// later are requests of the workload not sent yet; next is the first.
	later []flywheel.LogRecord
	next  int
}

// loopSetup starts serve with a gateway to a fake production, creates a
// schedule that fires on 50 new records, sends 60 of the demo workload's
// requests through the gateway, checks that the schedule started a run,
// deletes the schedule (the promotions' traffic would fire it again) and
// waits for the run to complete. more requests are kept for the test.
func loopSetup(t *testing.T, more int) *loopBundle {
	t.Helper()
	requireLocalE2E(t)
	b := &loopBundle{started: time.Now()}
	const records, minNew = 60, 50
	traffic, err := demo.Records(records, 42, demoWorkload, demoClient, time.Now())
	require.NoError(t, err)
	b.later, err = demo.Records(more, 43, demoWorkload, demoClient, time.Now())
	require.NoError(t, err)
	var prodSrv *httptest.Server
	b.prod, prodSrv = newLoopProduction(t, traffic, b.later)

	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	killStrays(t, dataDir)
	cfg := writeFile(t, filepath.Join(dir, "config.yaml"), `platform:
  name: local
  local:
    threads: 1
    options:
      base: random # the plumbing of the loop, not what the model learns
nims:
  - model_name: `+loopCandidate+`
    context_length: 2048
    customization_enabled: true
    customizer_configs:
      target: `+loopCandidate+`
      max_seq_length: 1024
data_split_config:
  eval_size: 8
  val_ratio: 0.1
  min_total_records: 50
  limit: 100
  random_seed: 7
icl_config:
  example_selection: uniform_distribution
  max_context_length: 2048
  reserved_tokens: 768
  max_examples: 2
training_config:
  finetuning_type: all_weights
  epochs: 1
  learning_rate: 0.003
eval:
  concurrency: 2
  max_tokens: 48
logging_config:
  format: json
engine:
  poll_interval: 500ms
  schedule_interval: 1s
capture:
  upstream_url: `+prodSrv.URL+`/v1
  promotion:
    route_refresh: 1s
    reference_share_canary: 0.1
    reference_share_full: 1
online:
  check_interval: 1s
  min_samples: 20
`)
	addr := freeAddr(t)
	b.serve = start(t, dir, "serve", "serve", "--addr", addr, "--config", cfg, "--data-dir", dataDir)
	b.client = newAPIClient(t, addr)
	b.client.waitReady(t, b.serve, 60*time.Second)
	b.gw = loopGateway{t: t, base: b.client.base, http: &http.Client{Timeout: 60 * time.Second}}

	threshold := minNew
	var sched api.Schedule
	_, err = b.client.do(http.MethodPost, "/api/schedules", api.ScheduleRequest{WorkloadID: demoWorkload, ClientID: demoClient,
		MinNewRecords: &threshold}, &sched)
	require.NoError(t, err)
	for _, r := range traffic {
		require.Equal(t, demo.ProductionModel, b.gw.chat(r), "no promotion: production answers")
	}
	var fired api.ScheduleDetail
	waited := eventually(t, 60*time.Second, 200*time.Millisecond, "the schedule fires a run", func() bool {
		_, err := b.client.do(http.MethodGet, "/api/schedules/"+sched.ID, nil, &fired)
		require.NoError(t, err)
		return slices.ContainsFunc(fired.Events, func(e api.ScheduleEvent) bool { return e.Outcome == "fired" })
	})
	i := slices.IndexFunc(fired.Events, func(e api.ScheduleEvent) bool { return e.Outcome == "fired" })
	b.runID = ptrString(fired.Events[i].RunID)
	require.NotEmpty(t, b.runID)
	t.Logf("schedule %s fired run %s %s after the last request (%s)", sched.ID, b.runID, waited.Round(time.Millisecond), fired.Events[i].Reason)
	_, err = b.client.do(http.MethodDelete, "/api/schedules/"+sched.ID, nil, nil)
	require.NoError(t, err)

	j := b.client.waitFinished(t, b.runID, 6*time.Minute)
	logStages(t, j)
	require.Equal(t, "completed", j.Status, ptrString(j.Error))
	t.Logf("run %s completed %s after the test's start", b.runID, time.Since(b.started).Round(time.Second))
	return b
}

// promote promotes the run's customized candidate and waits until it is
// served.
func (b *loopBundle) promote(t *testing.T, mode string, percent float64) api.Promotion {
	t.Helper()
	var p api.Promotion
	_, err := b.client.do(http.MethodPost, "/api/jobs/"+b.runID+"/promote",
		api.PromoteRequest{Candidate: loopCandidate, Variant: "customized", Mode: mode, CanaryPercent: percent}, &p)
	require.NoError(t, err)
	ready := eventually(t, 60*time.Second, 100*time.Millisecond, mode+" promotion served", func() bool {
		_, err := b.client.do(http.MethodGet, "/api/promotions/"+p.ID, nil, &p)
		require.NoError(t, err)
		require.Equal(t, "active", p.Status, "%s promotion ended: %s", mode, p.Reason)
		return p.Endpoint != ""
	})
	t.Logf("%s promotion %s served by %s (%s) after %s", mode, p.ID, p.Endpoint, p.ServedModel, ready.Round(time.Millisecond))
	return p
}

// online is the online report of a promotion (zero when it has none).
func (b *loopBundle) online(t *testing.T, id string) api.OnlineStats {
	t.Helper()
	var report []api.OnlineStats
	_, err := b.client.do(http.MethodGet, "/api/workloads/"+demoWorkload+"/online?client_id="+demoClient, nil, &report)
	require.NoError(t, err)
	for _, s := range report {
		if s.PromotionID == id {
			return s
		}
	}
	return api.OnlineStats{}
}

// send sends the next n requests and returns how many the candidate
// answered.
func (b *loopBundle) send(n int) (byCandidate int) {
	for range n {
		if b.gw.chat(b.later[b.next]) != demo.ProductionModel {
			byCandidate++
		}
		b.next++
	}
	return byCandidate
}

// TestLocalClosedLoop runs the closed loop on the local platform with a
// real llama-server and trainer: traffic through the gateway to a fake
// production model is recorded; a schedule (min_new_records) starts a run;
// its customized candidate is promoted in shadow mode (production answers
// every request, the candidate is scored in the background), then canary
// 20% (about a fifth of the conversations, each always to the same model),
// then full (the candidate answers). Production then starts calling tools
// the candidate never calls: the online agreement falls and the leader
// rolls the promotion back with the window's stats as evidence. The audit
// log and the dashboard's timeline of the workload hold every step in
// order. With FLYWHEEL_LOOP_SHOTS set to a directory, headless Chromium
// saves screenshots of the dashboard's pages there.
func TestLocalClosedLoop(t *testing.T) {
	b := loopSetup(t, 200)
	c := b.client
	// Production answers in sentences from now on, as the candidate does.
	b.prod.tools.Store(false)
	metric := flywheel.ScoreFunctionNameAndArgs

	// Shadow: production answers every request; each is also scored
	// against the candidate's answer in the background.
	shadow := b.promote(t, "shadow", 0)
	require.Zero(t, b.send(10), "shadow: production answers every request")
	var st api.OnlineStats
	eventually(t, 60*time.Second, 200*time.Millisecond, "10 shadow samples scored", func() bool {
		st = b.online(t, shadow.ID)
		return st.N == 10
	})
	d := st.Scores[metric]
	t.Logf("shadow: n=%d errors=%d %s %.3f [%.3f, %.3f]; candidate latency p50 %.0f ms, production %.0f ms", st.N, st.Errors, metric,
		d.Mean, d.CILow, d.CIHigh, st.CandidateLatencyMS.P50, st.ProductionLatencyMS.P50)
	require.Zero(t, st.Errors)

	// Canary 20%: about a fifth of the conversations go to the
	// candidate, and a conversation always to the same model.
	canary := b.promote(t, "canary", 20)
	first := b.next
	const canaryN = 150
	got := b.send(canaryN)
	t.Logf("canary 20%%: the candidate answered %d of %d conversations (%.1f%%)", got, canaryN, 100*float64(got)/canaryN)
	require.InDelta(t, 0.2, float64(got)/canaryN, 0.1)
	for k := first; k < first+5; k++ {
		require.Equal(t, b.gw.chat(b.later[k]), b.gw.chat(b.later[k]), "one conversation, one model")
	}

	// Full: the candidate answers; production answers too, in the
	// background, as the reference.
	full := b.promote(t, "full", 0)
	require.Equal(t, 10, b.send(10), "full: the candidate answers every request")
	eventually(t, 30*time.Second, 200*time.Millisecond, "10 full samples scored", func() bool { return b.online(t, full.ID).N == 10 })
	before := b.online(t, full.ID).Scores[metric]
	t.Logf("full before the drop: %s %.3f [%.3f, %.3f] n=%d", metric, before.Mean, before.CILow, before.CIHigh, before.N)
	require.Equal(t, "active", full.Status)

	// The quality drop: production calls the tools again, the candidate
	// does not; its agreement falls and the leader rolls it back.
	b.prod.tools.Store(true)
	drop := time.Now()
	b.send(20)
	var rolled api.Promotion
	took := eventually(t, 60*time.Second, 200*time.Millisecond, "the online monitor rolls the full promotion back", func() bool {
		_, err := c.do(http.MethodGet, "/api/promotions/"+full.ID, nil, &rolled)
		require.NoError(t, err)
		return rolled.Status == "rolled_back"
	})
	t.Logf("rolled back %s after the last request (%s after the drop): %s", took.Round(time.Millisecond),
		time.Since(drop).Round(time.Millisecond), rolled.Reason)
	var evidence flywheel.OnlineStats
	require.NoError(t, json.Unmarshal(rolled.Evidence, &evidence))
	d = evidence.Scores[metric]
	t.Logf("evidence: n=%d errors=%d %s %.3f [%.3f, %.3f] (n=%d)", evidence.N, evidence.Errors, metric, d.Mean, d.CILow, d.CIHigh, d.N)
	require.GreaterOrEqual(t, d.N, 20)
	require.Less(t, d.CIHigh, 0.8, "the evidence: the interval's upper bound below online.rollback_below")
	require.Less(t, d.Mean, before.Mean, "agreement dropped")
	require.Equal(t, demo.ProductionModel, b.gw.chat(b.later[b.next]), "rolled back: production answers")

	// The promotions replaced one another, newest first.
	var ps api.PromotionsResponse
	_, err := c.do(http.MethodGet, "/api/promotions?workload_id="+demoWorkload, nil, &ps)
	require.NoError(t, err)
	var got3 []string
	for _, p := range ps.Promotions {
		got3 = append(got3, p.ID+" "+p.Mode+" "+p.Status)
	}
	require.Equal(t, []string{full.ID + " full rolled_back", canary.ID + " canary replaced", shadow.ID + " shadow replaced"}, got3)

	// The audit log holds the loop in order; the rollback is the online
	// monitor's.
	// (The rollback's entry is written once the candidate's server has
	// stopped, moments after the promotion ended.)
	var page api.AuditPage
	eventually(t, 30*time.Second, 100*time.Millisecond, "the rollback in the audit log", func() bool {
		_, err = c.do(http.MethodGet, "/api/audit?limit=200", nil, &page)
		require.NoError(t, err)
		return len(page.Entries) > 0 && page.Entries[0].Action == flywheel.AuditPromotionRolledBack
	})
	var actions []string
	for k := len(page.Entries) - 1; k >= 0; k-- {
		e := page.Entries[k]
		t.Logf("audit %s %-22s %-10s %s", e.At.UTC().Format("15:04:05.000"), e.Action, e.Actor, e.Target)
		actions = append(actions, e.Action+" "+e.Actor)
	}
	require.Equal(t, []string{
		"schedule.created local", "job.created scheduler", "schedule.fired scheduler", "schedule.deleted local",
		"job.promoted local", "job.promoted local", "job.promoted local", "promotion.rolled_back online",
	}, actions)

	// The dashboard's timeline of the workload shows the same, with the
	// replacements and the run's end.
	resp, err := c.http.Get(c.base + "/ui/workloads/" + demoWorkload + "/timeline")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var events []string
	for _, part := range strings.Split(string(body), `<td class="event"><code>`)[1:] {
		events = append(events, part[:strings.Index(part, "</code>")])
	}
	require.Equal(t, []string{"schedule.created", "job.created", "schedule.fired", "schedule.deleted", "run.finished",
		"job.promoted", "promotion.replaced", "job.promoted", "promotion.replaced", "job.promoted", "promotion.rolled_back"}, events)
	screenshots(t, c.base, "/ui/workloads/"+demoWorkload+"/timeline", "/ui/online?workload="+demoWorkload, "/ui/audit",
		"/ui/workloads/"+demoWorkload)
	t.Logf("the loop took %s", time.Since(b.started).Round(time.Second))
	require.False(t, b.serve.exited())
}

// screenshots saves a PNG of each dashboard page in the directory
// FLYWHEEL_LOOP_SHOTS names, with headless Chromium; without it, nothing.
func screenshots(t *testing.T, base string, pages ...string) {
	t.Helper()
	dir := os.Getenv("FLYWHEEL_LOOP_SHOTS")
	if dir == "" {
		return
	}
	for i, p := range pages {
		name := filepath.Join(dir, fmt.Sprintf("%d-%s.png", i+1, strings.Trim(strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(strings.TrimPrefix(p, "/ui/")), "-")))
		out, err := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--window-size=1440,1100", "--screenshot="+name, base+p).CombinedOutput()
		require.NoError(t, err, "%s", out)
		t.Logf("screenshot of %s: %s", p, name)
	}
}

// TestLocalGatewayFigures measures the gateway through a running serve on
// the local platform (FLYWHEEL_LOOP_FIGURES=1 with FLYWHEEL_LOCAL_E2E=1):
// the latency a caller sees at p50/p99 over 1,000 sequential requests
// without a promotion and then with a shadow promotion, and over 1,000
// pairs alternating a shadowed client's call with another client's; and
// the share of 10,000 conversations a canary of 20% sends to the
// candidate. Production is
// the in-process fake (it answers in well under a millisecond), so the
// figures are the gateway's own.
func TestLocalGatewayFigures(t *testing.T) {
	if os.Getenv("FLYWHEEL_LOOP_FIGURES") != "1" {
		t.Skip("FLYWHEEL_LOOP_FIGURES=1 (with " + localE2EEnv + "=1) measures the gateway through a running serve")
	}
	const latencyN, canaryN = 1000, 10000
	b := loopSetup(t, 3*latencyN+canaryN+100)
	b.prod.tools.Store(false) // the candidate agrees: no rollback while measuring
	timed := func(n int) []time.Duration {
		out := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			b.gw.chat(b.later[b.next])
			out = append(out, time.Since(start))
			b.next++
		}
		slices.Sort(out)
		return out
	}
	pct := func(d []time.Duration, p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	b.send(50) // warm
	t.Logf("load average before: %s", loadAverage())
	none := timed(latencyN)
	t.Logf("no promotion: p50 %s p99 %s (n=%d); load average %s", pct(none, 0.5), pct(none, 0.99), len(none), loadAverage())

	shadow := b.promote(t, "shadow", 0)
	b.send(50)
	sh := timed(latencyN)
	t.Logf("shadow: p50 %s p99 %s (n=%d); load average %s", pct(sh, 0.5), pct(sh, 0.99), len(sh), loadAverage())
	t.Logf("shadow adds p50 %s, p99 %s", pct(sh, 0.5)-pct(none, 0.5), pct(sh, 0.99)-pct(none, 0.99))
	// The same, alternating with calls of a client without a promotion,
	// so that both see the same load.
	var promoted, plain []time.Duration
	for range latencyN {
		r := b.later[b.next]
		b.next++
		start := time.Now()
		b.gw.chat(r)
		promoted = append(promoted, time.Since(start))
		r.ClientID = demoClient + "-plain"
		start = time.Now()
		b.gw.chat(r)
		plain = append(plain, time.Since(start))
	}
	slices.Sort(promoted)
	slices.Sort(plain)
	t.Logf("alternating: shadow p50 %s p99 %s, no promotion p50 %s p99 %s: shadow adds p50 %s, p99 %s; load average %s",
		pct(promoted, 0.5), pct(promoted, 0.99), pct(plain, 0.5), pct(plain, 0.99),
		pct(promoted, 0.5)-pct(plain, 0.5), pct(promoted, 0.99)-pct(plain, 0.99), loadAverage())
	// The copies the candidate could not take in time were dropped, never
	// waited for; wait for the queue to drain.
	var st api.OnlineStats
	for n := -1; st.N != n; time.Sleep(2 * time.Second) {
		n = st.N
		st = b.online(t, shadow.ID)
	}
	t.Logf("shadow online window: n=%d errors=%d candidate p50 %.1f ms p99 %.1f ms; %s", st.N, st.Errors,
		st.CandidateLatencyMS.P50, st.CandidateLatencyMS.P99, b.metric(t, "flywheel_gateway_shadow_total"))

	b.promote(t, "canary", 20)
	started := time.Now()
	got := 0
	for i := range canaryN {
		if b.gw.chatAs(b.later[b.next], fmt.Sprintf("user-%d", i)) != demo.ProductionModel {
			got++
		}
		b.next++
	}
	t.Logf("canary 20%%: the candidate answered %d of %d requests of as many conversations (%.2f%%) in %s; load average %s; %s",
		got, canaryN, 100*float64(got)/canaryN, time.Since(started).Round(time.Second), loadAverage(),
		b.metric(t, "flywheel_gateway_routed_total"))
	require.InDelta(t, 0.2, float64(got)/canaryN, 0.02)
}

// metric is the lines of /metrics of a metric family, joined.
func (b *loopBundle) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := b.client.http.Get(b.client.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+"{") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "; ")
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
