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

// CreateSchedule creates a schedule.
func (c *Client) CreateSchedule(ctx context.Context, req api.ScheduleRequest) (api.Schedule, error) {
	var out api.Schedule
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("encode schedule request: %w", err)
	}
	err = c.do(ctx, http.MethodPost, "/api/schedules", nil, bytes.NewReader(body), http.Header{"Content-Type": {"application/json"}}, &out)
	return out, err
}

// ListSchedules returns every schedule, newest first.
func (c *Client) ListSchedules(ctx context.Context) (api.SchedulesResponse, error) {
	var out api.SchedulesResponse
	err := c.do(ctx, http.MethodGet, "/api/schedules", nil, nil, nil, &out)
	return out, err
}

// GetSchedule returns a schedule with its recent events.
func (c *Client) GetSchedule(ctx context.Context, id string) (api.ScheduleDetail, error) {
	var out api.ScheduleDetail
	err := c.do(ctx, http.MethodGet, "/api/schedules/"+url.PathEscape(id), nil, nil, nil, &out)
	return out, err
}

// DeleteSchedule deletes a schedule.
func (c *Client) DeleteSchedule(ctx context.Context, id string) (api.ScheduleDeleteResponse, error) {
	var out api.ScheduleDeleteResponse
	err := c.do(ctx, http.MethodDelete, "/api/schedules/"+url.PathEscape(id), nil, nil, nil, &out)
	return out, err
}
