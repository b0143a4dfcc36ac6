package jsonscan_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/jsonscan"
)

func TestSkipValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		start   int
		end     int
		escaped bool
	}{
		{in: `"abc",1`, end: 5},
		{in: `"a\"b",1`, end: 6, escaped: true},
		{in: `"a\\",1`, end: 5, escaped: true},
		{in: `{"a":[1,{"b":"}"}]},2`, end: 19},
		{in: `[1,2,[3]] x`, end: 9},
		{in: `12.5e3,`, end: 6},
		{in: `true}`, end: 4},
		{in: `  null`, start: 2, end: 6},
	} {
		require.Equal(t, tc.end, jsonscan.SkipValue([]byte(tc.in), tc.start), tc.in)
		if tc.in[tc.start] == '"' {
			_, esc := jsonscan.SkipString([]byte(tc.in), tc.start)
			require.Equal(t, tc.escaped, esc, tc.in)
		}
	}
	require.Equal(t, 3, jsonscan.SkipSpace([]byte(" \t\nx"), 0))
}
