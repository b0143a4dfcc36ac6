package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

type testBundle struct {
	jobs   *servertest.JobService
	logs   *servertest.LogIngester
	client *client.Client
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{jobs: &servertest.JobService{}, logs: &servertest.LogIngester{}}
	srv := httptest.NewServer(server.New(server.Options{
		Jobs:   b.jobs,
		Logs:   b.logs,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL+"/", &http.Client{Timeout: 10 * time.Second})
	require.NoError(t, err)
	b.client = c
	return b
}

var start = time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)

func TestJobs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.CreateJobRequest
		b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
			got = req
			return &flywheel.Run{ID: "r1"}, nil
		}
		eval := 25
		resp, err := b.client.CreateJob(ctx, client.CreateJobRequest{
			JobRequest:     api.JobRequest{WorkloadID: "w", ClientID: "c", DataSplitConfig: &flywheel.DataSplitOverride{EvalSize: &eval}},
			IdempotencyKey: "k1",
		})
		require.NoError(t, err)
		require.Equal(t, api.JobResponse{ID: "r1", Status: "queued", Message: "NIM workflow started"}, resp)
		require.Equal(t, "k1", got.IdempotencyKey)
		require.Equal(t, 25, *got.DataSplitConfig.EvalSize)
	})

	t.Run("CreateInvalid", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.client.CreateJob(ctx, client.CreateJobRequest{JobRequest: api.JobRequest{WorkloadID: "w"}})
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 422, ae.StatusCode)
		require.Equal(t, "body.client_id: String should have at least 1 character", ae.Detail)
		require.Len(t, ae.Fields, 1)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.JobFilter
		b.jobs.ListJobsFunc = func(_ context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
			got = f
			return flywheel.JobPage{Runs: []*flywheel.Run{servertest.Detail("r1", flywheel.RunCompleted, start).Run}, NextCursor: "n"}, nil
		}
		page, err := b.client.ListJobs(ctx, client.ListOptions{WorkloadID: "w x", ClientID: "c&d", Status: "completed", Limit: 5, Cursor: "p"})
		require.NoError(t, err)
		require.Equal(t, flywheel.JobFilter{WorkloadID: "w x", ClientID: "c&d", Status: flywheel.RunCompleted, Limit: 5, Cursor: "p"}, got)
		require.Len(t, page.Jobs, 1)
		require.Equal(t, "r1", page.Jobs[0].ID)
		require.Equal(t, "n", *page.NextCursor)
		require.NotNil(t, page.Jobs[0].FinishedAt)
	})

	t.Run("GetEscapesID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var gotID string
		b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
			gotID = id
			return servertest.Detail(id, flywheel.RunRunning, start), nil
		}
		d, err := b.client.GetJob(ctx, "a/b c")
		require.NoError(t, err)
		require.Equal(t, "a/b c", gotID)
		require.Equal(t, "a/b c", d.ID)
		require.Len(t, d.NIMs, 2)
		require.Equal(t, 0.95, d.NIMs[0].Evaluations[0].Scores["function_name"])
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) {
			return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
		}
		_, err := b.client.GetJob(ctx, "x")
		require.True(t, client.IsNotFound(err))
		require.EqualError(t, err, "server answered 404: Job not found")
	})

	t.Run("CancelDelete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.CancelJobFunc = func(context.Context, string) (string, error) { return "Job cancellation initiated successfully.", nil }
		b.jobs.DeleteJobFunc = func(context.Context, string) (string, error) {
			return "", flywheel.Errorf(flywheel.EPRECONDITION, "Cannot delete a running job. Please cancel the job first.")
		}
		c, err := b.client.CancelJob(ctx, "r1")
		require.NoError(t, err)
		require.Equal(t, api.JobCancelResponse{ID: "r1", Message: "Job cancellation initiated successfully."}, c)
		_, err = b.client.DeleteJob(ctx, "r1")
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 400, ae.StatusCode)
		require.Equal(t, "Cannot delete a running job. Please cancel the job first.", ae.Detail)
	})

	t.Run("Items", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.ItemFilter
		b.jobs.ListItemsFunc = func(_ context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
			got = f
			return flywheel.ItemPage{Total: 1, Items: []flywheel.ItemResult{{EvaluationID: f.EvaluationID, Tool: "t", Scores: map[string]float64{"f1": 0.5}}}}, nil
		}
		page, err := b.client.ListItems(ctx, "e1", client.ItemOptions{Tool: "t", ErrorClass: "x", Divergent: true, Limit: 3, Offset: 6})
		require.NoError(t, err)
		require.Equal(t, flywheel.ItemFilter{EvaluationID: "e1", Tool: "t", ErrorClass: "x", OnlyDivergent: true, Limit: 3, Offset: 6}, got)
		require.Equal(t, 0.5, page.Items[0].Scores["f1"])
		require.Nil(t, page.NextOffset)
	})

	t.Run("IngestLogs", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) { return len(recs), 0, nil }
		body := `{"workload_id":"w","client_id":"c","timestamp":1,"request":{},"response":{}}` + "\n{}\n"
		resp, err := b.client.IngestLogs(ctx, strings.NewReader(body))
		require.NoError(t, err)
		require.Equal(t, 1, resp.Inserted)
		require.Equal(t, 1, resp.Rejected)
		require.Equal(t, 2, resp.Errors[0].Line)
	})

	t.Run("Ready", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, b.client.Ready(ctx))
		b.jobs.ReadyFunc = func(context.Context) error { return errors.New("down") }
		var ae *client.APIError
		require.ErrorAs(t, b.client.Ready(ctx), &ae)
		require.Equal(t, 503, ae.StatusCode)
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "127.0.0.1:8000", want: "http://127.0.0.1:8000"},
		{in: "https://fw.example/base/", want: "https://fw.example/base"},
		{in: "ftp://x", err: "scheme must be http or https"},
		{in: "http://", err: "has no host"},
	}
	for _, tt := range tests {
		c, err := client.New(tt.in, nil)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, c.BaseURL())
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := client.New(url, nil)
	require.NoError(t, err)
	_, err = c.GetJob(t.Context(), "x")
	require.ErrorContains(t, err, "GET /api/jobs/x")
	var ae *client.APIError
	require.False(t, errors.As(err, &ae))
}
