package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantDetail string
	}{
		{"Invalid", flywheel.Errorf(flywheel.EINVALID, "Invalid job_id format"), 400, "Invalid job_id format"},
		{"Precondition", flywheel.Errorf(flywheel.EPRECONDITION, "Cannot cancel a job that has already finished."), 400, "Cannot cancel a job that has already finished."},
		{"NotFound", flywheel.Errorf(flywheel.ENOTFOUND, "Job with ID x not found"), 404, "Job with ID x not found"},
		{"Conflict", flywheel.Errorf(flywheel.ECONFLICT, "busy"), 409, "busy"},
		{"Unavailable", flywheel.Errorf(flywheel.EUNAVAILABLE, "database is down"), 503, "database is down"},
		{"CodedInternal", flywheel.Errorf(flywheel.EINTERNAL, "Failed to cancel job x"), 500, "Failed to cancel job x"},
		{"Wrapped", fmt.Errorf("cancel: %w", flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")), 404, "Job not found"},
		{"Uncoded", errors.New("pq: password authentication failed for user flywheel"), 500, "Internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.jobs.CancelJobFunc = func(context.Context, string) (string, error) { return "", tt.err }
			resp := do(t, b.server(), "POST", "/api/jobs/x/cancel", "")
			require.Equal(t, tt.wantStatus, resp.status)
			require.Equal(t, tt.wantDetail, resp.detail(t))
			require.NotContains(t, string(resp.body), "password")
			if tt.wantStatus == 500 {
				require.Contains(t, b.logBuf.String(), tt.err.Error(), "the full error is logged")
			}
		})
	}
}

func TestUnprocessableFromService(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.CreateJobFunc = func(context.Context, flywheel.CreateJobRequest) (*flywheel.Run, error) {
		return nil, &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: "bad split", Fields: []flywheel.FieldError{
			{Loc: []string{"body", "data_split_config", "eval_size"}, Msg: "Input should be greater than 0", Type: "greater_than"},
		}}
	}
	resp := do(t, b.server(), "POST", "/api/jobs", `{"workload_id":"w","client_id":"c","data_split_config":{"eval_size":0}}`)
	require.Equal(t, 422, resp.status)
	require.JSONEq(t, `{"detail":[{"loc":["body","data_split_config","eval_size"],"msg":"Input should be greater than 0","type":"greater_than"}]}`, string(resp.body))
}

func TestCreateJob(t *testing.T) {
	t.Parallel()

	t.Run("PassesRequest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.CreateJobRequest
		b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
			got = req
			return &flywheel.Run{ID: "r9"}, nil
		}
		resp := do(t, b.server(), "POST", "/api/jobs",
			`{"workload_id":"w","client_id":"c","unknown":1,"data_split_config":{"eval_size":"30","val_ratio":0.2,"random_seed":7,"parse_function_arguments":"false","limit":5.0}}`,
			"Idempotency-Key", "key-1")
		require.Equal(t, 200, resp.status, string(resp.body))
		require.JSONEq(t, `{"id":"r9","status":"queued","message":"NIM workflow started"}`, string(resp.body))
		require.Equal(t, "w", got.WorkloadID)
		require.Equal(t, "c", got.ClientID)
		require.Equal(t, "key-1", got.IdempotencyKey)
		require.NotNil(t, got.DataSplitConfig)
		require.Equal(t, 30, *got.DataSplitConfig.EvalSize)
		require.InDelta(t, 0.2, *got.DataSplitConfig.ValRatio, 1e-12)
		require.Equal(t, int64(7), *got.DataSplitConfig.RandomSeed)
		require.False(t, *got.DataSplitConfig.ParseFunctionArguments)
		require.Equal(t, 5, *got.DataSplitConfig.Limit)
		require.Nil(t, got.DataSplitConfig.MinTotalRecords, "fields not given stay unset")
	})

	tests := []struct {
		name string
		body string
		want string
	}{
		{"EmptyBody", ``, `[{"loc":["body"],"msg":"Field required","type":"missing","input":null}]`},
		{"MissingBoth", `{}`, `[{"loc":["body","workload_id"],"msg":"Field required","type":"missing","input":{}},{"loc":["body","client_id"],"msg":"Field required","type":"missing","input":{}}]`},
		{"WrongType", `{"workload_id":5,"client_id":null}`, `[{"loc":["body","workload_id"],"msg":"Input should be a valid string","type":"string_type","input":5},{"loc":["body","client_id"],"msg":"Input should be a valid string","type":"string_type","input":null}]`},
		{"Blank", `{"workload_id":" ","client_id":"c"}`, `[{"loc":["body","workload_id"],"msg":"String should have at least 1 character","type":"string_too_short","input":" ","ctx":{"min_length":1}}]`},
		{"BadJSON", `{"workload_id": }`, `[{"loc":["body",16],"msg":"JSON decode error","type":"json_invalid","input":{},"ctx":{"error":"invalid character '}' looking for beginning of value"}}]`},
		{"TrailingData", `{"workload_id":"w","client_id":"c"} {}`, `[{"loc":["body",36],"msg":"JSON decode error","type":"json_invalid","input":{},"ctx":{"error":"extra data after the JSON value"}}]`},
		{"Array", `[1]`, `[{"loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","type":"model_attributes_type","input":[1]}]`},
		{"SplitNotObject", `{"workload_id":"w","client_id":"c","data_split_config":3}`, `[{"loc":["body","data_split_config"],"msg":"Input should be a valid dictionary or instance of DataSplitConfig","type":"model_type","input":3,"ctx":{"class_name":"DataSplitConfig"}}]`},
		{"SplitFields", `{"workload_id":"w","client_id":"c","data_split_config":{"eval_size":1.5,"val_ratio":1,"limit":"many","min_total_records":[],"parse_function_arguments":"maybe","random_seed":"x"}}`,
			`[{"loc":["body","data_split_config","eval_size"],"msg":"Input should be a valid integer, got a number with a fractional part","type":"int_from_float","input":1.5},
			  {"loc":["body","data_split_config","min_total_records"],"msg":"Input should be a valid integer","type":"int_type","input":[]},
			  {"loc":["body","data_split_config","limit"],"msg":"Input should be a valid integer, unable to parse string as an integer","type":"int_parsing","input":"many"},
			  {"loc":["body","data_split_config","random_seed"],"msg":"Input should be a valid integer, unable to parse string as an integer","type":"int_parsing","input":"x"},
			  {"loc":["body","data_split_config","val_ratio"],"msg":"Input should be less than 1","type":"less_than","input":1,"ctx":{"lt":1}},
			  {"loc":["body","data_split_config","parse_function_arguments"],"msg":"Input should be a valid boolean, unable to interpret input","type":"bool_parsing","input":"maybe"}]`},
		{"NegativeRatio", `{"workload_id":"w","client_id":"c","data_split_config":{"val_ratio":-0.1}}`, `[{"loc":["body","data_split_config","val_ratio"],"msg":"Input should be greater than or equal to 0","type":"greater_than_equal","input":-0.1,"ctx":{"ge":0}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			called := false
			b.jobs.CreateJobFunc = func(context.Context, flywheel.CreateJobRequest) (*flywheel.Run, error) {
				called = true
				return &flywheel.Run{ID: "x"}, nil
			}
			resp := do(t, b.server(), "POST", "/api/jobs", tt.body)
			require.Equal(t, 422, resp.status, string(resp.body))
			require.JSONEq(t, `{"detail":`+tt.want+`}`, string(resp.body))
			require.False(t, called, "an invalid request reaches no service")
		})
	}

	t.Run("IdempotencyKeys", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := b.server()
		body := `{"workload_id":"w","client_id":"c"}`
		for _, key := range []string{"a", "order 42", strings.Repeat("k", 255)} {
			require.Equal(t, 200, do(t, h, "POST", "/api/jobs", body, "Idempotency-Key", key).status, key)
		}
		for _, key := range []string{strings.Repeat("k", 256), "caf\u00e9", "   "} {
			resp := do(t, h, "POST", "/api/jobs", body, "Idempotency-Key", key)
			require.Equal(t, 422, resp.status, key)
			require.Contains(t, string(resp.body), `"loc":["header","idempotency-key"]`)
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		resp := do(t, b.server(), "POST", "/api/jobs", `{"workload_id":"`+strings.Repeat("x", 32<<20)+`","client_id":"c"}`) // server.MaxJobBodyBytes
		require.Equal(t, 413, resp.status)
		require.Equal(t, "Request body too large", resp.detail(t))
	})
}

func TestListJobs(t *testing.T) {
	t.Parallel()

	t.Run("FiltersAndCursor", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.JobFilter
		b.jobs.ListJobsFunc = func(_ context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
			got = f
			return flywheel.JobPage{Runs: []*flywheel.Run{{ID: "a", WorkloadID: "w", ClientID: "c", Status: flywheel.RunCompleted, StartedAt: start}}}, nil
		}
		resp := do(t, b.server(), "GET", "/api/jobs?workload_id=w&client_id=c&status=completed&limit=10&cursor=abc", "")
		require.Equal(t, 200, resp.status)
		require.Equal(t, flywheel.JobFilter{WorkloadID: "w", ClientID: "c", Status: flywheel.RunCompleted, Limit: 10, Cursor: "abc"}, got)
		var body api.JobsListResponse
		require.NoError(t, json.Unmarshal(resp.body, &body))
		require.Len(t, body.Jobs, 1)
		require.Nil(t, body.NextCursor)
		require.Contains(t, string(resp.body), `"next_cursor":null`)
		require.Contains(t, string(resp.body), `"finished_at":null`)
		require.Contains(t, string(resp.body), `"started_at":"2026-03-15T14:30:00.000000+00:00"`)
	})

	t.Run("NextCursor", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		resp := do(t, b.server(), "GET", "/api/jobs", "")
		require.Equal(t, 200, resp.status)
		var body api.JobsListResponse
		require.NoError(t, json.Unmarshal(resp.body, &body))
		require.Len(t, body.Jobs, 2)
		require.Equal(t, "c2", *body.NextCursor)
		require.Equal(t, "every candidate failed", *body.Jobs[0].Error)
	})

	tests := []struct {
		name, query, want string
	}{
		{"BadStatus", "status=done", `[{"loc":["query","status"],"msg":"Input should be 'pending', 'running', 'completed', 'failed' or 'cancelled'","type":"enum","input":"done","ctx":{"expected":"'pending', 'running', 'completed', 'failed' or 'cancelled'"}}]`},
		{"BadLimit", "limit=ten", `[{"loc":["query","limit"],"msg":"Input should be a valid integer, unable to parse string as an integer","type":"int_parsing","input":"ten"}]`},
		{"LimitTooBig", "limit=5000", `[{"loc":["query","limit"],"msg":"Input should be less than or equal to 1000","type":"less_than_equal","input":"5000","ctx":{"le":1000}}]`},
		{"LimitZero", "limit=0", `[{"loc":["query","limit"],"msg":"Input should be greater than or equal to 1","type":"greater_than_equal","input":"0","ctx":{"ge":1}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			resp := do(t, b.server(), "GET", "/api/jobs?"+tt.query, "")
			require.Equal(t, 422, resp.status)
			require.JSONEq(t, `{"detail":`+tt.want+`}`, string(resp.body))
		})
	}
}

func TestGetJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var gotID string
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		gotID = id
		d := flywheelDetail(id)
		return d, nil
	}
	resp := do(t, b.server(), "GET", "/api/jobs/run-7", "")
	require.Equal(t, 200, resp.status)
	require.Equal(t, "run-7", gotID)
	var d api.JobDetailResponse
	require.NoError(t, json.Unmarshal(resp.body, &d))
	require.Equal(t, "running", d.Status)
	require.Len(t, d.NIMs, 2)
	require.Len(t, d.Stages, 4, "run-level stages only")
	require.Len(t, d.NIMs[0].Stages, 6)
	require.Len(t, d.NIMs[1].Stages, 6)
	require.Equal(t, "succeeded", d.NIMs[0].Stages[0].Status)
	require.Equal(t, 2, d.NIMs[1].Stages[3].Attempts)
	require.Equal(t, "run-7-e1", d.NIMs[0].Evaluations[0].ID)
	require.Equal(t, 100, d.NIMs[0].Evaluations[0].ScoreDetails["function_name_and_args_accuracy"].N)
	require.Equal(t, 0.95, d.NIMs[0].Evaluations[0].Scores["function_name"])
	require.NotContains(t, d.NIMs[0].Evaluations[0].Scores, "nan", "NaN scores are dropped")
	require.Equal(t, "pending", d.NIMs[1].DeploymentStatus, "an unset status shows as pending")
	require.Equal(t, "dfwbp/customized-meta-llama-3.2-1b-instruct@cust-1", *d.NIMs[0].Customizations[0].CustomizedModel)
	require.Equal(t, "remote", d.LLMJudge.Type)
	require.Equal(t, 420, d.DataStats.Total)
	require.Equal(t, "tool_calling", d.WorkloadType)
	require.Equal(t, "UTC", d.StartedAt.Location().String())
}

// flywheelDetail is a sample detail with a NaN score and an unset status,
// which the API must clean up.
func flywheelDetail(id string) *flywheel.JobDetail {
	d := sampleDetail(id)
	d.NIMs[0].Evaluations[0].Scores["nan"] = nanValue()
	d.NIMs[1].DeploymentStatus = ""
	return d
}

func TestCancelAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var cancelled, deleted string
	b.jobs.CancelJobFunc = func(_ context.Context, id string) (string, error) {
		cancelled = id
		return "Job is already cancelled.", nil
	}
	b.jobs.DeleteJobFunc = func(_ context.Context, id string) (string, error) { deleted = id; return "Job deletion started.", nil }
	h := b.server()
	resp := do(t, h, "POST", "/api/jobs/abc/cancel", "")
	require.Equal(t, 400, resp.status, "a cancelled job has finished: the blueprint answers 400")
	require.JSONEq(t, `{"detail":"Cannot cancel a job that has already finished. Job is already cancelled."}`, string(resp.body))
	resp = do(t, h, "DELETE", "/api/jobs/def", "")
	require.Equal(t, 200, resp.status)
	require.JSONEq(t, `{"id":"def","message":"Job deletion started."}`, string(resp.body))
	require.Equal(t, "abc", cancelled)
	require.Equal(t, "def", deleted)
}

func TestListItems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got flywheel.ItemFilter
	b.jobs.ListItemsFunc = func(_ context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
		got = f
		items := make([]flywheel.ItemResult, f.Limit)
		for i := range items {
			items[i] = flywheel.ItemResult{EvaluationID: f.EvaluationID, Index: f.Offset + i, Scores: map[string]float64{"f1": 1}}
		}
		return flywheel.ItemPage{Items: items, Total: 25}, nil
	}
	h := b.server()
	resp := do(t, h, "GET", "/api/evaluations/ev1/items?tool=t&error_class=wrong_arguments&divergent=1&limit=10&offset=10", "")
	require.Equal(t, 200, resp.status, string(resp.body))
	require.Equal(t, flywheel.ItemFilter{EvaluationID: "ev1", Tool: "t", ErrorClass: "wrong_arguments", OnlyDivergent: true, Limit: 10, Offset: 10}, got)
	var page api.ItemsResponse
	require.NoError(t, json.Unmarshal(resp.body, &page))
	require.Equal(t, 20, *page.NextOffset)
	require.Equal(t, 10, page.Items[0].Index)

	resp = do(t, h, "GET", "/api/evaluations/ev1/items?offset=20", "")
	require.Equal(t, 200, resp.status)
	require.Equal(t, 50, got.Limit, "default page size")
	require.Contains(t, string(resp.body), `"next_offset":null`)

	resp = do(t, h, "GET", "/api/evaluations/ev1/items?divergent=perhaps&offset=-1", "")
	require.Equal(t, 422, resp.status)
	require.Contains(t, string(resp.body), `"loc":["query","divergent"]`)
	require.Contains(t, string(resp.body), `"loc":["query","offset"]`)
}

const goodLine = `{"workload_id":"w","client_id":"c","timestamp":1746000037,"request":{"messages":[]},"response":{"choices":[]}}`

func TestIngestLogs(t *testing.T) {
	t.Parallel()

	t.Run("KeepsGoodLinesAndNamesBadOnes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var stored []flywheel.LogRecord
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			stored = append(stored, recs...)
			return len(recs) - 1, 1, nil
		}
		body := goodLine + "\r\n\n" +
			`{"workload_id":"w","client_id":"c","timestamp":"2025-05-01T10:00:00Z","request":{},"response":{}}` + "\n" +
			`{"workload_id":"w","timestamp":1,"request":{},"response":{}}` + "\n" +
			`not json` + "\n" +
			`{"workload_id":"w","client_id":"c","timestamp":1,"request":[],"response":{}}` + "\n" +
			`{"workload_id":"w","client_id":"c","timestamp":"soon","request":{},"response":{}}` + "\n" +
			`{"workload_id":7,"client_id":"c","timestamp":1,"request":{},"response":{}}`
		resp := do(t, b.server(), "POST", "/api/logs", body, "Content-Type", "application/x-ndjson")
		require.Equal(t, 200, resp.status, string(resp.body))
		var got api.LogsResponse
		require.NoError(t, json.Unmarshal(resp.body, &got))
		require.Equal(t, 7, got.Lines)
		require.Equal(t, 1, got.Inserted)
		require.Equal(t, 1, got.Duplicates)
		require.Equal(t, 5, got.Rejected)
		// Each rejected line is named with its number and field; the wording
		// of the reasons belongs to the ingest package.
		type where struct {
			line  int
			field string
		}
		var got2 []where
		for _, e := range got.Errors {
			require.NotEmpty(t, e.Reason)
			got2 = append(got2, where{e.Line, e.Field})
		}
		require.Equal(t, []where{{4, "client_id"}, {5, ""}, {6, "request"}, {7, "timestamp"}, {8, "workload_id"}}, got2)
		require.Len(t, stored, 2)
		require.Equal(t, int64(1746000037), stored[0].Timestamp.Unix())
		require.JSONEq(t, `{"messages":[]}`, string(stored[0].Request))
	})

	t.Run("GeneratedToolCallingLogs", func(t *testing.T) {
		t.Parallel()
		dir := testcorpus.BFCLDir(t)
		b := setup(t)
		var mu sync.Mutex
		workloads := map[string]int{}
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				workloads[r.WorkloadID]++
			}
			return len(recs), 0, nil
		}
		var body strings.Builder
		for _, f := range []string{"simple", "multiple", "parallel", "parallel_multiple"} {
			data, err := os.ReadFile(filepath.Join(dir, f+".jsonl"))
			require.NoError(t, err)
			body.Write(data)
		}
		resp := do(t, b.server(), "POST", "/api/logs", body.String())
		require.Equal(t, 200, resp.status, string(resp.body))
		var got api.LogsResponse
		require.NoError(t, json.Unmarshal(resp.body, &got))
		require.Equal(t, 1000, got.Lines)
		require.Equal(t, 1000, got.Inserted)
		require.Zero(t, got.Rejected, "%v", got.Errors)
		require.Equal(t, map[string]int{"bfcl-simple": 400, "bfcl-multiple": 200, "bfcl-parallel": 200, "bfcl-parallel-multiple": 200}, workloads)
	})

	t.Run("Batches", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var batches []int
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			batches = append(batches, len(recs))
			return len(recs), 0, nil
		}
		body := strings.Repeat(goodLine+"\n", 2500)
		resp := do(t, b.server(), "POST", "/api/logs", body)
		require.Equal(t, 200, resp.status)
		require.Equal(t, []int{1000, 1000, 500}, batches)
		require.Contains(t, string(resp.body), `"inserted":2500`)
	})

	t.Run("CustomParserAndErrorCap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.LogParser = func(line []byte, n int) (flywheel.LogRecord, *api.LogLineError) {
			return flywheel.LogRecord{}, &api.LogLineError{Field: "x", Reason: "no"}
		}
		resp := do(t, b.server(), "POST", "/api/logs", strings.Repeat("{}\n", 150))
		require.Equal(t, 200, resp.status)
		var got api.LogsResponse
		require.NoError(t, json.Unmarshal(resp.body, &got))
		require.Equal(t, 150, got.Rejected)
		require.Len(t, got.Errors, 100)
		require.True(t, got.ErrorsTruncated)
		require.Equal(t, 100, got.Errors[99].Line)
	})

	t.Run("TooLargeStoresNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.MaxLogBodyBytes = 1000
		called := false
		b.logs.InsertLogsFunc = func(context.Context, []flywheel.LogRecord) (int, int, error) { called = true; return 0, 0, nil }
		resp := do(t, b.server(), "POST", "/api/logs", strings.Repeat(goodLine+"\n", 20))
		require.Equal(t, 413, resp.status)
		require.Contains(t, resp.detail(t), "exceeds 1000 bytes")
		require.False(t, called)
	})

	t.Run("StoreFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := 0
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			calls++
			if calls == 2 {
				return 0, 0, fmt.Errorf("insert: %w", flywheel.Errorf(flywheel.EUNAVAILABLE, "Database unavailable: disk full"))
			}
			return len(recs), 0, nil
		}
		resp := do(t, b.server(), "POST", "/api/logs", strings.Repeat(goodLine+"\n", 1500))
		require.Equal(t, 503, resp.status)
		require.Contains(t, resp.detail(t), "after 1000 were stored")
		require.Contains(t, resp.detail(t), "disk full; send the same body again")
		require.Contains(t, b.logBuf.String(), "disk full")
	})

	t.Run("NotConfigured", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.Logs = nil
		resp := do(t, b.server(), "POST", "/api/logs", goodLine)
		require.Equal(t, 503, resp.status)
	})
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) {
		var m map[string]int
		m["boom"] = 1 // assignment to a nil map panics
		return nil, nil
	}
	resp := do(t, b.server(), "GET", "/api/jobs/x", "")
	require.Equal(t, 500, resp.status)
	require.JSONEq(t, `{"detail":"Internal error"}`, string(resp.body))
	logs := b.logBuf.String()
	require.Contains(t, logs, "Handler panicked")
	require.Contains(t, logs, "assignment to entry in nil map")
	require.Contains(t, logs, "goroutine", "the stack is logged")
	require.Contains(t, logs, `"status":500`)
}

func TestNilDetailIsInternalError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) { return &flywheel.JobDetail{}, nil }
	resp := do(t, b.server(), "GET", "/api/jobs/x", "")
	require.Equal(t, 500, resp.status)
	require.Equal(t, "Internal error", resp.detail(t))
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	ready := errors.New("river: not started")
	b.jobs.ReadyFunc = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return ready }
	h := b.server()

	resp := do(t, h, "GET", "/healthz", "")
	require.Equal(t, 200, resp.status)
	require.JSONEq(t, `{"status":"ok","version":"test"}`, string(resp.body))

	resp = do(t, h, "GET", "/readyz", "")
	require.Equal(t, 503, resp.status)
	require.Equal(t, "Not ready", resp.detail(t), "an uncoded cause is not shown")
	mu.Lock()
	ready = nil
	mu.Unlock()
	resp = do(t, h, "GET", "/readyz", "")
	require.Equal(t, 200, resp.status)

	do(t, h, "GET", "/api/jobs", "")
	do(t, h, "GET", "/no/such/path", "")
	resp = do(t, h, "GET", "/metrics", "")
	require.Equal(t, 200, resp.status)
	text := string(resp.body)
	require.Contains(t, text, `flywheel_http_requests_total{code="200",method="GET",route="GET /api/jobs"} 1`)
	require.Contains(t, text, `flywheel_http_requests_total{code="404",method="GET",route="other"} 1`)
	require.Contains(t, text, `flywheel_http_request_duration_seconds_bucket`)

	// A second server on the same registry shares the collectors.
	h2 := b.server()
	do(t, h2, "GET", "/api/jobs", "")
	resp = do(t, h2, "GET", "/metrics", "")
	require.Contains(t, string(resp.body), `flywheel_http_requests_total{code="200",method="GET",route="GET /api/jobs"} 2`)
}

func TestRoutingAndMounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mounted := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		})
	}
	b.opts.UI = mounted("ui")
	b.opts.RiverUI = mounted("river")
	b.opts.Capture = mounted("capture")
	h := b.server()

	tests := []struct {
		method, target string
		status         int
		body, location string
	}{
		{"GET", "/ui/jobs/1", 200, "ui /ui/jobs/1", ""},
		{"GET", "/ui/river/queues", 200, "river /ui/river/queues", ""},
		{"POST", "/v1/chat/completions", 200, "capture /v1/chat/completions", ""},
		{"GET", "/", 302, "", "/ui/"},
		{"GET", "/ui", 301, "", "/ui/"},
		{"GET", "/ui/river", 301, "", "/ui/river/"},
		{"GET", "/nothing", 404, `{"detail":"Not Found"}`, ""},
		{"PUT", "/api/jobs", 405, `{"detail":"Method Not Allowed"}`, ""},
		{"GET", "/api/jobs/x/cancel", 405, `{"detail":"Method Not Allowed"}`, ""},
	}
	for _, tt := range tests {
		resp := do(t, h, tt.method, tt.target, "")
		require.Equal(t, tt.status, resp.status, "%s %s", tt.method, tt.target)
		if tt.body != "" {
			require.Equal(t, tt.body, strings.TrimSpace(string(resp.body)), "%s %s", tt.method, tt.target)
		}
		if tt.location != "" {
			require.Equal(t, tt.location, resp.header.Get("Location"))
		}
	}
	resp := do(t, h, "PUT", "/api/jobs", "")
	require.Equal(t, "POST, GET", resp.header.Get("Allow"))

	// Without the optional handlers, their paths are 404s.
	plain := setup(t).server()
	for _, p := range []string{"/ui/", "/ui/river/", "/v1/chat/completions", "/"} {
		require.Equal(t, 404, do(t, plain, "GET", p, "").status, p)
	}
}

func TestRequestIDAndLogging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := b.server()
	resp := do(t, h, "GET", "/api/jobs", "", "X-Request-ID", "abc-123")
	require.Equal(t, "abc-123", resp.header.Get("X-Request-ID"))
	resp = do(t, h, "GET", "/api/jobs", "", "X-Request-ID", "bad id\x01")
	id := resp.header.Get("X-Request-ID")
	require.Len(t, id, 24)

	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.logBuf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["request_id"] == id {
			line = m
		}
	}
	require.NotNil(t, line, "the request is logged with its id")
	require.Equal(t, "HTTP request", line["msg"])
	require.Equal(t, "GET /api/jobs", line["route"])
	require.EqualValues(t, 200, line["status"])
	require.Equal(t, "server", line["component"])
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	h := setup(t).server()
	resp := do(t, h, "GET", "/openapi.json", "")
	require.Equal(t, 200, resp.status)
	require.Equal(t, "application/json", resp.header.Get("Content-Type"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(resp.body, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Contains(t, doc["paths"], "/api/jobs/{job_id}/cancel")
	resp = do(t, h, "GET", "/openapi.yaml", "")
	require.Equal(t, 200, resp.status)
	require.Contains(t, string(resp.body), "openapi: 3.1.0")
}
