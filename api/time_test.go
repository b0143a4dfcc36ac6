package api_test

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
)

// py310ISO is what Python 3.10's datetime.fromisoformat accepts of a
// timestamp with an offset: six or three fractional digits (or none) and
// "+HH:MM", never "Z" and never nine digits.
var py310ISO = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?[+-]\d{2}:\d{2}$`)

func TestTimeMarshal(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		in   time.Time
		want string
	}{
		{"nanoseconds are cut to microseconds", time.Date(2026, 3, 4, 5, 6, 7, 458113318, time.UTC), "2026-03-04T05:06:07.458113+00:00"},
		{"whole seconds keep six digits", time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), "2026-03-04T05:06:07.000000+00:00"},
		{"another zone is written in UTC", time.Date(2026, 3, 4, 6, 6, 7, 1000, berlin), "2026-03-04T05:06:07.000001+00:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(api.NewTime(tc.in))
			require.NoError(t, err)
			require.Equal(t, `"`+tc.want+`"`, string(b))
			require.Regexp(t, py310ISO, tc.want)
			require.Equal(t, tc.want, api.FormatTime(tc.in))
		})
	}
	_, err := json.Marshal(api.NewTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)))
	require.Error(t, err)
}

func TestTimeInStructs(t *testing.T) {
	fin := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	item := api.JobListItem{StartedAt: api.NewTime(fin.Add(-time.Hour)), FinishedAt: api.NewTimePtr(&fin)}
	b, err := json.Marshal(item)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	require.Equal(t, "2026-01-02T02:04:05.123456+00:00", raw["started_at"])
	require.Equal(t, "2026-01-02T03:04:05.123456+00:00", raw["finished_at"])
	require.Nil(t, api.NewTimePtr(nil))
	require.Nil(t, api.NewTimePtr(&time.Time{}), "a zero time is null")

	b, err = json.Marshal(api.Stage{})
	require.NoError(t, err)
	require.Contains(t, string(b), `"started_at":null`)
}

func TestTimeUnmarshalLiberal(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 458113318, time.UTC)
	for _, in := range []string{
		"2026-01-02T03:04:05.458113318Z",
		"2026-01-02T03:04:05.458113318+00:00",
		"2026-01-02T04:04:05.458113318+01:00",
		"2026-01-02T03:04:05.458113318",
		"2026-01-02 03:04:05.458113318",
	} {
		t.Run(in, func(t *testing.T) {
			var got api.Time
			require.NoError(t, json.Unmarshal([]byte(`"`+in+`"`), &got))
			require.True(t, want.Equal(got.Time), "got %v", got.Time)
			require.Equal(t, time.UTC, got.Location())
		})
	}
	var p *api.Time
	require.NoError(t, json.Unmarshal([]byte(`null`), &p))
	require.Nil(t, p)
	var bad api.Time
	err := json.Unmarshal([]byte(`"yesterday"`), &bad)
	require.ErrorContains(t, err, `"yesterday"`)
	require.Error(t, json.Unmarshal([]byte(`12`), &bad))

	// A round trip keeps the time to the microsecond.
	b, err := json.Marshal(api.NewTime(want))
	require.NoError(t, err)
	var back api.Time
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, want.Truncate(time.Microsecond), back.Time)
}
