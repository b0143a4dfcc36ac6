package api

import (
	"fmt"
	"time"
)

// TimeLayout is how the API writes every timestamp: RFC 3339 in UTC with
// exactly six fractional digits and a "+00:00" offset, as the blueprint's
// pydantic models write them ("2025-06-03T12:34:56.123456+00:00"). It is
// the one form Python 3.10's datetime.fromisoformat reads: at most
// microseconds, and "+00:00" rather than "Z".
const TimeLayout = "2006-01-02T15:04:05.000000+00:00"

// Time is a timestamp of an API body. It is written in TimeLayout, and read
// liberally: any RFC 3339 time (any number of fractional digits, "Z" or an
// offset), or one without an offset, taken as UTC as the blueprint writes
// naive times. A read Time is always in UTC.
type Time struct {
	time.Time
}

// NewTime is t as an API timestamp, in UTC.
func NewTime(t time.Time) Time {
	return Time{t.UTC()}
}

// NewTimePtr is NewTime for an optional time: nil or the zero time is nil.
func NewTimePtr(t *time.Time) *Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := NewTime(*t)
	return &v
}

// FormatTime writes t as the API does (TimeLayout, in UTC).
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

// MarshalJSON writes t in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("api time %v: year outside [0,9999]", t.Time)
	}
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// MarshalText writes t in TimeLayout (query parameters, map keys).
func (t Time) MarshalText() ([]byte, error) {
	return []byte(FormatTime(t.Time)), nil
}

// UnmarshalJSON reads an RFC 3339 time, or one without an offset (UTC); a
// JSON null leaves t unchanged.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("api time: %s is not a JSON string", b)
	}
	return t.UnmarshalText(b[1 : len(b)-1])
}

// UnmarshalText reads what UnmarshalJSON reads, without the quotes.
func (t *Time) UnmarshalText(b []byte) error {
	v, err := ParseTime(string(b))
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime reads a timestamp liberally: RFC 3339 with any fractional
// digits and "Z" or an offset, or ISO 8601 without an offset (taken as
// UTC), with "T" or a space between date and time. The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return v.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("api time %q: not an RFC 3339 timestamp", s)
}
