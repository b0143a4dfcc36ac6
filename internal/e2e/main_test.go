package e2e_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: every
// app, server and fake a test starts must stop with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
