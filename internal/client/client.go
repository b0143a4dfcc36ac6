// Package client is a Go client of the flywheel REST API, used by the CLI
// and by end-to-end tests. It speaks the shapes of package api.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// TimeoutDefault bounds each request of a client made without an
// *http.Client of its own.
const TimeoutDefault = 30 * time.Second

// maxErrorBody caps how much of an error answer is read.
const maxErrorBody = 1 << 20

// Client calls one flywheel server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	hc    *http.Client
	token string
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8000").
// hc may be nil, in which case a client with TimeoutDefault is used.
func New(baseURL string, hc *http.Client) (*Client, error) {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q has no host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if hc == nil {
		hc = &http.Client{Timeout: TimeoutDefault}
	}
	return &Client{base: u, hc: hc}, nil
}

// WithToken returns a copy of c that sends token as
// "Authorization: Bearer <token>" (an empty token sends none).
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is an answer with a status of 400 or more.
type APIError struct {
	StatusCode int
	// Detail is the server's message ({"detail": "..."}); for a 422 it
	// joins the messages of Fields.
	Detail string
	// Fields lists the invalid parts of a 422 request.
	Fields []api.ValidationError
}

// Error implements the error interface.
func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.StatusCode, e.Detail)
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// CreateJobRequest is what CreateJob sends.
type CreateJobRequest struct {
	api.JobRequest
	// Manifest, when set, starts a run on exactly the manifest's records
	// and settings; WorkloadID and ClientID may then be left empty.
	Manifest *flywheel.Manifest
	// IdempotencyKey, when set, makes the call safe to repeat.
	IdempotencyKey string
}

// CreateJob starts a run.
func (c *Client) CreateJob(ctx context.Context, req CreateJobRequest) (api.JobResponse, error) {
	var out api.JobResponse
	var payload any = req.JobRequest
	if req.Manifest != nil {
		payload = struct {
			WorkloadID      string                      `json:"workload_id,omitempty"`
			ClientID        string                      `json:"client_id,omitempty"`
			DataSplitConfig *flywheel.DataSplitOverride `json:"data_split_config,omitempty"`
			Manifest        *flywheel.Manifest          `json:"manifest"`
		}{req.WorkloadID, req.ClientID, req.DataSplitConfig, req.Manifest}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return out, fmt.Errorf("encode job request: %w", err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if req.IdempotencyKey != "" {
		hdr.Set("Idempotency-Key", req.IdempotencyKey)
	}
	err = c.do(ctx, http.MethodPost, "/api/jobs", nil, bytes.NewReader(body), hdr, &out)
	return out, err
}

// ListOptions filters and pages ListJobs.
type ListOptions struct {
	WorkloadID string
	ClientID   string
	Status     string
	Limit      int
	Cursor     string
}

// ListJobs returns one page of runs, newest first.
func (c *Client) ListJobs(ctx context.Context, o ListOptions) (api.JobsListResponse, error) {
	q := url.Values{}
	setIf(q, "workload_id", o.WorkloadID)
	setIf(q, "client_id", o.ClientID)
	setIf(q, "status", o.Status)
	setIf(q, "cursor", o.Cursor)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out api.JobsListResponse
	err := c.do(ctx, http.MethodGet, "/api/jobs", q, nil, nil, &out)
	return out, err
}

// GetJob returns a run in full.
func (c *Client) GetJob(ctx context.Context, id string) (api.JobDetailResponse, error) {
	var out api.JobDetailResponse
	err := c.do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id), nil, nil, nil, &out)
	return out, err
}

// GetManifest returns a run's manifest: the records of its datasets,
// its settings, seed, models and versions.
func (c *Client) GetManifest(ctx context.Context, id string) (*flywheel.Manifest, error) {
	var out flywheel.Manifest
	if err := c.do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id)+"/manifest", nil, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelJob cancels a run.
func (c *Client) CancelJob(ctx context.Context, id string) (api.JobCancelResponse, error) {
	var out api.JobCancelResponse
	err := c.do(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, nil, &out)
	return out, err
}

// DeleteJob deletes a finished run.
func (c *Client) DeleteJob(ctx context.Context, id string) (api.JobDeleteResponse, error) {
	var out api.JobDeleteResponse
	err := c.do(ctx, http.MethodDelete, "/api/jobs/"+url.PathEscape(id), nil, nil, nil, &out)
	return out, err
}

// ItemOptions filters and pages ListItems.
type ItemOptions struct {
	Tool       string
	ErrorClass string
	Divergent  bool
	Limit      int
	Offset     int
}

// ListItems returns one page of an evaluation's per-item results.
func (c *Client) ListItems(ctx context.Context, evaluationID string, o ItemOptions) (api.ItemsResponse, error) {
	q := url.Values{}
	setIf(q, "tool", o.Tool)
	setIf(q, "error_class", o.ErrorClass)
	if o.Divergent {
		q.Set("divergent", "true")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	var out api.ItemsResponse
	err := c.do(ctx, http.MethodGet, "/api/evaluations/"+url.PathEscape(evaluationID)+"/items", q, nil, nil, &out)
	return out, err
}

// IngestLogs sends NDJSON log records to POST /api/logs.
func (c *Client) IngestLogs(ctx context.Context, ndjson io.Reader) (api.LogsResponse, error) {
	var out api.LogsResponse
	hdr := http.Header{"Content-Type": {"application/x-ndjson"}}
	err := c.do(ctx, http.MethodPost, "/api/logs", nil, ndjson, hdr, &out)
	return out, err
}

// Ready returns nil when the server reports itself ready.
func (c *Client) Ready(ctx context.Context) error {
	var out api.HealthResponse
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil, &out)
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header, out any) error {
	target := c.base.String() + path
	if enc := q.Encode(); enc != "" {
		target += "?" + enc
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &APIError{StatusCode: resp.StatusCode}
	var plain api.ErrorResponse
	var valid api.ValidationErrorResponse
	switch {
	case json.Unmarshal(b, &plain) == nil && plain.Detail != "":
		ae.Detail = plain.Detail
	case json.Unmarshal(b, &valid) == nil && len(valid.Detail) > 0:
		ae.Fields = valid.Detail
		msgs := make([]string, 0, len(valid.Detail))
		for _, f := range valid.Detail {
			msgs = append(msgs, fmt.Sprintf("%s: %s", formatLoc(f.Loc), f.Msg))
		}
		ae.Detail = strings.Join(msgs, "; ")
	default:
		ae.Detail = strings.TrimSpace(string(b))
		if ae.Detail == "" {
			ae.Detail = http.StatusText(resp.StatusCode)
		}
	}
	return ae
}

// formatLoc writes a 422 location as "body.data_split_config.eval_size".
func formatLoc(loc []any) string {
	parts := make([]string, 0, len(loc))
	for _, l := range loc {
		parts = append(parts, fmt.Sprint(l))
	}
	return strings.Join(parts, ".")
}
