package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// pagedJobs is a job service holding n runs, listed in pages as the store
// does: newest or oldest first, cursor = index of the next run.
func pagedJobs(t *testing.T, b *testBundle, n int) *[]flywheel.JobFilter {
	var calls []flywheel.JobFilter
	b.jobs.ListJobsFunc = func(_ context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
		calls = append(calls, f)
		limit := f.Limit
		if limit == 0 {
			limit = 100
		}
		from := 0
		if f.Cursor != "" {
			_, err := fmt.Sscan(f.Cursor, &from)
			require.NoError(t, err)
		}
		page := flywheel.JobPage{}
		for i := from; i < n && len(page.Runs) < limit; i++ {
			age := i // oldest first: run-0 is the oldest
			if !f.OldestFirst {
				age = n - 1 - i
			}
			page.Runs = append(page.Runs, &flywheel.Run{ID: fmt.Sprintf("run-%d", age), WorkloadID: "w", ClientID: "c",
				Status: flywheel.RunCompleted, StartedAt: start.Add(time.Duration(age) * time.Second)})
		}
		if next := from + len(page.Runs); next < n {
			page.NextCursor = fmt.Sprint(next)
		}
		return page, nil
	}
	return &calls
}

func TestListJobsModes(t *testing.T) {
	t.Parallel()
	ids := func(t *testing.T, body []byte) ([]string, *string) {
		var r api.JobsListResponse
		require.NoError(t, json.Unmarshal(body, &r))
		var out []string
		for _, j := range r.Jobs {
			out = append(out, j.ID)
		}
		return out, r.NextCursor
	}

	t.Run("PagedNewestFirstByDefault", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := pagedJobs(t, b, 250)
		resp := do(t, b.server(), "GET", "/api/jobs", "")
		require.Equal(t, 200, resp.status)
		got, next := ids(t, resp.body)
		require.Len(t, got, 100)
		require.Equal(t, "run-249", got[0])
		require.NotNil(t, next)
		require.Len(t, *calls, 1)
		require.False(t, (*calls)[0].OldestFirst)
	})

	t.Run("OrderOldest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := pagedJobs(t, b, 5)
		resp := do(t, b.server(), "GET", "/api/jobs?order=oldest&limit=2", "")
		require.Equal(t, 200, resp.status)
		got, next := ids(t, resp.body)
		require.Equal(t, []string{"run-0", "run-1"}, got)
		require.NotNil(t, next)
		require.True(t, (*calls)[0].OldestFirst)
	})

	t.Run("BadOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		resp := do(t, b.server(), "GET", "/api/jobs?order=up", "")
		require.Equal(t, 422, resp.status)
		require.JSONEq(t, `{"detail":[{"loc":["query","order"],"msg":"Input should be 'newest' or 'oldest'","type":"literal_error","input":"up","ctx":{"expected":"'newest' or 'oldest'"}}]}`, string(resp.body))
	})

	t.Run("BlueprintAllOldestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.BlueprintJobList = true
		calls := pagedJobs(t, b, 2345)
		resp := do(t, b.server(), "GET", "/api/jobs", "")
		require.Equal(t, 200, resp.status)
		got, next := ids(t, resp.body)
		require.Len(t, got, 2345, "every run in one answer")
		require.Nil(t, next)
		require.Contains(t, string(resp.body), `"next_cursor":null`)
		for i, id := range got {
			require.Equal(t, fmt.Sprintf("run-%d", i), id, "oldest first")
		}
		require.Len(t, *calls, 3, "pages of 1,000 from the service")
	})

	t.Run("BlueprintModeStillPages", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.BlueprintJobList = true
		pagedJobs(t, b, 30)
		resp := do(t, b.server(), "GET", "/api/jobs?limit=10&order=newest", "")
		require.Equal(t, 200, resp.status)
		got, next := ids(t, resp.body)
		require.Len(t, got, 10)
		require.Equal(t, "run-29", got[0])
		require.NotNil(t, next)
	})
}

func TestValidationInputBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := strings.Repeat("a", 300)
	resp := do(t, b.server(), "POST", "/api/jobs", `{"workload_id":"`+id+`","client_id":"c"}`)
	require.Equal(t, 422, resp.status)
	require.JSONEq(t, `{"detail":[{"loc":["body","workload_id"],"msg":"String should have at most 255 bytes","type":"string_too_long","input":"`+id+`","ctx":{"max_length":255}}]}`, string(resp.body))

	id = strings.Repeat("a", 2000)
	resp = do(t, b.server(), "POST", "/api/jobs", `{"workload_id":"`+id+`","client_id":"c"}`)
	require.Equal(t, 422, resp.status)
	require.JSONEq(t, `{"detail":[{"loc":["body","workload_id"],"msg":"String should have at most 255 bytes","type":"string_too_long","ctx":{"max_length":255}}]}`, string(resp.body),
		"a value over 1 KB is not echoed")
}
