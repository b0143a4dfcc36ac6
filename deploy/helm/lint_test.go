package helm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLint runs "helm lint" (Helm's own checks of Chart.yaml, the
// templates and the rendered YAML) with each value set; warnings fail.
func TestChartLint(t *testing.T) {
	for _, f := range []string{"minimal.yaml", "production.yaml", "local.yaml"} {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("values", f))
			require.NoError(t, err)
			vals, err := chartutil.ReadValues(b)
			require.NoError(t, err)
			l := lint.All("flywheel", vals, "flywheel", true)
			for _, m := range l.Messages {
				t.Log(m.Error())
				require.Less(t, m.Severity, support.WarningSev, m.Error())
			}
		})
	}
}
