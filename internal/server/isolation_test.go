package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// TestLogsIsolateBadLines posts the 3,000-line body to a real store on each
// database: 2,997 are stored and the 3 others rejected with their lines,
// whether the parser finds them (the default) or only the store does (a
// parser that checks nothing).
func TestLogsIsolateBadLines(t *testing.T) {
	t.Parallel()
	body := testcorpus.BadLines(3000, 10, 1500, 2999)
	for _, d := range storetest.Dialects() {
		for _, parser := range []string{"Default", "StoreOnly"} {
			t.Run(storetest.Name(d)+parser, func(t *testing.T) {
				t.Parallel()
				s := storetest.Open(t, d)
				b := setup(t)
				b.opts.Logs = s
				if parser == "StoreOnly" {
					b.opts.LogParser = func(line []byte, _ int) (flywheel.LogRecord, *api.LogLineError) {
						var l struct {
							WorkloadID string          `json:"workload_id"`
							ClientID   string          `json:"client_id"`
							Request    json.RawMessage `json:"request"`
							Response   json.RawMessage `json:"response"`
						}
						if err := json.Unmarshal(line, &l); err != nil {
							return flywheel.LogRecord{}, &api.LogLineError{Reason: err.Error()}
						}
						return flywheel.LogRecord{WorkloadID: l.WorkloadID, ClientID: l.ClientID, Timestamp: start,
							Request: l.Request, Response: l.Response}, nil
					}
				}
				resp := do(t, b.server(), "POST", "/api/logs", body)
				require.Equal(t, 200, resp.status, "%s", resp.body)
				var got api.LogsResponse
				require.NoError(t, json.Unmarshal(resp.body, &got))
				require.Equal(t, 3000, got.Lines)
				require.Equal(t, 2997, got.Inserted)
				require.Equal(t, 3, got.Rejected)
				require.Len(t, got.Errors, 3)
				lines := []int{got.Errors[0].Line, got.Errors[1].Line, got.Errors[2].Line}
				require.Equal(t, []int{10, 1500, 2999}, lines)
				require.Equal(t, "workload_id", got.Errors[2].Field)
				n, err := s.CountLogs(context.Background(), "", "")
				require.NoError(t, err)
				require.Equal(t, 2997, n)
				t.Logf("%s, %s parser: %d lines, %d stored, rejected lines %v", d, parser, got.Lines, n, lines)
			})
		}
	}
}

// TestLogsStoreFailureAsksForARetryOnlyWhenOneCanSucceed: a database that
// is down answers 503 with the reason and asks for the body again; any
// other failure does not.
func TestLogsStoreFailureAsksForARetryOnlyWhenOneCanSucceed(t *testing.T) {
	t.Parallel()
	line := `{"workload_id":"w","client_id":"c","request":{"messages":[]},"response":{}}`
	t.Run("DatabaseDown", func(t *testing.T) {
		t.Parallel()
		for _, d := range storetest.Dialects() {
			s := storetest.Open(t, d)
			require.NoError(t, s.Close())
			b := setup(t)
			b.opts.Logs = s
			resp := do(t, b.server(), "POST", "/api/logs", line+"\n")
			require.Equal(t, 503, resp.status, "%s", resp.body)
			require.Contains(t, resp.detail(t), "Database unavailable: cannot reach the database")
			require.Contains(t, resp.detail(t), "send the same body again")
		}
	})
	t.Run("Bug", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.logs.InsertLogsFunc = func(context.Context, []flywheel.LogRecord) (int, int, error) {
			return 0, 0, fmt.Errorf("some bug")
		}
		resp := do(t, b.server(), "POST", "/api/logs", line+"\n")
		require.Equal(t, 500, resp.status)
		require.NotContains(t, resp.detail(t), "again")
		require.NotContains(t, resp.detail(t), "some bug")
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.logs.InsertLogsFunc = func(context.Context, []flywheel.LogRecord) (int, int, error) {
			return 0, 0, flywheel.Errorf(flywheel.EUNPROCESSABLE, "The database cannot store a value: value too long")
		}
		resp := do(t, b.server(), "POST", "/api/logs", line+"\n")
		require.Equal(t, 422, resp.status)
		require.Contains(t, resp.detail(t), "cannot succeed")
	})
}

// TestBadBytesInIDsAndFilters gives ids, filters and path parameters a NUL,
// invalid UTF-8 or too many bytes: each is a 422 naming the field, and the
// service is never called.
func TestBadBytesInIDsAndFilters(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100_000)
	id := "0123456789abcdef01234567"
	tests := []struct {
		name, method, target, body string
		loc                        []any
		typ                        string
	}{
		{"CreateNULWorkload", "POST", "/api/jobs", `{"workload_id":"a\u0000b","client_id":"c"}`, []any{"body", "workload_id"}, "value_error"},
		{"CreateNULClient", "POST", "/api/jobs", `{"workload_id":"w","client_id":"\u0000"}`, []any{"body", "client_id"}, "value_error"},
		{"CreateInvalidUTF8", "POST", "/api/jobs", "{\"workload_id\":\"a\xffb\",\"client_id\":\"c\"}", []any{"body", float64(17)}, "json_invalid"},
		{"CreateLongWorkload", "POST", "/api/jobs", `{"workload_id":"` + strings.Repeat("w", 256) + `","client_id":"c"}`, []any{"body", "workload_id"}, "string_too_long"},
		{"ListNULWorkload", "GET", "/api/jobs?workload_id=a%00b", "", []any{"query", "workload_id"}, "value_error"},
		{"ListInvalidUTF8Client", "GET", "/api/jobs?client_id=%ff", "", []any{"query", "client_id"}, "value_error"},
		{"ListLongWorkload", "GET", "/api/jobs?workload_id=" + long, "", []any{"query", "workload_id"}, "string_too_long"},
		{"ListNULCursor", "GET", "/api/jobs?cursor=%00", "", []any{"query", "cursor"}, "value_error"},
		{"GetNULID", "GET", "/api/jobs/" + id[:23] + "%00", "", []any{"path", "job_id"}, "value_error"},
		{"GetInvalidUTF8ID", "GET", "/api/jobs/%fe" + id[:23], "", []any{"path", "job_id"}, "value_error"},
		{"GetLongID", "GET", "/api/jobs/" + long, "", []any{"path", "job_id"}, "string_too_long"},
		{"CancelNULID", "POST", "/api/jobs/%00/cancel", "", []any{"path", "job_id"}, "value_error"},
		{"DeleteLongID", "DELETE", "/api/jobs/" + long, "", []any{"path", "job_id"}, "string_too_long"},
		{"ItemsNULEvaluation", "GET", "/api/evaluations/%00/items", "", []any{"path", "evaluation_id"}, "value_error"},
		{"ItemsNULTool", "GET", "/api/evaluations/" + id + "/items?tool=%00", "", []any{"query", "tool"}, "value_error"},
		{"ItemsInvalidUTF8ErrorClass", "GET", "/api/evaluations/" + id + "/items?error_class=%c3%28", "", []any{"query", "error_class"}, "value_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			called := false
			b.jobs.CreateJobFunc = func(context.Context, flywheel.CreateJobRequest) (*flywheel.Run, error) {
				called = true
				return nil, fmt.Errorf("called")
			}
			b.jobs.ListJobsFunc = func(context.Context, flywheel.JobFilter) (flywheel.JobPage, error) {
				called = true
				return flywheel.JobPage{}, fmt.Errorf("called")
			}
			b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) {
				called = true
				return nil, fmt.Errorf("called")
			}
			b.jobs.ListItemsFunc = func(context.Context, flywheel.ItemFilter) (flywheel.ItemPage, error) {
				called = true
				return flywheel.ItemPage{}, fmt.Errorf("called")
			}
			target, err := url.Parse(tc.target)
			require.NoError(t, err, "test target")
			resp := do(t, b.server(), tc.method, target.String(), tc.body)
			require.Equal(t, 422, resp.status, "%s", resp.body)
			var v api.ValidationErrorResponse
			require.NoError(t, json.Unmarshal(resp.body, &v))
			require.Len(t, v.Detail, 1, "%s", resp.body)
			require.Equal(t, tc.loc, v.Detail[0].Loc)
			require.Equal(t, tc.typ, v.Detail[0].Type)
			require.Less(t, len(resp.body), 2000, "the answer does not echo the value")
			require.False(t, called, "the service is not called")
		})
	}
}

// TestIdempotencyConflictIs409 checks the answer to a key reused with
// another request.
func TestIdempotencyConflictIs409(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
		return nil, flywheel.Errorf(flywheel.ECONFLICT, "Idempotency-Key %q was already used with a different request", req.IdempotencyKey)
	}
	resp := do(t, b.server(), "POST", "/api/jobs", `{"workload_id":"w","client_id":"c"}`, "Idempotency-Key", "k1")
	require.Equal(t, 409, resp.status)
	require.Contains(t, resp.detail(t), `Idempotency-Key "k1"`)
}

// TestHugeDataSplitNumbersGiveTheUpperBound: 2^63 is refused with the
// bound it breaks, not as a number below 1.
func TestHugeDataSplitNumbersGiveTheUpperBound(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"9223372036854775808", "9223372036854775807", "2000000000", "1e300"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			resp := do(t, b.server(), "POST", "/api/jobs", `{"workload_id":"w","client_id":"c","data_split_config":{"eval_size":`+v+`}}`)
			require.Equal(t, 422, resp.status, "%s", resp.body)
			var got api.ValidationErrorResponse
			require.NoError(t, json.Unmarshal(resp.body, &got))
			require.Len(t, got.Detail, 1)
			require.Equal(t, []any{"body", "data_split_config", "eval_size"}, got.Detail[0].Loc)
			require.Equal(t, "less_than_equal", got.Detail[0].Type)
			require.Equal(t, fmt.Sprintf("Input should be less than or equal to %d", flywheel.MaxRecordCount), got.Detail[0].Msg)
		})
	}
}
