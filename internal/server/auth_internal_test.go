package server

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

// TestAccessRulesCoverEveryRoute checks that every route and mount has a
// line in the access table: a route added without one would need admin by
// default, which is safe but rarely meant.
func TestAccessRulesCoverEveryRoute(t *testing.T) {
	t.Parallel()
	s := New(Options{Jobs: &servertest.JobService{}, RiverUI: http.NotFoundHandler(), Capture: http.NotFoundHandler(),
		UI: http.NotFoundHandler()})
	wildcard := regexp.MustCompile(`\{[a-z_]+\}`)
	check := func(method, path string) {
		_, pattern := s.access.Handler(httptest.NewRequest(method, path, nil))
		require.NotEmpty(t, pattern, "%s %s has no access rule: add one to accessRules", method, path)
	}
	for _, rt := range s.routes() {
		check(rt.method, wildcard.ReplaceAllString(rt.path, "x"))
	}
	require.Len(t, s.mounts(), 3)
	for _, m := range s.mounts() {
		check("GET", m.prefix+"x")
		if m.prefix != "/ui/" { // the dashboard's forms have their own rules
			check("POST", m.prefix+"x")
		}
	}
	for _, path := range []string{"/ui/login", "/ui/logout", "/ui/runs/x/cancel", "/ui/runs/x/delete"} {
		check("POST", path)
	}
	// And no open rule covers a state-changing API route.
	for _, rt := range s.routes() {
		if rt.method == "GET" {
			continue
		}
		ac := s.accessFor(httptest.NewRequest(rt.method, wildcard.ReplaceAllString(rt.path, "x"), nil))
		require.False(t, ac.open, "%s %s", rt.method, rt.path)
		require.False(t, ac.allows(flywheel.ScopeRead), "%s %s", rt.method, rt.path)
	}
}
