package flywheel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const (
	hexSecret = "3f9a0c5be1d24f7788a6c0e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9" // 64 hex, as openssl rand -hex 32
	b64Secret = "q2Vx0m7fQ+Jk1c/8TzR4nLpW3aYb6HdE5sGiUoNvXlA="                     // 44, as openssl rand -base64 32
)

func TestParseTokensFile(t *testing.T) {
	t.Parallel()
	in := "# managed API tokens\n\n  prometheus read " + hexSecret + "\r\n" +
		"ci-deploy\twrite\t" + b64Secret + "  \n" +
		"   # indented comment\n"
	got, err := flywheel.ParseTokensFile(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, flywheel.Token{ID: "file-prometheus", Name: "prometheus", Scope: flywheel.ScopeRead,
		Hash: flywheel.HashSecret(hexSecret), Source: flywheel.TokenSourceFile}, got[0])
	require.Equal(t, "file-ci-deploy", got[1].ID)
	require.Equal(t, flywheel.ScopeWrite, got[1].Scope)
	require.True(t, flywheel.SecretMatches(b64Secret, got[1].Hash))
	require.True(t, got[0].Managed())

	empty, err := flywheel.ParseTokensFile(strings.NewReader("# nothing yet\n"))
	require.NoError(t, err)
	require.Empty(t, empty)
}

func TestParseTokensFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		want       string
	}{
		{"TwoFields", "app read", "has 2 fields"},
		{"FourFields", "app read " + hexSecret + " extra", "has 4 fields"},
		{"BadScope", "app owner " + hexSecret, "the scope is not read, write, admin or ingest"},
		{"BadName", "my/app read " + hexSecret, "may only have letters"},
		{"LongName", strings.Repeat("n", 65) + " read " + hexSecret, "the name has 65 characters; at most 64"},
		{"SecretFirst", hexSecret + " read app", "the secret has 3 characters"},
		{"Short", "app read 0123456789abcdef0123456789abcd", "has 30 characters; it needs at least 32"},
		{"Placeholder", "app read " + strings.Repeat("changeme", 5), "looks like a placeholder"},
		{"CLIPrefix", "app read fw_0123456789abcdef_" + hexSecret, `starts with "fw_"`},
		{"TooLong", "app read " + strings.Repeat(hexSecret, 4), "at most 200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := "ok read " + hexSecret + "\n# comment\n" + tc.line + "\n"
			_, err := flywheel.ParseTokensFile(strings.NewReader(in))
			require.Error(t, err)
			require.Contains(t, err.Error(), "line 3: ")
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), hexSecret[:16], "an error must never repeat a secret")
		})
	}

	t.Run("EveryLineReported", func(t *testing.T) {
		t.Parallel()
		in := "a read short-secret\n" + "b read " + hexSecret + "\n" + "b write " + b64Secret + "\n" + "c admin " + hexSecret + "\n"
		_, err := flywheel.ParseTokensFile(strings.NewReader(in))
		require.Error(t, err)
		msg := err.Error()
		require.Contains(t, msg, "line 1: ")
		require.Contains(t, msg, "line 3: the name is used on line 2 already")
		require.Contains(t, msg, "line 4: the secret is the same as on line 2")
		require.NotContains(t, msg, "line 2:")
		require.NotContains(t, msg, "short-secret")
		require.NotContains(t, msg, b64Secret[:12])
	})
}
