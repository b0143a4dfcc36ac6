// Package capture is an OpenAI-compatible gateway that records: an
// application points its OpenAI base URL at Flywheel's /v1, and every call
// under /v1 (models, embeddings, completions, chat completions, responses,
// files, batches, audio, …; any method) is forwarded to the same path and
// query string upstream, its body streamed, and the upstream answer
// returned unchanged (status, headers and body, passed on as it arrives).
// Two calls are also recorded as a flywheel.LogRecord in the blueprint's
// log format: POST /v1/chat/completions as it is, and POST /v1/responses
// (OpenAI's Responses API) converted to a chat completion request and
// answer (see responses.go).
//
// Only the request headers an OpenAI-compatible server uses go upstream
// (Content-Type, Content-Encoding, Accept, User-Agent, OpenAI-Organization,
// OpenAI-Project, OpenAI-Beta, X-Request-ID, Idempotency-Key,
// X-Stainless-*, trace context, and Accept-Encoding on calls that are not
// recorded); never the
// caller's cookies or other credentials. Authorization is the configured
// upstream key, or the caller's only when Config.ForwardAuthorization asks
// for it. Upstream cookies (Set-Cookie) and headers that would act on
// Flywheel's own host (Alt-Svc, Strict-Transport-Security) are not passed
// back.
//
// The workload and client ids come from the X-Workload-Id and X-Client-Id
// request headers. A call without them is still forwarded; it is recorded
// under Config.DefaultWorkloadID / DefaultClientID when those are set, and
// otherwise not recorded and counted (result "missing_ids"). The two
// headers are not sent upstream.
//
// Recording never slows or breaks the application's call: records go
// through a bounded queue to a background recorder (Run) that stores them
// in batches. When the queue is full, or storing fails, the application has
// its answer anyway and the loss is counted in
// flywheel_capture_records_total. Only successful (2xx) answers are
// recorded; a streamed answer is reassembled (a chat.completion from its
// chunks: content, tool calls with their incremental arguments, usage; a
// Responses API object from its terminal event, or from its output item
// and delta events) and recorded only when the stream ended normally.
// The body of a recorded call is read whole (at most MaxBodyBytes); the
// body of any other call is streamed both ways with no size limit.
//
// The chat completions of a workload and client with an active promotion
// (Config.Routes) are answered as the promotion's mode says: shadow,
// canary or full (see route.go).
package capture

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// Headers that carry the ids of a captured call.
const (
	HeaderWorkloadID = "X-Workload-Id"
	HeaderClientID   = "X-Client-Id"
)

// Path is the chat completions route, recorded as it is.
const Path = "/v1/chat/completions"

// Defaults of Config.
const (
	QueueSizeDefault    = 4096
	BatchSizeDefault    = 256
	MaxBodyBytesDefault = 32 << 20
	DrainTimeoutDefault = 10 * time.Second
)

// Record results counted in flywheel_capture_records_total.
const (
	ResultRecorded    = "recorded"
	ResultDuplicate   = "duplicate"
	ResultStoreFailed = "store_failed" // the database failed; the record may be lost
	ResultRejected    = "rejected"     // the record cannot be stored (NUL, invalid UTF-8, too long)
	ResultQueueFull   = "queue_full"
	ResultMissingIDs  = "missing_ids"
	ResultNotRecorded = "not_recorded" // upstream error status, broken stream, unreadable answer
)

// Config configures a Proxy.
type Config struct {
	// UpstreamURL is the upstream server's base URL, without "/v1" (a
	// trailing "/v1" is tolerated).
	UpstreamURL string
	// APIKey, when set, is sent upstream as "Authorization: Bearer <key>".
	// The caller's Authorization header is never sent upstream unless
	// ForwardAuthorization is set and APIKey is empty.
	APIKey string
	// ForwardAuthorization passes the caller's Authorization header
	// upstream when there is no APIKey (each application then spends its
	// own key). Leave it off when callers authenticate to Flywheel with
	// that header.
	ForwardAuthorization bool
	// HTTPClient sends upstream requests. It should have no overall
	// Timeout (answers may stream for minutes); the default has dial, TLS
	// and response-header timeouts.
	HTTPClient *http.Client
	// Ingester stores the records.
	Ingester flywheel.LogIngester
	// Redactor, when set, redacts every record before it is stored.
	Redactor *redact.Redactor
	// Registerer receives the proxy's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
	// Now stamps records (default time.Now).
	Now flywheel.Clock
	// DefaultWorkloadID and DefaultClientID record calls that lack the id
	// headers; when empty such calls are forwarded but not recorded.
	DefaultWorkloadID string
	DefaultClientID   string
	// QueueSize bounds the records waiting to be stored (default
	// QueueSizeDefault).
	QueueSize int
	// BatchSize is the most records stored at once (default BatchSizeDefault).
	BatchSize int
	// MaxBodyBytes caps the request body of a recorded call (413 above
	// it) and the answer kept for the record (longer answers are forwarded
	// but not recorded) (default MaxBodyBytesDefault). Other calls are
	// streamed and not capped.
	MaxBodyBytes int64
	// DrainTimeout bounds storing the queued records once Run's ctx ends
	// (default DrainTimeoutDefault).
	DrainTimeout time.Duration

	// Routes, when set, gives the active promotions: chat completions of a
	// promoted workload and client go to the candidate as the promotion's
	// mode says (see route.go). Nil routes everything to the upstream.
	Routes Routes
	// Recorder receives the requests answered by both production and a
	// promoted candidate, for online scoring (nil: none are kept).
	Recorder flywheel.OnlineRecorder
	// RouteRefresh is how often the routes are reloaded (default
	// RouteRefreshDefault); RefreshRoutes reloads them at once.
	RouteRefresh time.Duration
	// CandidateAPIKey, when set, is sent to promoted candidates as
	// "Authorization: Bearer <key>".
	CandidateAPIKey string
	// ShadowQueueSize bounds the copies waiting to be sent to the other
	// model (default ShadowQueueSizeDefault; when full they are dropped
	// and counted); ShadowWorkers send them (default ShadowWorkersDefault).
	ShadowQueueSize int
	ShadowWorkers   int
	// ReferenceShareCanary and ReferenceShareFull are the shares (0–1) of
	// the requests a candidate answers that production also answers, in
	// the background, as the reference for online scoring (defaults
	// ReferenceShareCanaryDefault and ReferenceShareFullDefault; a
	// negative share sends none).
	ReferenceShareCanary float64
	ReferenceShareFull   float64
}

// Proxy is the capture proxy, an http.Handler. Run its recorder with Run.
type Proxy struct {
	upstream   string
	apiKey     string
	fwdAuth    bool
	client     *http.Client
	ingester   flywheel.LogIngester
	redactor   *redact.Redactor
	logger     *slog.Logger
	now        flywheel.Clock
	defaultWID string
	defaultCID string
	queue      chan flywheel.LogRecord
	batchSize  int
	maxBody    int64
	drain      time.Duration
	metrics    metrics
	gw         gateway
}

type metrics struct {
	requests *prometheus.CounterVec
	records  *prometheus.CounterVec
	queue    prometheus.GaugeFunc
}

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	base := strings.TrimSuffix(strings.TrimRight(strings.TrimSpace(cfg.UpstreamURL), "/"), "/v1")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, flywheel.Errorf(flywheel.EINVALID, "capture: upstream URL %q is not an http(s) URL", cfg.UpstreamURL)
	}
	if cfg.Ingester == nil {
		return nil, flywheel.Errorf(flywheel.EINVALID, "capture: no ingester")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Minute,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   512,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		upstream:   base,
		apiKey:     cfg.APIKey,
		fwdAuth:    cfg.ForwardAuthorization,
		client:     client,
		ingester:   cfg.Ingester,
		redactor:   cfg.Redactor,
		logger:     logger.With("component", "capture"),
		now:        cfg.Now,
		defaultWID: cfg.DefaultWorkloadID,
		defaultCID: cfg.DefaultClientID,
		queue:      make(chan flywheel.LogRecord, cmp.Or(cfg.QueueSize, QueueSizeDefault)),
		batchSize:  cmp.Or(cfg.BatchSize, BatchSizeDefault),
		maxBody:    cmp.Or(cfg.MaxBodyBytes, MaxBodyBytesDefault),
		drain:      cmp.Or(cfg.DrainTimeout, DrainTimeoutDefault),
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.metrics = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_capture_requests_total",
			Help: "Calls through the capture proxy (every /v1 path), by outcome (forwarded, upstream_error, bad_request).",
		}, []string{"outcome"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_capture_records_total",
			Help: "Captured calls by recording result (recorded, duplicate, rejected, store_failed, queue_full, missing_ids, not_recorded).",
		}, []string{"result"}),
		queue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flywheel_capture_queue_length",
			Help: "Captured records waiting to be stored.",
		}, func() float64 { return float64(len(p.queue)) }),
	}
	for _, r := range []string{ResultRecorded, ResultDuplicate, ResultRejected, ResultStoreFailed, ResultQueueFull, ResultMissingIDs, ResultNotRecorded} {
		p.metrics.records.WithLabelValues(r)
	}
	p.gw.init(cfg)
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.metrics.requests, p.metrics.records, p.metrics.queue,
			p.gw.routed, p.gw.shadow, p.gw.fallback} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register capture metrics: %w", err)
			}
		}
	}
	return p, nil
}

// forwardRequestHeader reports whether a caller's request header goes
// upstream: only what an OpenAI-compatible server uses, never the caller's
// cookies, credentials for Flywheel or other services (X-Api-Key,
// Proxy-Authorization), its Host, or the id headers. Authorization is
// handled apart. Accept-Encoding is left to the HTTP client, which asks
// for gzip and decompresses, so the answer can be read for the record.
func forwardRequestHeader(name string) bool {
	switch k := http.CanonicalHeaderKey(name); k {
	case "Content-Type", "Content-Encoding", "Accept", "User-Agent", "Openai-Organization", "Openai-Project", "Openai-Beta",
		"X-Request-Id", "Idempotency-Key", "Traceparent", "Tracestate":
		return true
	default:
		return strings.HasPrefix(k, "X-Stainless-") // the OpenAI SDKs' client description and retry count
	}
}

// forwardResponseHeader reports whether an upstream answer's header goes
// back to the caller. Hop-by-hop headers are the connection's, not the
// answer's. The others that are dropped would act on Flywheel's own
// origin, where the proxy is served next to the dashboard: Set-Cookie
// could overwrite its login cookie (no OpenAI-compatible client needs
// upstream cookies: the upstream's are load-balancer cookies), Alt-Svc
// and Strict-Transport-Security would tell browsers how to reach
// Flywheel's host.
func forwardResponseHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length",
		"Set-Cookie", "Set-Cookie2", "Alt-Svc", "Strict-Transport-Security":
		return false
	}
	return true
}

// kind is what the proxy does with a call.
type kind int

const (
	passThrough   kind = iota // forwarded, not recorded
	chatKind                  // POST /v1/chat/completions: recorded as it is
	responsesKind             // POST /v1/responses: recorded in the chat log format
)

// classify returns what r is: only POST /v1/chat/completions and POST
// /v1/responses are recorded; every other path and method under /v1 is
// passed through.
func classify(r *http.Request) kind {
	if r.Method != http.MethodPost {
		return passThrough
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case Path:
		return chatKind
	case ResponsesPath:
		return responsesKind
	}
	return passThrough
}

// ServeHTTP forwards one call to the same path upstream (query string
// kept) and, for a chat completion or a Responses API call, queues its
// record.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := classify(r)
	if k == passThrough {
		p.passThrough(w, r)
		return
	}
	start := p.now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.maxBody))
	if err != nil {
		p.metrics.requests.WithLabelValues("bad_request").Inc()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", fmt.Sprintf("request body over %d bytes", p.maxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", "read request body: "+err.Error())
		return
	}
	wid := cmp.Or(r.Header.Get(HeaderWorkloadID), p.defaultWID)
	cid := cmp.Or(r.Header.Get(HeaderClientID), p.defaultCID)
	if k == chatKind && wid != "" && cid != "" {
		if rt := p.gw.lookup(wid, cid); rt != nil {
			p.serveRouted(w, r, body, rt, start)
			return
		}
	}
	p.forward(w, r, k, body, start, wid, cid)
}

// forward sends a recorded call upstream (production), relays the answer
// and queues its record. It returns the answer when it was complete and
// successful.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, k kind, body []byte, start time.Time, wid, cid string) (json.RawMessage, bool) {
	resp, ok := p.send(w, r, bytes.NewReader(body), int64(len(body)), false)
	if !ok {
		p.count(ResultNotRecorded)
		return nil, false
	}
	defer resp.Body.Close()
	p.writeHeader(w, resp)
	return p.relayAndRecord(w, r, resp, k, body, start, wid, cid)
}

// relayAndRecord relays an answer to the caller and queues the record of
// the call; it returns the answer when it was complete and successful.
func (p *Proxy) relayAndRecord(w http.ResponseWriter, r *http.Request, resp *http.Response, k kind, body []byte, start time.Time, wid, cid string) (json.RawMessage, bool) {

	ok2xx := resp.StatusCode >= 200 && resp.StatusCode < 300
	var answer json.RawMessage
	var complete bool
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var sink streamSink = &chatStream{asm: newAssembler()}
		if k == responsesKind {
			sink = newResponsesStream()
		}
		answer, complete = p.relayStream(w, resp.Body, ok2xx, sink)
	} else {
		answer, complete = p.relay(w, resp.Body, ok2xx)
	}
	if !ok2xx || !complete {
		p.count(ResultNotRecorded)
		return nil, false
	}
	if wid == "" || cid == "" {
		p.count(ResultMissingIDs)
		return answer, true
	}
	if !json.Valid(body) || !isObject(body) || !isObject(answer) {
		p.count(ResultNotRecorded)
		return nil, false
	}
	if k == responsesKind {
		req, err := responsesRequestToChat(body)
		if err == nil {
			answer, err = responsesToChatCompletion(answer)
		}
		if err != nil {
			p.logger.DebugContext(r.Context(), "Responses API call not recorded", slog.String("error", err.Error()))
			p.count(ResultNotRecorded)
			return nil, false
		}
		body = req
	}
	rec := flywheel.LogRecord{
		WorkloadID: wid,
		ClientID:   cid,
		Timestamp:  start.UTC(),
		Request:    ingest.Canonical(body),
		Response:   ingest.Canonical(answer),
	}
	select {
	case p.queue <- rec:
	default:
		p.count(ResultQueueFull)
	}
	return answer, true
}

// passThrough forwards a call that is not recorded: the request body is
// streamed upstream and the answer streamed back as it arrives, whatever
// its size, with the caller's Accept-Encoding so compressed answers pass
// as they are.
func (p *Proxy) passThrough(w http.ResponseWriter, r *http.Request) {
	// Let the upstream answer before the whole upload is read (a refused
	// file upload); not every connection supports it.
	_ = http.NewResponseController(w).EnableFullDuplex()
	var body io.Reader = r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	resp, ok := p.send(w, r, body, r.ContentLength, true)
	if !ok {
		return
	}
	defer resp.Body.Close()
	p.writeHeader(w, resp)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// send forwards r upstream with body, to the same path and query string,
// with the headers forwardRequestHeader allows and the upstream
// credentials. On failure it answers the caller (502) and returns false.
func (p *Proxy) send(w http.ResponseWriter, r *http.Request, body io.Reader, size int64, encoding bool) (*http.Response, bool) {
	target := p.upstream + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	up, err := http.NewRequestWithContext(r.Context(), r.Method, target, body)
	if err != nil {
		p.metrics.requests.WithLabelValues("upstream_error").Inc()
		writeError(w, http.StatusBadGateway, "upstream_error", "build upstream request: "+err.Error())
		return nil, false
	}
	up.ContentLength = size
	if size == 0 {
		up.Body = http.NoBody
	}
	for k, vs := range r.Header {
		if forwardRequestHeader(k) || (encoding && http.CanonicalHeaderKey(k) == "Accept-Encoding") {
			up.Header[k] = vs
		}
	}
	switch {
	case p.apiKey != "":
		up.Header.Set("Authorization", "Bearer "+p.apiKey)
	case p.fwdAuth && r.Header.Get("Authorization") != "":
		up.Header.Set("Authorization", r.Header.Get("Authorization"))
	}
	resp, err := p.client.Do(up)
	if err != nil {
		p.metrics.requests.WithLabelValues("upstream_error").Inc()
		if r.Context().Err() == nil {
			p.logger.WarnContext(r.Context(), "Upstream call failed", slog.String("method", r.Method),
				slog.String("path", clipID(r.URL.Path)), slog.String("error", err.Error()))
			writeError(w, http.StatusBadGateway, "upstream_error", "upstream: "+err.Error())
		}
		return nil, false
	}
	p.metrics.requests.WithLabelValues("forwarded").Inc()
	return resp, true
}

// writeHeader passes the upstream status and headers back.
func (p *Proxy) writeHeader(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		if forwardResponseHeader(k) {
			w.Header()[k] = vs
		}
	}
	if resp.ContentLength >= 0 && !resp.Uncompressed {
		w.Header().Set("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	w.WriteHeader(resp.StatusCode)
}

// relay copies a plain answer to the client, keeping a copy of it (up to
// maxBody) when it will be recorded.
func (p *Proxy) relay(w http.ResponseWriter, body io.Reader, keep bool) (json.RawMessage, bool) {
	var buf bytes.Buffer
	var dst io.Writer = w
	capped := &capWriter{buf: &buf, max: p.maxBody}
	if keep {
		dst = io.MultiWriter(w, capped)
	}
	if _, err := io.Copy(dst, body); err != nil {
		return nil, false
	}
	return buf.Bytes(), keep && !capped.over
}

// streamSink rebuilds the answer a server-sent event stream carries.
type streamSink interface {
	// add folds one event's data in; false when it cannot be read.
	add(data []byte) bool
	// result returns the rebuilt answer; false when the stream did not end
	// normally.
	result() (json.RawMessage, bool)
}

// chatStream rebuilds a chat.completion from its chunks.
type chatStream struct {
	asm  *assembler
	done bool
}

func (c *chatStream) add(data []byte) bool {
	if string(data) == "[DONE]" {
		c.done = true
		return true
	}
	return c.asm.add(data)
}

func (c *chatStream) result() (json.RawMessage, bool) {
	if !c.done && !c.asm.finished() {
		return nil, false
	}
	out, err := c.asm.completion()
	return out, err == nil
}

// relayStream copies a server-sent event stream to the client event by
// event, flushing each, and rebuilds the answer it carries with sink.
func (p *Proxy) relayStream(w http.ResponseWriter, body io.Reader, keep bool, sink streamSink) (json.RawMessage, bool) {
	flusher, _ := w.(http.Flusher)
	rc := http.NewResponseController(w)
	br := bufio.NewReaderSize(body, 64<<10)
	var size int64
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A very long line: pass it through in pieces, and give up
			// reassembling it.
			if _, werr := w.Write(line); werr != nil {
				return nil, false
			}
			keep = false
			continue
		}
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return nil, false
			}
			trimmed := bytes.TrimRight(line, "\r\n")
			if len(trimmed) == 0 {
				if flusher != nil {
					_ = rc.Flush()
				}
			} else if keep {
				size += int64(len(trimmed))
				if size > p.maxBody {
					keep = false
				}
				if data, ok := bytes.CutPrefix(trimmed, []byte("data:")); ok {
					if !sink.add(bytes.TrimSpace(data)) {
						keep = false
					}
				}
			}
		}
		if err != nil {
			if flusher != nil {
				_ = rc.Flush()
			}
			if !errors.Is(err, io.EOF) {
				return nil, false
			}
			break
		}
	}
	if !keep {
		return nil, false
	}
	return sink.result()
}

// Run stores queued records until ctx ends, then stores what is still
// queued (within Config.DrainTimeout) and returns nil. Run it once.
func (p *Proxy) Run(ctx context.Context) error {
	stop := p.runGateway(ctx)
	defer stop()
	batch := make([]flywheel.LogRecord, 0, p.batchSize)
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.drain)
			defer cancel()
			for {
				batch = batch[:0]
				for len(batch) < p.batchSize {
					select {
					case rec := <-p.queue:
						batch = append(batch, rec)
						continue
					default:
					}
					break
				}
				if len(batch) == 0 {
					return nil
				}
				p.store(dctx, batch)
			}
		case rec := <-p.queue:
			batch = append(batch[:0], rec)
		fill:
			for len(batch) < p.batchSize {
				select {
				case rec := <-p.queue:
					batch = append(batch, rec)
				default:
					break fill
				}
			}
			p.store(ctx, batch)
		}
	}
}

func (p *Proxy) store(ctx context.Context, batch []flywheel.LogRecord) {
	p.redactor.Batch(redact.PathCapture, batch)
	inserted, dups, err := p.ingester.InsertLogs(ctx, batch)
	var recErrs *flywheel.RecordErrors
	if errors.As(err, &recErrs) {
		// The other records of the batch are stored; each refused one is
		// counted and named, never the whole batch.
		p.metrics.records.WithLabelValues(ResultRejected).Add(float64(len(recErrs.Items)))
		for _, it := range recErrs.Items {
			attrs := []any{slog.String("field", it.Field), slog.String("reason", it.Reason)}
			if it.Index >= 0 && it.Index < len(batch) {
				r := batch[it.Index]
				attrs = append(attrs, slog.String("workload_id", clipID(r.WorkloadID)), slog.String("client_id", clipID(r.ClientID)),
					slog.Time("timestamp", r.Timestamp))
			}
			p.logger.WarnContext(ctx, "Captured record rejected: it cannot be stored", attrs...)
		}
		err = nil
	}
	if err != nil {
		p.metrics.records.WithLabelValues(ResultStoreFailed).Add(float64(len(batch)))
		p.logger.WarnContext(ctx, "Storing captured records failed", slog.Int("records", len(batch)), slog.String("error", err.Error()))
		return
	}
	p.metrics.records.WithLabelValues(ResultRecorded).Add(float64(inserted))
	p.metrics.records.WithLabelValues(ResultDuplicate).Add(float64(dups))
}

func (p *Proxy) count(result string) { p.metrics.records.WithLabelValues(result).Inc() }

// clipID shortens an id for a log line (a rejected one may be huge).
func clipID(s string) string {
	const max = 64
	if len(s) > max {
		return strings.ToValidUTF8(s[:max], "?") + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// capWriter keeps up to max bytes and notes when more came.
type capWriter struct {
	buf  *bytes.Buffer
	max  int64
	over bool
}

func (c *capWriter) Write(b []byte) (int, error) {
	if !c.over {
		if int64(c.buf.Len()+len(b)) > c.max {
			c.over = true
			c.buf.Reset()
		} else {
			c.buf.Write(b)
		}
	}
	return len(b), nil
}

// writeError sends an OpenAI-style error.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ}})
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}
