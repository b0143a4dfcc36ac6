package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

// fakePromotions keeps promotions in memory.
type fakePromotions struct {
	mu  sync.Mutex
	got []flywheel.PromoteRequest
	ps  []flywheel.Promotion
}

func (f *fakePromotions) Promote(_ context.Context, req flywheel.PromoteRequest) (*flywheel.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, req)
	p := flywheel.Promotion{ID: "0123456789abcdef01234567", WorkloadID: "w", ClientID: "c", JobID: req.JobID, Candidate: req.Candidate,
		Variant: req.Variant, Mode: req.Mode, CanaryPercent: req.CanaryPercent, Status: flywheel.PromotionActive, CreatedAt: start}
	f.ps = append(f.ps, p)
	return &p, nil
}

func (f *fakePromotions) Rollback(_ context.Context, id, reason string, _ json.RawMessage) (*flywheel.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.ps {
		if f.ps[i].ID == id && f.ps[i].Status == flywheel.PromotionActive {
			f.ps[i].Status, f.ps[i].Reason = flywheel.PromotionRolledBack, reason
			p := f.ps[i]
			return &p, nil
		}
	}
	return nil, flywheel.Errorf(flywheel.ECONFLICT, "Promotion %s is not active", id)
}

func (f *fakePromotions) GetPromotion(_ context.Context, id string) (*flywheel.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.ps {
		if p.ID == id {
			return &p, nil
		}
	}
	return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Promotion not found")
}

func (f *fakePromotions) ListPromotions(context.Context, string, string) ([]flywheel.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flywheel.Promotion{}, f.ps...), nil
}

func TestPromotionCommands(t *testing.T) {
	t.Parallel()
	fake := &fakePromotions{}
	srv := httptest.NewServer(server.New(server.Options{Jobs: &servertest.JobService{}, Promotions: fake,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}))
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	run := func(cmd func(cli.Options) *cobra.Command, args ...string) error {
		stdout.Reset()
		stderr.Reset()
		c := cmd(cli.Options{ServerURL: func() string { return srv.URL }, Stdout: &stdout, Stderr: &stderr,
			IsTerminal: func(io.Writer) bool { return false }})
		c.SetArgs(args)
		c.SetOut(&stderr)
		c.SetErr(&stderr)
		c.SilenceUsage = true
		return c.ExecuteContext(t.Context())
	}

	require.NoError(t, run(cli.NewJobsCommand, "promote", "job-1", "--candidate", "small", "--variant", "customized",
		"--mode", "canary", "--canary-percent", "20"))
	require.Equal(t, flywheel.PromoteRequest{JobID: "job-1", Candidate: "small", Variant: flywheel.VariantCustomized,
		Mode: flywheel.ModeCanary, CanaryPercent: 20}, fake.got[0])
	require.Contains(t, stdout.String(), "canary 20%")
	require.Contains(t, stdout.String(), "(starting: production answers)")

	require.NoError(t, run(cli.NewPromotionsCommand, "list"))
	require.Contains(t, stdout.String(), "0123456789abcdef01234567  w")
	require.NoError(t, run(cli.NewPromotionsCommand, "get", "0123456789abcdef01234567", "-o", "json"))
	require.Contains(t, stdout.String(), `"variant": "customized"`)

	require.NoError(t, run(cli.NewPromotionsCommand, "rollback", "0123456789abcdef01234567", "--reason", "too slow"))
	require.Equal(t, "0123456789abcdef01234567: rolled_back (too slow)\n", stdout.String())
	err := run(cli.NewPromotionsCommand, "rollback", "0123456789abcdef01234567")
	require.Error(t, err)
	require.Contains(t, err.Error(), "not active")
}
