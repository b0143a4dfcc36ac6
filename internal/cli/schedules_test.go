package cli_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

// fakeSchedules keeps schedules in memory and refuses a request without a
// trigger as the engine does.
type fakeSchedules struct {
	mu     sync.Mutex
	got    []flywheel.CreateScheduleRequest
	scheds []flywheel.Schedule
}

func (f *fakeSchedules) CreateSchedule(_ context.Context, req flywheel.CreateScheduleRequest) (*flywheel.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, req)
	if req.Cron == "" && req.MinNewRecords == nil && req.AgreementBelow == nil {
		return nil, &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: "no trigger", Fields: []flywheel.FieldError{{
			Loc: []string{"body"}, Msg: "Value error, give at least one trigger: cron, min_new_records or agreement_below"}}}
	}
	sc := flywheel.Schedule{ID: "0123456789abcdef01234567", WorkloadID: req.WorkloadID, ClientID: req.ClientID, Cron: req.Cron,
		MinNewRecords: req.MinNewRecords, AgreementBelow: req.AgreementBelow, AgreementMetric: req.AgreementMetric,
		Enabled: req.Enabled == nil || *req.Enabled, CreatedAt: start}
	if req.AgreementBelow != nil && sc.AgreementMetric == "" {
		sc.AgreementMetric = flywheel.DefaultAgreementMetric
	}
	if req.Cron != "" {
		next := start.Add(30 * time.Minute)
		sc.NextFireAt = &next
	}
	f.scheds = append(f.scheds, sc)
	return &sc, nil
}

func (f *fakeSchedules) ListSchedules(context.Context) ([]flywheel.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flywheel.Schedule{}, f.scheds...), nil
}

func (f *fakeSchedules) GetSchedule(_ context.Context, id string) (*flywheel.ScheduleDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sc := range f.scheds {
		if sc.ID == id {
			return &flywheel.ScheduleDetail{Schedule: sc, Events: []flywheel.ScheduleEvent{
				{ID: 2, At: start.Add(time.Hour), Outcome: flywheel.ScheduleSkipped, Reason: "cron due; run r1 still running", RunID: "r1"},
				{ID: 1, At: start, Outcome: flywheel.ScheduleFired, Reason: "cron due", RunID: "r1"}}}, nil
		}
	}
	return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Schedule %s not found", id)
}

func (f *fakeSchedules) DeleteSchedule(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, sc := range f.scheds {
		if sc.ID == id {
			f.scheds = append(f.scheds[:i], f.scheds[i+1:]...)
			return nil
		}
	}
	return flywheel.Errorf(flywheel.ENOTFOUND, "Schedule %s not found", id)
}

// TestSchedulesCommands drives create, list, get and delete against a
// server and checks what they send and print.
func TestSchedulesCommands(t *testing.T) {
	t.Parallel()
	fake := &fakeSchedules{}
	srv := httptest.NewServer(server.New(server.Options{Jobs: &servertest.JobService{}, Schedules: fake,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}))
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	run := func(args ...string) error {
		stdout.Reset()
		stderr.Reset()
		cmd := cli.NewSchedulesCommand(cli.Options{ServerURL: func() string { return srv.URL }, Stdout: &stdout, Stderr: &stderr,
			IsTerminal: func(io.Writer) bool { return false }})
		cmd.SetArgs(args)
		cmd.SetOut(&stderr)
		cmd.SetErr(&stderr)
		cmd.SilenceUsage = true
		return cmd.ExecuteContext(t.Context())
	}

	require.NoError(t, run("create", "--workload-id", "w", "--client-id", "c", "--cron", "0 * * * *", "--min-new-records", "500",
		"--agreement-below", "0.8"))
	require.Contains(t, stdout.String(), "Created schedule 0123456789abcdef01234567 (cron 0 * * * *, 500 new records, function_name_and_args_accuracy < 0.8)")
	require.Contains(t, stdout.String(), "next cron time: 2026-03-15 15:00:00Z")
	got := fake.got[0]
	require.Equal(t, "0 * * * *", got.Cron)
	require.Equal(t, 500, *got.MinNewRecords)
	require.InDelta(t, 0.8, *got.AgreementBelow, 1e-12)
	require.Nil(t, got.Enabled, "enabled unless --disabled")

	err := run("create", "--workload-id", "w", "--client-id", "c")
	require.Error(t, err)
	require.Contains(t, err.Error(), "give at least one trigger")

	require.NoError(t, run("list"))
	require.Contains(t, stdout.String(), "NEXT CRON TIME")
	require.Contains(t, stdout.String(), "0123456789abcdef01234567  w         c       true")

	require.NoError(t, run("get", "0123456789abcdef01234567"))
	require.Contains(t, stdout.String(), "skipped  r1   cron due; run r1 still running")

	require.NoError(t, run("list", "-o", "json"))
	require.Contains(t, stdout.String(), `"next_fire_at": "2026-03-15T15:00:00`)

	require.NoError(t, run("delete", "0123456789abcdef01234567"))
	require.Contains(t, stdout.String(), "Schedule deleted")
	err = run("delete", "0123456789abcdef01234567")
	require.Error(t, err)
	require.Contains(t, err.Error(), "not found")
}
