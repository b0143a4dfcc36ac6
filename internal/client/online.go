package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/flywheel-go/flywheel/api"
)

// WorkloadOnline returns the online agreement of a workload's promotions
// (of one client when clientID is not empty).
func (c *Client) WorkloadOnline(ctx context.Context, workloadID, clientID string) ([]api.OnlineStats, error) {
	q := url.Values{}
	setIf(q, "client_id", clientID)
	var out []api.OnlineStats
	err := c.do(ctx, http.MethodGet, "/api/workloads/"+url.PathEscape(workloadID)+"/online", q, nil, nil, &out)
	return out, err
}
