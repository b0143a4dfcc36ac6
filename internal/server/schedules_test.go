package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// testClock is a clock the tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// scheduleEngine returns an engine that runs no stages, on a new SQLite
// store, with clock's time.
func scheduleEngine(t *testing.T, clock *testClock) (*engine.Engine, *store.Store) {
	t.Helper()
	s := storetest.Open(t, store.SQLite)
	_, err := engine.Migrate(context.Background(), s)
	require.NoError(t, err)
	e, err := engine.New(engine.Options{Store: s, Now: clock.Now,
		Spec: flywheel.RunSpec{Candidates: []flywheel.NIMConfig{{ModelName: "m"}}, Namespace: "dfwbp"},
		Runner: &stage.Runner{Store: s, Platform: &flywheeltest.Platform{}, Datasets: &flywheeltest.Builder{},
			Evaluator: &flywheeltest.Evaluator{}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e, s
}

// validateOwn checks an answer against our OpenAPI document, closed.
func validateOwn(t *testing.T, docPath, method string, res response) {
	t.Helper()
	docJSON, err := api.DocumentJSON()
	require.NoError(t, err)
	doc := &schemaDoc{root: loadYAMLDoc(t, docJSON), closed: true}
	schema, err := doc.responseSchema(docPath, method, res.status)
	require.NoError(t, err)
	errs := doc.validate(schema, res.json(t), "$")
	require.Empty(t, errs, "answer breaks our document:\n%s\nbody: %s", strings.Join(errs, "\n"), res.body)
}

// TestSchedulesAPI creates, lists, reads (with the events of a fire and a
// skip), and deletes a schedule through the API; every answer matches the
// document and creation and deletion are in the audit log.
func TestSchedulesAPI(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Date(2026, 3, 1, 10, 2, 0, 0, time.UTC)}
	e, s := scheduleEngine(t, clock)
	b := setup(t)
	b.opts.Schedules, b.opts.Audit = e, s
	h := b.server()

	res := do(t, h, "POST", "/api/schedules", `{"workload_id":"never-seen","client_id":"c","cron":"*/5 * * * *","min_new_records":100}`)
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	validateOwn(t, "/api/schedules", "POST", res)
	var sc api.Schedule
	decodeInto(t, res, &sc)
	require.Equal(t, time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC), sc.NextFireAt.Time)
	require.True(t, sc.Enabled)
	require.Equal(t, flywheel.ActorLocal, sc.CreatedBy)

	res = do(t, h, "POST", "/api/schedules", `{"workload_id":"w2","client_id":"c","agreement_below":0.8,"enabled":false}`)
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	var sc2 api.Schedule
	decodeInto(t, res, &sc2)
	require.Equal(t, flywheel.AgreementUnavailable, sc2.AgreementStatus, "no online evaluation in this process")
	require.False(t, sc2.Enabled)

	res = do(t, h, "GET", "/api/schedules", "")
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	validateOwn(t, "/api/schedules", "GET", res)
	var list api.SchedulesResponse
	decodeInto(t, res, &list)
	require.Len(t, list.Schedules, 2)

	for _, at := range []time.Time{time.Date(2026, 3, 1, 10, 5, 1, 0, time.UTC), time.Date(2026, 3, 1, 10, 10, 1, 0, time.UTC)} {
		clock.Set(at)
		_, err := e.CheckSchedules(context.Background())
		require.NoError(t, err)
	}
	res = do(t, h, "GET", "/api/schedules/"+sc.ID, "")
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	validateOwn(t, "/api/schedules/{schedule_id}", "GET", res)
	var d api.ScheduleDetail
	decodeInto(t, res, &d)
	require.Len(t, d.Events, 2)
	require.Equal(t, "skipped", d.Events[0].Outcome)
	require.Equal(t, "fired", d.Events[1].Outcome)
	require.Contains(t, d.Events[0].Reason, "run "+*d.Events[1].RunID+" still running")
	require.Equal(t, *d.Events[1].RunID, *d.LastRunID)

	res = do(t, h, "DELETE", "/api/schedules/"+sc.ID, "")
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	validateOwn(t, "/api/schedules/{schedule_id}", "DELETE", res)
	res = do(t, h, "GET", "/api/schedules/"+sc.ID, "")
	require.Equal(t, http.StatusNotFound, res.status, "%s", res.body)
	validateOwn(t, "/api/schedules/{schedule_id}", "GET", res)
	res = do(t, h, "DELETE", "/api/schedules/"+sc.ID, "")
	require.Equal(t, http.StatusNotFound, res.status, "%s", res.body)
	res = do(t, h, "GET", "/api/schedules/not-an-id", "")
	require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)

	for action, n := range map[string]int{flywheel.AuditScheduleCreated: 2, flywheel.AuditScheduleDeleted: 1,
		flywheel.AuditScheduleFired: 1, flywheel.AuditScheduleSkipped: 1} {
		entries, err := s.ListAudit(context.Background(), flywheel.AuditQuery{Action: action})
		require.NoError(t, err)
		require.Len(t, entries, n, action)
	}
}

// TestSchedulesValidation checks that each bad request is a 422 naming
// its field.
func TestSchedulesValidation(t *testing.T) {
	t.Parallel()
	e, _ := scheduleEngine(t, &testClock{t: time.Now()})
	b := setup(t)
	b.opts.Schedules = e
	h := b.server()
	cases := []struct {
		name, body string
		loc        []any
	}{
		{"BadCron", `{"workload_id":"w","client_id":"c","cron":"every hour"}`, []any{"body", "cron"}},
		{"NoTrigger", `{"workload_id":"w","client_id":"c"}`, []any{"body"}},
		{"NegativeN", `{"workload_id":"w","client_id":"c","min_new_records":-3}`, []any{"body", "min_new_records"}},
		{"ThresholdAboveOne", `{"workload_id":"w","client_id":"c","agreement_below":1.2}`, []any{"body", "agreement_below"}},
		{"ThresholdNegative", `{"workload_id":"w","client_id":"c","agreement_below":-0.2}`, []any{"body", "agreement_below"}},
		{"WrongType", `{"workload_id":"w","client_id":"c","min_new_records":"ten"}`, []any{"body", "min_new_records"}},
		{"UnknownField", `{"workload_id":"w","client_id":"c","cron":"@daily","every":"day"}`, []any{"body", "every"}},
		{"NoWorkload", `{"client_id":"c","cron":"@daily"}`, []any{"body", "workload_id"}},
		{"NotJSON", `{"workload_id":`, []any{"body"}},
		{"Empty", ``, []any{"body"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, "POST", "/api/schedules", tc.body)
			require.Equal(t, http.StatusUnprocessableEntity, res.status, "%s", res.body)
			validateOwn(t, "/api/schedules", "POST", res)
			var v api.ValidationErrorResponse
			decodeInto(t, res, &v)
			require.Equal(t, tc.loc, v.Detail[0].Loc, "%s", res.body)
		})
	}
}

// TestSchedulesScopesAndAvailability checks the access rules (read lists
// and reads, write creates and deletes) and the 503 of a server without a
// schedule service.
func TestSchedulesScopesAndAvailability(t *testing.T) {
	t.Parallel()
	e, _ := scheduleEngine(t, &testClock{t: time.Now()})
	b := authSetup(t, true, func(o *server.Options) { o.Schedules = e })
	const body = `{"workload_id":"w","client_id":"c","cron":"@daily"}`
	for _, tc := range []struct {
		scope  string
		method string
		status int
	}{
		{"read", "POST", http.StatusForbidden},
		{"ingest", "POST", http.StatusForbidden},
		{"write", "POST", http.StatusCreated},
		{"admin", "POST", http.StatusCreated},
		{"read", "GET", http.StatusOK},
		{"ingest", "GET", http.StatusForbidden},
	} {
		res := do(t, b.h, tc.method, "/api/schedules", body, bearer(b.secrets[tc.scope])...)
		require.Equal(t, tc.status, res.status, "%s %s: %s", tc.scope, tc.method, res.body)
	}
	res := do(t, b.h, "GET", "/api/schedules", "")
	require.Equal(t, http.StatusUnauthorized, res.status)
	var list api.SchedulesResponse
	decodeInto(t, do(t, b.h, "GET", "/api/schedules", "", bearer(b.secrets["read"])...), &list)
	require.Len(t, list.Schedules, 2)
	id := list.Schedules[0].ID
	res = do(t, b.h, "DELETE", "/api/schedules/"+id, "", bearer(b.secrets["read"])...)
	require.Equal(t, http.StatusForbidden, res.status)
	res = do(t, b.h, "DELETE", "/api/schedules/"+id, "", bearer(b.secrets["write"])...)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)

	bare := setup(t).server()
	for _, m := range []string{"GET", "POST"} {
		res := do(t, bare, m, "/api/schedules", body)
		require.Equal(t, http.StatusServiceUnavailable, res.status, "%s", res.body)
	}
}
