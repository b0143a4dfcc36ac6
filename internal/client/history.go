package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/flywheel-go/flywheel/api"
)

// ListWorkloads returns every workload and client with runs.
func (c *Client) ListWorkloads(ctx context.Context) (api.WorkloadsResponse, error) {
	var out api.WorkloadsResponse
	err := c.do(ctx, http.MethodGet, "/api/workloads", nil, nil, nil, &out)
	return out, err
}

// HistoryOptions filters WorkloadHistory.
type HistoryOptions struct {
	ClientID string
	// Limit keeps the newest Limit finished runs (0: the server's default).
	Limit int
}

// WorkloadHistory returns a workload's finished runs, oldest first.
func (c *Client) WorkloadHistory(ctx context.Context, workloadID string, o HistoryOptions) (api.WorkloadHistoryResponse, error) {
	q := url.Values{}
	setIf(q, "client_id", o.ClientID)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out api.WorkloadHistoryResponse
	err := c.do(ctx, http.MethodGet, "/api/workloads/"+url.PathEscape(workloadID)+"/history", q, nil, nil, &out)
	return out, err
}

// CompareJobs sets runs a and b side by side.
func (c *Client) CompareJobs(ctx context.Context, a, b string) (api.JobCompareResponse, error) {
	var out api.JobCompareResponse
	err := c.do(ctx, http.MethodGet, "/api/jobs/compare", url.Values{"a": {a}, "b": {b}}, nil, nil, &out)
	return out, err
}
