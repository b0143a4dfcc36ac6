package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// ChromiumPathDefault is where Debian's chromium package installs the browser.
const chromiumPathDefault = "/usr/bin/chromium"

// browser starts headless Chromium for one test. The browser tests never
// skip: without Chromium they fail and say how to install it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("FLYWHEEL_CHROMIUM")
	if path == "" {
		path = chromiumPathDefault
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("headless Chromium is needed for the dashboard's browser tests and was not found at %s (%v): "+
			"run scripts/browser-deps.sh to install it (or set FLYWHEEL_CHROMIUM)", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// screenshots returns the folder screenshots are saved to:
// FLYWHEEL_SCREENSHOTS when set, otherwise a temporary folder.
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLYWHEEL_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Logf("screenshots saved in %s", dir)
	return dir
}

func shoot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		return os.WriteFile(filepath.Join(dir, name), buf, 0o644)
	})
}

// step bounds one sequence of browser actions.
func step(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// into runs a and keeps its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tg)
		*dst = v
		return chromedp.Void{}, err
	}
}

// jsErrors collects uncaught exceptions of the page's scripts.
func jsErrors(t *testing.T, ctx context.Context) func() []string {
	var (
		mu   sync.Mutex
		errs []string
	)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			errs = append(errs, fmt.Sprintf("%+v", e.ExceptionDetails))
			mu.Unlock()
		}
	}))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	dir := screenshots(t)
	b := setup(t, setupOpts{items: 200})
	older := b.create(t, "support-bot", "globex")
	b.finished(t, older.ID)
	done := b.create(t, "weather", "acme")
	d := b.finished(t, done.ID)
	require.Equal(t, flywheel.RunCompleted, d.Run.Status, d.Run.Error)
	slow := b.create(t, slowWorkload, "beta")
	b.evaluating(t, slow.ID)
	errs := jsErrors(t, ctx)
	base := b.server.URL

	t.Run("RunsList", func(t *testing.T) {
		var text string
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.Navigate(base+"/ui/"),
			chromedp.WaitVisible(chromedp.CSS(`#run-rows`)),
			into(&text, chromedp.Text(chromedp.CSS(`#run-rows`))),
			shoot(dir, "01-runs-list.png"),
		))
		for _, id := range []string{older.ID, done.ID, slow.ID} {
			require.Contains(t, text, id)
		}
		require.Contains(t, text, "completed")
		require.Contains(t, text, "running")
	})

	t.Run("ListRefreshesLive", func(t *testing.T) {
		fresh := b.create(t, "live", "acme")
		// The page is not reloaded: the embedded script refreshes the rows.
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`a[href="/ui/runs/%s"]`, fresh.ID)))))
		_, err := b.engine.CancelJob(context.Background(), fresh.ID)
		require.NoError(t, err)
	})

	t.Run("FilterByWorkload", func(t *testing.T) {
		var text string
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.Navigate(base+"/ui/"),
			chromedp.SetValue(chromedp.CSS(`input[name="workload"]`), "weather"),
			chromedp.Submit(chromedp.CSS(`form.filters`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name="workload"][value="weather"]`)),
			into(&text, chromedp.Text(chromedp.CSS(`#run-rows`))),
		))
		require.Contains(t, text, done.ID)
		require.NotContains(t, text, older.ID)
		require.NotContains(t, text, slow.ID)
	})

	t.Run("FinishedRun", func(t *testing.T) {
		var text string
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/ui/runs/%s"]`, done.ID))),
			chromedp.WaitVisible(chromedp.CSS(`#timeline`)),
			into(&text, chromedp.Text(chromedp.CSS(`main`))),
			shoot(dir, "02-run-timeline.png"),
		))
		for _, s := range []string{"create_datasets", "run_customization_eval", smallModel, largeModel, "Records read", "Judge"} {
			require.Contains(t, text, s)
		}
	})

	t.Run("Scores", func(t *testing.T) {
		var text string
		var bars, whiskers int
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.Click(chromedp.CSS(`nav.tabs a[href$="/results"]`)),
			chromedp.WaitVisible(chromedp.CSS(`svg.chart`)),
			into(&text, chromedp.Text(chromedp.CSS(`main`))),
			into(&bars, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart g.bar").length`)),
			into(&whiskers, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart line.whisker").length`)),
			shoot(dir, "03-run-results-chart.png"),
		))
		require.Equal(t, 6, bars, "two candidates × three evaluations")
		require.Equal(t, 18, whiskers, "an interval with two caps per bar")
		require.Contains(t, text, "Recommended: "+largeModel)
		for _, n := range d.NIMs {
			for _, e := range n.Evaluations {
				require.Contains(t, text, formatScore(e.Scores[flywheel.ScoreFunctionName]))
			}
		}
	})

	t.Run("Divergences", func(t *testing.T) {
		var tools []string
		var status string
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.Click(chromedp.CSS(`nav.tabs a[href$="/divergences"]`)),
			chromedp.WaitVisible(chromedp.CSS(`table.items`)),
			chromedp.SetValue(chromedp.CSS(`select[name="tool"]`), "book_flight"),
			chromedp.Submit(chromedp.CSS(`form.filters`)),
			chromedp.Query(chromedp.CSS(`select[name="tool"] option[selected][value="book_flight"]`)),
			chromedp.WaitVisible(chromedp.CSS(`table.items`)),
			into(&tools, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("table.items tbody tr td:nth-child(2)")).map(td => td.textContent.trim())`)),
			into(&status, chromedp.Text(chromedp.CSS(`p.count`))),
			shoot(dir, "04-divergences.png"),
		))
		require.NotEmpty(t, tools)
		for _, tool := range tools {
			require.Equal(t, "book_flight", tool)
		}
		require.Contains(t, status, "divergent items")
	})

	t.Run("CancelRunningRun", func(t *testing.T) {
		var badge string
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.Navigate(base+"/ui/runs/"+slow.ID),
			chromedp.WaitVisible(chromedp.CSS(`#timeline`)),
			shoot(dir, "05-running-run.png"),
			chromedp.Click(chromedp.CSS(`a.button[href$="/cancel"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
			shoot(dir, "06-cancel-confirm.png"),
			chromedp.Click(chromedp.CSS(`#confirm`)),
			chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
			into(&badge, chromedp.Text(chromedp.CSS(`h1 .badge`))),
		))
		require.Equal(t, "cancelled", strings.TrimSpace(badge))
		// The page follows the cleanup live, then reloads once in its final state.
		var live bool
		require.NoError(t, chromedp.Do(step(t, ctx),
			chromedp.WaitVisible(chromedp.CSS(`.timeline[data-final]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`body[data-refresh]`)),
			into(&live, chromedp.Evaluate[bool](`document.querySelector("a.button[href$='/cancel']") !== null`)),
			shoot(dir, "07-cancelled-run.png"),
		))
		require.False(t, live, "a cancelled run offers no cancel button")
		got, err := b.engine.GetJob(context.Background(), slow.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.RunCancelled, got.Run.Status)
	})

	require.Empty(t, errs(), "the pages' scripts threw")
	for _, name := range []string{"01-runs-list.png", "03-run-results-chart.png", "04-divergences.png", "07-cancelled-run.png"} {
		st, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Greater(t, st.Size(), int64(10_000), "%s holds a real image", name)
	}
}

func formatScore(f float64) string { return fmt.Sprintf("%.3f", f) }
