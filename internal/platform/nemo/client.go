package nemo

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
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults of the HTTP layer.
const (
	// AttemptTimeoutDefault bounds one HTTP attempt.
	AttemptTimeoutDefault = 30 * time.Second
	// MaxAttemptsDefault is how many times a transient failure is tried.
	MaxAttemptsDefault = 5
	// BackoffBaseDefault is the first retry delay; it doubles per attempt.
	BackoffBaseDefault = 250 * time.Millisecond
	// BackoffMaxDefault caps one retry delay.
	BackoffMaxDefault = 8 * time.Second

	maxErrorBody = 4096
)

// Service is the address of one NeMo microservice.
type Service struct {
	// BaseURL is the service root, without "/v1" (for example
	// "http://nemo.test").
	BaseURL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
}

// RetryPolicy controls how transient failures (5xx, 429, timeouts,
// connection resets) are retried. Zero fields take the defaults.
type RetryPolicy struct {
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	p.MaxAttempts = cmp.Or(p.MaxAttempts, MaxAttemptsDefault)
	p.BaseDelay = cmp.Or(p.BaseDelay, BackoffBaseDefault)
	p.MaxDelay = cmp.Or(p.MaxDelay, BackoffMaxDefault)
	return p
}

// HTTPError is a non-2xx answer of a NeMo service. A 4xx HTTPError is
// returned wrapped in flywheel.Permanent; a 404 also matches
// flywheel.ErrNotFound with errors.Is.
type HTTPError struct {
	Method     string
	URL        string
	StatusCode int
	Body       string
}

// Error implements the error interface.
func (e *HTTPError) Error() string {
	body := strings.TrimSpace(e.Body)
	if body == "" {
		return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.StatusCode, body)
}

// Is makes a 404 HTTPError match flywheel.ErrNotFound.
func (e *HTTPError) Is(target error) bool {
	return target == flywheel.ErrNotFound && e.StatusCode == http.StatusNotFound
}

// Transient reports whether retrying the request may succeed.
func (e *HTTPError) Transient() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode == http.StatusRequestTimeout
}

// StatusCode returns the HTTP status of the first *HTTPError in err's
// chain, or 0.
func StatusCode(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// IsTransient reports whether err is worth retrying: a 5xx, 429 or 408
// answer, a timeout of one attempt, or a broken connection. Errors of the
// caller's own context are not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, flywheel.ErrPermanent) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Transient()
	}
	if errors.Is(err, errAttemptTimeout) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

var errAttemptTimeout = errors.New("attempt timed out")

// caller sends requests to the NeMo services with timeouts and retries.
type caller struct {
	hc             *http.Client
	logger         *slog.Logger
	retry          RetryPolicy
	attemptTimeout time.Duration
	// sleep waits d or until ctx is done.
	sleep func(ctx context.Context, d time.Duration) error
}

func newCaller(hc *http.Client, logger *slog.Logger, retry RetryPolicy, attemptTimeout time.Duration) *caller {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * cmp.Or(attemptTimeout, AttemptTimeoutDefault)}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &caller{
		hc:             hc,
		logger:         logger,
		retry:          retry.withDefaults(),
		attemptTimeout: cmp.Or(attemptTimeout, AttemptTimeoutDefault),
		sleep:          sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// request is one HTTP request to a service.
type request struct {
	method string
	svc    Service
	path   string
	query  url.Values
	// body is JSON-encoded unless raw is set.
	body        any
	raw         []byte
	contentType string
	// out receives the decoded JSON answer (may be nil).
	out any
	// rawOut, when set, receives the answer body as is.
	rawOut *[]byte
}

func (r request) url() string {
	u := strings.TrimRight(r.svc.BaseURL, "/") + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	return u
}

// do sends r, retrying transient failures with backoff.
func (c *caller) do(ctx context.Context, r request) error {
	return c.withRetry(ctx, r.method+" "+r.path, func(ctx context.Context) error {
		return c.once(ctx, r)
	})
}

// withRetry runs fn until it succeeds, fails permanently, or the attempts
// run out.
func (c *caller) withRetry(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(ctx)
		if err == nil || !IsTransient(err) || attempt >= c.retry.MaxAttempts {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := c.backoff(attempt)
		c.logger.DebugContext(ctx, "Retrying NeMo call", slog.String("op", op),
			slog.Int("attempt", attempt), slog.Duration("delay", d), slog.String("error", err.Error()))
		if serr := c.sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
}

func (c *caller) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay << (attempt - 1)
	if d <= 0 || d > c.retry.MaxDelay {
		d = c.retry.MaxDelay
	}
	// Full jitter on the upper half keeps retries of many callers apart.
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1)) //nolint:gosec // jitter
}

// once sends r a single time.
func (c *caller) once(ctx context.Context, r request) error {
	actx, cancel := context.WithTimeoutCause(ctx, c.attemptTimeout, errAttemptTimeout)
	defer cancel()

	var body io.Reader
	contentType := r.contentType
	switch {
	case r.raw != nil:
		body = bytes.NewReader(r.raw)
	case r.body != nil:
		b, err := json.Marshal(r.body)
		if err != nil {
			return flywheel.Permanent(fmt.Errorf("encode %s %s body: %w", r.method, r.path, err))
		}
		body = bytes.NewReader(b)
		contentType = cmp.Or(contentType, "application/json")
	}
	u := r.url()
	req, err := http.NewRequestWithContext(actx, r.method, u, body)
	if err != nil {
		return flywheel.Permanent(fmt.Errorf("build request %s %s: %w", r.method, u, err))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if r.svc.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.svc.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if context.Cause(actx) == errAttemptTimeout && ctx.Err() == nil {
			return fmt.Errorf("%s %s: %w", r.method, u, errAttemptTimeout)
		}
		return fmt.Errorf("%s %s: %w", r.method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if context.Cause(actx) == errAttemptTimeout && ctx.Err() == nil {
			return fmt.Errorf("read %s %s: %w", r.method, u, errAttemptTimeout)
		}
		return fmt.Errorf("read %s %s: %w", r.method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b := data
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
		}
		he := &HTTPError{Method: r.method, URL: u, StatusCode: resp.StatusCode, Body: string(b)}
		if he.Transient() {
			return he
		}
		return flywheel.Permanent(he)
	}
	if r.rawOut != nil {
		*r.rawOut = data
	}
	if r.out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, r.out); err != nil {
			return fmt.Errorf("decode %s %s answer: %w", r.method, u, err)
		}
	}
	return nil
}

// pathEscape escapes each "/"-separated segment of p.
func pathEscape(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// splitRef splits "ns/name" into its parts; a ref without "/" gets def as
// namespace.
func splitRef(ref, def string) (ns, name string) {
	if i := strings.Index(ref, "/"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return def, ref
}

// ignoreNotFound returns nil for a 404 error.
func ignoreNotFound(err error) error {
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil
	}
	return err
}
