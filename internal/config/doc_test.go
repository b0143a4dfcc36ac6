package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// docPath is the configuration reference, which must stay true.
const docPath = "../../docs/config.md"

// keyPaths returns the documented form of every key of t: "nims[]" for
// lists of sections, "<stage>" for the stage map.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		p := join(prefix, name)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, keyPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), p+"[]")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), p+".<stage>")...)
		default:
			out = append(out, p)
		}
	}
	return out
}

func TestDocsListEveryKey(t *testing.T) {
	t.Parallel()

	data, err := os.ReadFile(docPath)
	require.NoError(t, err)
	doc := string(data)

	paths := keyPaths(typeOfConfig(), "")
	require.Greater(t, len(paths), 100)
	for _, p := range paths {
		require.True(t, strings.Contains(doc, "| `"+p+"` |"), "docs/config.md has no row for %s", p)
	}
}

func TestDocsListEveryEnvVar(t *testing.T) {
	t.Parallel()

	data, err := os.ReadFile(docPath)
	require.NoError(t, err)
	src, err := os.ReadFile("load.go")
	require.NoError(t, err)

	_, section, ok := strings.Cut(string(data), "## Environment variables")
	require.True(t, ok)
	section, _, _ = strings.Cut(section, "\n## ")
	names := regexp.MustCompile(`"([A-Z][A-Z0-9_]{2,})"`).FindAllStringSubmatch(string(src), -1)
	require.Greater(t, len(names), 15)
	for _, m := range names {
		require.True(t, strings.Contains(section, "`"+m[1]+"`"), "docs/config.md does not list %s", m[1])
	}
}

func TestDocsStageLimitDefaults(t *testing.T) {
	t.Parallel()

	data, err := os.ReadFile(docPath)
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([0-9hms]+) \\| ([0-9hms]+) \\|$")
	got := map[flywheel.StageName]StageLimit{}
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		hard, err := time.ParseDuration(m[2])
		require.NoError(t, err)
		soft, err := time.ParseDuration(m[3])
		require.NoError(t, err)
		got[flywheel.StageName(m[1])] = StageLimit{Hard: hard, Soft: soft}
	}
	require.Equal(t, StageLimitDefaults(), got)
}
