package openai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults applied by New to zero Config fields.
const (
	TimeoutDefault        = 120 * time.Second
	MaxRetriesDefault     = 3
	RetryBaseDelayDefault = 250 * time.Millisecond
	RetryMaxDelayDefault  = 20 * time.Second
	// EmbedBatchSizeDefault is the blueprint's embedding batch size.
	EmbedBatchSizeDefault = 32
	// MaxIdleConnsPerHostDefault sizes the connection pool of the transport
	// New builds when no HTTPClient is given.
	MaxIdleConnsPerHostDefault = 512
	// RetryAfterMax caps how long a Retry-After header can make a retry wait.
	RetryAfterMax = time.Minute
	// maxErrorBody caps how much of an error reply is kept.
	maxErrorBody = 4 << 10
)

// Config configures a Client.
type Config struct {
	// BaseURL is the server's base, without "/v1" (for example
	// "http://127.0.0.1:8080"). A trailing "/v1" is tolerated and removed.
	BaseURL string
	// APIKey, when set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// HTTPClient sends the requests. When nil, New builds one with a
	// pooled transport (MaxIdleConnsPerHostDefault) and no overall timeout:
	// Timeout bounds each attempt instead.
	HTTPClient *http.Client
	// Timeout bounds one HTTP attempt, reading the reply included
	// (TimeoutDefault when zero; negative disables it).
	Timeout time.Duration
	// MaxRetries is how many times a failed attempt is retried
	// (MaxRetriesDefault when zero; negative disables retries).
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// Header holds extra headers sent with every request.
	Header http.Header
	// Logger receives a debug line per retry; nil discards.
	Logger *slog.Logger
}

// Client talks to one OpenAI-compatible server. It is safe for concurrent
// use.
type Client struct {
	base       string
	apiKey     string
	http       *http.Client
	timeout    time.Duration
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	header     http.Header
	logger     *slog.Logger
	bufs       sync.Pool
}

// New returns a Client for cfg. It fails when BaseURL is empty or not an
// http(s) URL.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	base = strings.TrimSuffix(base, "/v1")
	if base == "" {
		return nil, flywheel.Errorf(flywheel.EINVALID, "openai: base URL is empty")
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, flywheel.Errorf(flywheel.EINVALID, "openai: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	c := &Client{
		base:      base,
		apiKey:    cfg.APIKey,
		http:      cfg.HTTPClient,
		timeout:   cmp.Or(cfg.Timeout, TimeoutDefault),
		baseDelay: cmp.Or(cfg.RetryBaseDelay, RetryBaseDelayDefault),
		maxDelay:  cmp.Or(cfg.RetryMaxDelay, RetryMaxDelayDefault),
		header:    cfg.Header,
		logger:    cfg.Logger,
	}
	c.maxRetries = cmp.Or(cfg.MaxRetries, MaxRetriesDefault)
	if c.maxRetries < 0 {
		c.maxRetries = 0
	}
	if c.http == nil {
		c.http = &http.Client{Transport: NewTransport()}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.bufs.New = func() any { return new(bytes.Buffer) }
	return c, nil
}

// NewTransport returns an http.Transport tuned for many concurrent
// requests to one host.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          MaxIdleConnsPerHostDefault,
		MaxIdleConnsPerHost:   MaxIdleConnsPerHostDefault,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the server's base URL, without "/v1".
func (c *Client) BaseURL() string { return c.base }

// APIError is a non-2xx reply.
type APIError struct {
	Method     string
	URL        string
	StatusCode int
	// Message is the server's error message when the body has one.
	Message string
	// Body is the start of the reply body.
	Body string
	// RetryAfter is the delay the server asked for, if any.
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Body
	}
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.URL, e.StatusCode, msg)
}

// Temporary reports whether retrying may succeed (408, 429 and 5xx), except
// a 500 that reports the model's own output as unparseable (llama.cpp's
// tool-call parser answers so): that is a wrong answer, not an outage.
func (e *APIError) Temporary() bool {
	if e.StatusCode == http.StatusInternalServerError && modelOutputError(e.Message+" "+e.Body) {
		return false
	}
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsModelOutputError reports whether err is a server's refusal of the
// model's own output (it could not parse it as the tool call or format the
// request asked for): a wrong answer of the model, not a failed request.
func IsModelOutputError(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusInternalServerError && modelOutputError(apiErr.Message+" "+apiErr.Body)
}

// IsTimeout reports whether err is a request whose last attempt ran past
// the client's per-attempt timeout.
func IsTimeout(err error) bool {
	return errors.Is(err, errAttemptTimeout)
}

// modelOutputError reports whether a server error message says the model
// produced output the server could not parse.
func modelOutputError(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "model produced output") || strings.Contains(msg, "failed to parse tool call") ||
		strings.Contains(msg, "does not match the expected")
}

// Unwrap returns flywheel.ErrPermanent for replies that retrying cannot fix.
func (e *APIError) Unwrap() error {
	if e.Temporary() {
		return nil
	}
	return flywheel.ErrPermanent
}

// ChatRaw sends body, a chat completion request as JSON, to
// /v1/chat/completions without changing it. A reply served as server-sent
// events is reassembled into one ChatResponse.
func (c *Client) ChatRaw(ctx context.Context, body []byte) (*ChatResponse, error) {
	var out *ChatResponse
	attempts, err := c.do(ctx, http.MethodPost, "/v1/chat/completions", body, func(resp *http.Response, start time.Time) error {
		var err error
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			out, err = readStream(resp.Body, start)
		} else {
			out, err = c.decodeChat(resp.Body)
		}
		if err == nil {
			out.Latency = time.Since(start)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("chat completion: %w", err)
	}
	out.Attempts = attempts
	return out, nil
}

// Chat sends a typed chat completion request.
func (c *Client) Chat(ctx context.Context, req ChatRequest) (*ChatResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode chat request: %w", err)
	}
	return c.ChatRaw(ctx, body)
}

// Embeddings sends one embeddings request. The returned data is sorted by
// input index.
func (c *Client) Embeddings(ctx context.Context, req EmbeddingRequest) (*EmbeddingResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request: %w", err)
	}
	out := new(EmbeddingResponse)
	if _, err := c.do(ctx, http.MethodPost, "/v1/embeddings", body, func(resp *http.Response, _ time.Time) error {
		return c.decode(resp.Body, out)
	}); err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	if len(out.Data) != len(req.Input) {
		return nil, fmt.Errorf("embeddings: got %d vectors for %d inputs", len(out.Data), len(req.Input))
	}
	sorted := make([]Embedding, len(out.Data))
	for _, e := range out.Data {
		if e.Index < 0 || e.Index >= len(sorted) || sorted[e.Index].Embedding != nil {
			return nil, fmt.Errorf("embeddings: bad or repeated index %d", e.Index)
		}
		sorted[e.Index] = e
	}
	out.Data = sorted
	return out, nil
}

// EmbedBatches embeds req.Input in batches of batchSize
// (EmbedBatchSizeDefault when <= 0), one request per batch, in order. It
// returns one vector per input, or the first error together with the
// vectors of the batches that succeeded before it.
func (c *Client) EmbedBatches(ctx context.Context, req EmbeddingRequest, batchSize int) ([][]float32, error) {
	if batchSize <= 0 {
		batchSize = EmbedBatchSizeDefault
	}
	out := make([][]float32, 0, len(req.Input))
	for start := 0; start < len(req.Input); start += batchSize {
		end := min(start+batchSize, len(req.Input))
		b := req
		b.Input = req.Input[start:end]
		resp, err := c.Embeddings(ctx, b)
		if err != nil {
			return out, fmt.Errorf("embed inputs %d-%d: %w", start, end-1, err)
		}
		for _, e := range resp.Data {
			out = append(out, e.Embedding)
		}
	}
	return out, nil
}

// Models lists the models the server serves (GET /v1/models).
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	var out struct {
		Data []Model `json:"data"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/models", nil, func(resp *http.Response, _ time.Time) error {
		return c.decode(resp.Body, &out)
	}); err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return out.Data, nil
}

// decode reads r fully through a pooled buffer and unmarshals it into v.
func (c *Client) decode(r io.Reader, v any) error {
	buf := c.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			c.bufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return flywheel.Permanent(fmt.Errorf("decode reply: %w", err))
	}
	return nil
}

// decodeChat reads and decodes a chat completion reply.
func (c *Client) decodeChat(r io.Reader) (*ChatResponse, error) {
	buf := c.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			c.bufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	out, err := DecodeChatResponse(buf.Bytes())
	if err != nil {
		return nil, flywheel.Permanent(fmt.Errorf("decode reply: %w", err))
	}
	return out, nil
}

// do sends one request with retries. handle reads a 2xx reply; an error
// it returns is retried unless it is permanent. do returns the number of
// attempts made.
func (c *Client) do(ctx context.Context, method, path string, body []byte, handle func(*http.Response, time.Time) error) (int, error) {
	url := c.base + path
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return attempt, context.Cause(ctx)
		}
		err := c.attempt(ctx, method, url, body, handle)
		if err == nil {
			return attempt + 1, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return attempt + 1, fmt.Errorf("%w (last error: %v)", context.Cause(ctx), err)
		}
		if !retryable(err) || attempt >= c.maxRetries {
			return attempt + 1, lastErr
		}
		wait := c.backoff(attempt)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
			wait = min(apiErr.RetryAfter, max(c.maxDelay, RetryAfterMax))
		}
		c.logger.DebugContext(ctx, "Retrying request", slog.String("url", url), slog.Int("attempt", attempt+1),
			slog.Duration("wait", wait), slog.String("error", err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt + 1, fmt.Errorf("%w (last error: %v)", context.Cause(ctx), lastErr)
		case <-t.C:
		}
	}
}

// attempt makes one HTTP attempt under the per-attempt timeout.
func (c *Client) attempt(ctx context.Context, method, url string, body []byte, handle func(*http.Response, time.Time) error) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, errAttemptTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return flywheel.Permanent(fmt.Errorf("build request: %w", err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	for k, vs := range c.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), errAttemptTimeout) {
			return fmt.Errorf("%w: %v", errAttemptTimeout, err)
		}
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(req, resp)
	}
	if err := handle(resp, start); err != nil {
		if errors.Is(context.Cause(ctx), errAttemptTimeout) {
			return fmt.Errorf("%w: %v", errAttemptTimeout, err)
		}
		return err
	}
	return nil
}

// errAttemptTimeout marks an attempt that ran past the per-attempt timeout.
var errAttemptTimeout = errors.New("attempt timed out")

// readAPIError builds an *APIError from a non-2xx reply.
func readAPIError(req *http.Request, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Method: req.Method, URL: req.URL.String(), StatusCode: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	var shaped struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &shaped) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(shaped.Error, &inner) == nil && inner.Message != "":
			e.Message = inner.Message
		case json.Unmarshal(shaped.Error, &e.Message) == nil:
		case shaped.Message != "":
			e.Message = shaped.Message
		case len(shaped.Detail) > 0:
			e.Message = string(shaped.Detail)
		}
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// retryable reports whether err may go away on another attempt.
func retryable(err error) bool {
	if errors.Is(err, flywheel.ErrPermanent) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	// Connection failures, resets, truncated replies and attempt timeouts.
	return true
}

// backoff returns the wait before retry number attempt+1: exponential,
// capped, with jitter in [d/2, d].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseDelay << min(attempt, 30)
	if d <= 0 || d > c.maxDelay {
		d = c.maxDelay
	}
	half := d / 2
	return half + rand.N(half+1)
}
