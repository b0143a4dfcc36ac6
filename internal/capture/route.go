package capture

// Routing to promoted candidates.
//
// A workload and client with an active promotion (Config.Routes) have
// their chat completions answered as the promotion's mode says:
//
//   - shadow: production answers, as without a promotion; once it has, a
//     copy of the request goes to the candidate in the background and both
//     answers go to Config.Recorder. The caller waits for nothing more.
//   - canary: a stable hash of the conversation (the request's "user"
//     field, else its first user message, with the client id) picks the
//     CanaryPercent of conversations the candidate answers; a
//     conversation always gets the same model.
//   - full: the candidate answers every request.
//
// A request the candidate answers has its "model" rewritten to the
// promotion's served model (and, for the icl variant, the run's few-shot
// examples put before its messages); it is recorded like any other, its
// answer naming the model that gave it. A share of those requests
// (ReferenceShareCanary, ReferenceShareFull) is also sent to production
// in the background as the reference for online scoring. When the
// candidate fails (no answer, or an error status) production answers that
// request and the fallback is counted. Streamed requests stream in every
// mode; the background copies are sent unstreamed.
//
// The background copies go through a bounded queue to a pool of workers;
// when the queue is full the copy is dropped and counted, never waited for.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults of the gateway's Config fields.
const (
	RouteRefreshDefault         = 5 * time.Second
	ShadowQueueSizeDefault      = 1024
	ShadowWorkersDefault        = 8
	ReferenceShareCanaryDefault = 1.0
	ReferenceShareFullDefault   = 0.1
	// shadowTimeout bounds one background copy.
	shadowTimeout = 5 * time.Minute
	// maxAnswerBytes caps a background answer kept for scoring.
	maxAnswerBytes = 32 << 20
)

// Who answered a request, as the routed metric's model label says when
// production did.
const answeredByProduction = "production"

// Results of the background copies counted in flywheel_gateway_shadow_total.
const (
	ShadowSent    = "sent"
	ShadowDropped = "dropped" // the queue was full
	ShadowFailed  = "failed"  // the other model gave no answer
)

// Routes gives the active promotions; *store.Store implements it.
type Routes interface {
	ActivePromotions(ctx context.Context) ([]flywheel.PromotionRoute, error)
}

// route is an active promotion that can take traffic.
type route struct {
	flywheel.PromotionRoute
	// threshold is the canary's share in hash buckets (of 10,000).
	threshold uint64
}

type routeKey struct{ workload, client string }

// copyJob is a background copy: the request that one model answered, to
// be sent to the other.
type copyJob struct {
	rt   *route
	body []byte
	// header holds the caller's headers that go upstream.
	header http.Header
	auth   string
	// byCandidate says the candidate answered (production gets the copy).
	byCandidate bool
	answer      json.RawMessage
	latency     time.Duration
	at          time.Time
}

// gateway is the proxy's routing state.
type gateway struct {
	routes       Routes
	recorder     flywheel.OnlineRecorder
	refresh      time.Duration
	candidateKey string
	workers      int
	shareCanary  float64
	shareFull    float64
	table        atomic.Pointer[map[routeKey]*route]
	copies       chan copyJob
	routed       *prometheus.CounterVec
	shadow       *prometheus.CounterVec
	fallback     *prometheus.CounterVec
}

func share(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return min(v, 1)
}

func (g *gateway) init(cfg Config) {
	*g = gateway{
		routes:       cfg.Routes,
		recorder:     cfg.Recorder,
		refresh:      cfg.RouteRefresh,
		candidateKey: cfg.CandidateAPIKey,
		workers:      cfg.ShadowWorkers,
		shareCanary:  share(cfg.ReferenceShareCanary, ReferenceShareCanaryDefault),
		shareFull:    share(cfg.ReferenceShareFull, ReferenceShareFullDefault),
		copies:       make(chan copyJob, cmp.Or(max(cfg.ShadowQueueSize, 0), ShadowQueueSizeDefault)),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_gateway_routed_total",
			Help: "Chat completions of promoted workloads, by workload, the model that answered (the candidate, or production) and the promotion's mode.",
		}, []string{"workload", "model", "mode"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_gateway_shadow_total",
			Help: "Background copies of promoted workloads' requests sent to the model that did not answer (sent, dropped when the queue was full, failed).",
		}, []string{"result"}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_gateway_fallback_total",
			Help: "Requests a promoted candidate failed to answer, answered by production instead, by workload.",
		}, []string{"workload"}),
	}
	if g.refresh <= 0 {
		g.refresh = RouteRefreshDefault
	}
	if g.workers <= 0 {
		g.workers = ShadowWorkersDefault
	}
	for _, r := range []string{ShadowSent, ShadowDropped, ShadowFailed} {
		g.shadow.WithLabelValues(r)
	}
	empty := map[routeKey]*route{}
	g.table.Store(&empty)
}

// lookup returns the route of a workload and client, or nil.
func (g *gateway) lookup(workload, client string) *route {
	if g.routes == nil {
		return nil
	}
	return (*g.table.Load())[routeKey{workload, client}]
}

// RefreshRoutes reloads the active promotions now (call it after a
// promotion starts or ends, so the change applies to the next request).
func (p *Proxy) RefreshRoutes(ctx context.Context) error {
	g := &p.gw
	if g.routes == nil {
		return nil
	}
	active, err := g.routes.ActivePromotions(ctx)
	if err != nil {
		return fmt.Errorf("load promotions: %w", err)
	}
	table := make(map[routeKey]*route, len(active))
	for _, a := range active {
		if a.Endpoint == "" {
			continue // not serving yet: production answers
		}
		table[routeKey{a.WorkloadID, a.ClientID}] = &route{PromotionRoute: a, threshold: uint64(a.CanaryPercent*100 + 0.5)}
	}
	g.table.Store(&table)
	return nil
}

// runGateway starts the route refresher and the copy workers; the
// function it returns waits for them once ctx has ended.
func (p *Proxy) runGateway(ctx context.Context) func() {
	g := &p.gw
	var wg sync.WaitGroup
	if g.routes != nil {
		if err := p.RefreshRoutes(ctx); err != nil {
			p.logger.WarnContext(ctx, "Loading the promotions failed; production answers until they load", slog.String("error", err.Error()))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(g.refresh)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := p.RefreshRoutes(ctx); err != nil && ctx.Err() == nil {
					p.logger.WarnContext(ctx, "Reloading the promotions failed; the last ones stay", slog.String("error", err.Error()))
				}
			}
		}()
	}
	for range g.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-g.copies:
					p.sendCopy(ctx, job)
				}
			}
		}()
	}
	return wg.Wait
}

// conversation is what the canary hash reads of a request.
type conversation struct {
	User     string `json:"user"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// canaryBucket places a conversation in one of 10,000 buckets: by its
// "user" field when it has one, else by its first user message, with the
// client id.
func canaryBucket(body []byte, client string) uint64 {
	var c conversation
	_ = json.Unmarshal(body, &c)
	h := fnv.New64a()
	_, _ = io.WriteString(h, client)
	_, _ = h.Write([]byte{0})
	if c.User != "" {
		_, _ = io.WriteString(h, "user:"+c.User)
	} else {
		for _, m := range c.Messages {
			if m.Role == "user" {
				_, _ = h.Write(m.Content)
				break
			}
		}
	}
	// FNV's low bits are weak on similar inputs; mix them (splitmix64).
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x % 10000
}

// CanaryChoosesCandidate reports whether a canary of percent (0–100)
// gives the conversation of body and client to the candidate. The same
// conversation always gets the same answer.
func CanaryChoosesCandidate(body []byte, client string, percent float64) bool {
	return canaryBucket(body, client) < uint64(percent*100+0.5)
}

// serveRouted answers a chat completion of a promoted workload.
func (p *Proxy) serveRouted(w http.ResponseWriter, r *http.Request, body []byte, rt *route, start time.Time) {
	g := &p.gw
	wid, cid := rt.WorkloadID, rt.ClientID
	mode := string(rt.Mode)
	if rt.Mode == flywheel.ModeShadow {
		answer, ok := p.forward(w, r, chatKind, body, start, wid, cid)
		g.routed.WithLabelValues(wid, answeredByProduction, mode).Inc()
		if ok {
			p.queueCopy(copyJob{rt: rt, body: body, header: upstreamHeader(r), auth: p.callerAuth(r), answer: answer,
				latency: p.now().Sub(start), at: start})
		}
		return
	}
	if rt.Mode == flywheel.ModeFull || canaryBucket(body, cid) < rt.threshold {
		if answer, ok, answered := p.answerWithCandidate(w, r, body, rt, start); answered {
			g.routed.WithLabelValues(wid, rt.Candidate, mode).Inc()
			shareOf := g.shareCanary
			if rt.Mode == flywheel.ModeFull {
				shareOf = g.shareFull
			}
			if ok && shareOf > 0 && rand.Float64() < shareOf {
				p.queueCopy(copyJob{rt: rt, body: body, header: upstreamHeader(r), auth: p.callerAuth(r), byCandidate: true,
					answer: answer, latency: p.now().Sub(start), at: start})
			}
			return
		}
		g.fallback.WithLabelValues(wid).Inc()
	}
	p.forward(w, r, chatKind, body, start, wid, cid)
	g.routed.WithLabelValues(wid, answeredByProduction, mode).Inc()
}

// answerWithCandidate sends the request to the candidate and, when it
// answers with a success status, relays and records its answer: answered
// is true. When it does not, nothing has been written and production
// should answer.
func (p *Proxy) answerWithCandidate(w http.ResponseWriter, r *http.Request, body []byte, rt *route, start time.Time) (json.RawMessage, bool, bool) {
	cbody, err := candidateBody(body, rt, false)
	if err != nil {
		p.logger.DebugContext(r.Context(), "Request not sent to the candidate", slog.String("error", err.Error()))
		return nil, false, false
	}
	up, err := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimRight(rt.Endpoint, "/")+Path, bytes.NewReader(cbody))
	if err != nil {
		return nil, false, false
	}
	up.Header = upstreamHeader(r)
	if p.gw.candidateKey != "" {
		up.Header.Set("Authorization", "Bearer "+p.gw.candidateKey)
	}
	resp, err := p.client.Do(up)
	if err != nil {
		if r.Context().Err() == nil {
			p.logger.WarnContext(r.Context(), "Promoted candidate failed; production answers", slog.String("promotion_id", rt.ID),
				slog.String("error", err.Error()))
		}
		return nil, false, false
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		p.logger.WarnContext(r.Context(), "Promoted candidate answered an error; production answers", slog.String("promotion_id", rt.ID),
			slog.Int("status", resp.StatusCode), slog.String("body", string(msg)))
		return nil, false, false
	}
	p.writeHeader(w, resp)
	answer, ok := p.relayAndRecord(w, r, resp, chatKind, body, start, rt.WorkloadID, rt.ClientID)
	return answer, ok, true
}

// queueCopy queues a background copy, or drops and counts it when the
// queue is full.
func (p *Proxy) queueCopy(job copyJob) {
	if p.gw.recorder == nil {
		return
	}
	select {
	case p.gw.copies <- job:
	default:
		p.gw.shadow.WithLabelValues(ShadowDropped).Inc()
	}
}

// sendCopy sends a background copy to the model that did not answer and
// gives both answers to the recorder.
func (p *Proxy) sendCopy(ctx context.Context, job copyJob) {
	ctx, cancel := context.WithTimeout(ctx, shadowTimeout)
	defer cancel()
	rt := job.rt
	var (
		target, auth string
		body         []byte
		err          error
	)
	if job.byCandidate {
		target, auth = p.upstream+Path, job.auth
		body, err = candidateBody(job.body, nil, true)
	} else {
		target = strings.TrimRight(rt.Endpoint, "/") + Path
		if p.gw.candidateKey != "" {
			auth = "Bearer " + p.gw.candidateKey
		}
		body, err = candidateBody(job.body, rt, true)
	}
	s := flywheel.OnlineSample{PromotionID: rt.ID, WorkloadID: rt.WorkloadID, ClientID: rt.ClientID, Model: rt.Candidate,
		Request: job.body, At: job.at.UTC()}
	var answer json.RawMessage
	var latency time.Duration
	if err == nil {
		answer, latency, err = p.call(ctx, target, auth, job.header, body)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // shutting down
		}
		p.gw.shadow.WithLabelValues(ShadowFailed).Inc()
		if !job.byCandidate {
			// The candidate's failure is part of its record.
			s.Production, s.ProductionLatency = job.answer, job.latency
			s.CandidateError, s.CandidateLatency = err.Error(), latency
			p.gw.recorder.Record(ctx, s)
		}
		return
	}
	p.gw.shadow.WithLabelValues(ShadowSent).Inc()
	if job.byCandidate {
		s.Production, s.ProductionLatency, s.Candidate, s.CandidateLatency = answer, latency, job.answer, job.latency
	} else {
		s.Production, s.ProductionLatency, s.Candidate, s.CandidateLatency = job.answer, job.latency, answer, latency
	}
	p.gw.recorder.Record(ctx, s)
}

// call posts a chat completion and returns its answer.
func (p *Proxy) call(ctx context.Context, target, auth string, header http.Header, body []byte) (json.RawMessage, time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Del("Accept")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, time.Since(start), err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	latency := time.Since(start)
	if err != nil {
		return nil, latency, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, latency, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(out[:min(len(out), 300)]))
	}
	if !isObject(out) || !json.Valid(out) {
		return nil, latency, errors.New("the answer is not a JSON object")
	}
	return out, latency, nil
}

// upstreamHeader is the caller's headers that go upstream.
func upstreamHeader(r *http.Request) http.Header {
	h := http.Header{}
	for k, vs := range r.Header {
		if forwardRequestHeader(k) {
			h[k] = vs
		}
	}
	return h
}

// callerAuth is the Authorization production is sent.
func (p *Proxy) callerAuth(r *http.Request) string {
	switch {
	case p.apiKey != "":
		return "Bearer " + p.apiKey
	case p.fwdAuth:
		return r.Header.Get("Authorization")
	}
	return ""
}

// candidateBody rewrites a request for the candidate of rt: its served
// model, and the run's few-shot examples for the icl variant. With rt nil
// the body goes to production as it is, but for unstream. unstream asks
// for a plain answer (background copies).
func candidateBody(body []byte, rt *route, unstream bool) ([]byte, error) {
	if rt == nil && !unstream {
		return body, nil
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	if rt != nil {
		model, _ := json.Marshal(rt.ServedModel)
		req["model"] = model
		if rt.Variant == flywheel.VariantICL && rt.ICLPrompt != "" {
			msgs, err := withExamples(req["messages"], rt.ICLPrompt)
			if err != nil {
				return nil, err
			}
			req["messages"] = msgs
		}
	}
	if unstream {
		delete(req, "stream")
		delete(req, "stream_options")
	}
	return json.Marshal(req)
}

// withExamples puts the few-shot block before the messages' system
// message (as the ICL evaluation did), or as a system message first.
func withExamples(raw json.RawMessage, block string) (json.RawMessage, error) {
	var msgs []map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, fmt.Errorf("decode messages: %w", err)
		}
	}
	for _, m := range msgs {
		var role, content string
		if json.Unmarshal(m["role"], &role) != nil || role != "system" {
			continue
		}
		if json.Unmarshal(m["content"], &content) != nil {
			break // structured content: add a system message of its own
		}
		m["content"], _ = json.Marshal(block + "\n\n" + content)
		return json.Marshal(msgs)
	}
	sys := map[string]json.RawMessage{"role": json.RawMessage(`"system"`)}
	sys["content"], _ = json.Marshal(block)
	return json.Marshal(append([]map[string]json.RawMessage{sys}, msgs...))
}
