package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/flywheel-go/flywheel/api"
)

// Promote makes a candidate variant of a completed job serve its
// workload's traffic through the gateway.
func (c *Client) Promote(ctx context.Context, jobID string, req api.PromoteRequest) (api.Promotion, error) {
	var out api.Promotion
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("encode promote request: %w", err)
	}
	err = c.do(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(jobID)+"/promote", nil, bytes.NewReader(body),
		http.Header{"Content-Type": {"application/json"}}, &out)
	return out, err
}

// ListPromotions returns the promotions of a workload (and client; both
// optional), newest first.
func (c *Client) ListPromotions(ctx context.Context, workloadID, clientID string) (api.PromotionsResponse, error) {
	var out api.PromotionsResponse
	q := url.Values{}
	setIf(q, "workload_id", workloadID)
	setIf(q, "client_id", clientID)
	err := c.do(ctx, http.MethodGet, "/api/promotions", q, nil, nil, &out)
	return out, err
}

// GetPromotion returns one promotion.
func (c *Client) GetPromotion(ctx context.Context, id string) (api.Promotion, error) {
	var out api.Promotion
	err := c.do(ctx, http.MethodGet, "/api/promotions/"+url.PathEscape(id), nil, nil, nil, &out)
	return out, err
}

// RollbackPromotion ends a promotion: production answers again.
func (c *Client) RollbackPromotion(ctx context.Context, id, reason string) (api.Promotion, error) {
	var out api.Promotion
	body, err := json.Marshal(api.RollbackRequest{Reason: reason})
	if err != nil {
		return out, fmt.Errorf("encode rollback request: %w", err)
	}
	err = c.do(ctx, http.MethodPost, "/api/promotions/"+url.PathEscape(id)+"/rollback", nil, bytes.NewReader(body),
		http.Header{"Content-Type": {"application/json"}}, &out)
	return out, err
}
