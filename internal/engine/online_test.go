package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/store"
)

// countingChecker counts the online checks.
type countingChecker struct{ n atomic.Int32 }

func (c *countingChecker) Check(context.Context) error {
	c.n.Add(1)
	return nil
}

// TestOnlineCheckJob: the leader runs the online check when the workers
// start and then every OnlineCheckInterval.
func TestOnlineCheckJob(t *testing.T) {
	t.Parallel()
	checker := &countingChecker{}
	setup(t, store.SQLite, setupOpts{mutate: func(b *testBundle) {
		b.opts.Online = checker
		b.opts.OnlineCheckInterval = time.Second
	}})
	require.Eventually(t, func() bool { return checker.n.Load() >= 2 }, 20*time.Second, 50*time.Millisecond,
		"checks: %d", checker.n.Load())
}
