package flywheel_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw, path, reason string
	}{
		{name: "Plain", raw: `{"messages":[{"role":"user","content":"héllo"}],"n":1,"ok":true,"x":null}`},
		{name: "EscapedBackslashBeforeU0000", raw: `{"a":"\\u0000"}`},
		{name: "OtherEscapes", raw: `{"a":"\u0001\"\n\ud83d\ude00"}`},
		{name: "NULEscape", raw: `{"messages":[{"role":"user","content":"a\u0000b"}]}`, path: "messages[0].content", reason: "NUL"},
		{name: "NULInKey", raw: `{"a":{"k\u0000":1}}`, path: "a.(key)", reason: "NUL"},
		{name: "InvalidUTF8", raw: "{\"tools\":[\"ok\",\"bad\xff\"]}", path: "tools[1]", reason: "not valid UTF-8 (byte 0xff)"},
		{name: "InvalidUTF8Top", raw: "\"\xc3\x28\"", path: "", reason: "not valid UTF-8"},
		{name: "RawNUL", raw: "{\"a\":\"x\x00\"}", path: "a", reason: "NUL"},
		{name: "NotJSON", raw: "{\"a\":\xff", reason: "invalid JSON"},
		{name: "TruncatedAfterBadByte", raw: "[1,\"\\u0000", path: "[1]", reason: "NUL"},
		{name: "Deep", raw: strings.Repeat("[", 20000) + "\xff", reason: "invalid JSON"},
		{name: "MissingCommaInObject", raw: "{\"a\":1 \"b\":\"\xff\"}", reason: "invalid JSON"},
		{name: "MissingCommaInArray", raw: "[1 \"\xff\"]", reason: "invalid JSON"},
		{name: "WrongCloserOfObject", raw: "{\"a\":1]\xff", reason: "invalid JSON"},
		{name: "WrongCloserOfArray", raw: "[1}\xff", reason: "invalid JSON"},
		{name: "UnclosedObject", raw: "{\"a\":1,\"\xff\":2", path: "(key)", reason: "not valid UTF-8"},
		{name: "UnclosedArray", raw: "[1,\"\xff\"", path: "[1]", reason: "not valid UTF-8"},
		{name: "TrailingBadByteAfterClose", raw: "[1,2]\xff"},
		{name: "NULAfterSeparator", raw: `[{"a":1},["x","\u0000"]]`, path: "[1][1]", reason: "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, reason := flywheel.CheckJSON([]byte(tc.raw))
			if tc.reason == "" {
				require.Empty(t, reason)
				return
			}
			require.Contains(t, reason, tc.reason)
			require.Equal(t, tc.path, path)
		})
	}
}

func TestCheckRecord(t *testing.T) {
	t.Parallel()
	good := flywheel.LogRecord{WorkloadID: "w", ClientID: "c",
		Request: json.RawMessage(`{"messages":[]}`), Response: json.RawMessage(`{"choices":[]}`)}
	for _, tc := range []struct {
		name          string
		edit          func(r *flywheel.LogRecord)
		field, reason string
	}{
		{name: "Good", edit: func(*flywheel.LogRecord) {}},
		{name: "LongestID", edit: func(r *flywheel.LogRecord) { r.WorkloadID = strings.Repeat("w", flywheel.MaxIDBytes) }},
		{name: "IDTooLong", edit: func(r *flywheel.LogRecord) { r.WorkloadID = strings.Repeat("w", 100_000) },
			field: "workload_id", reason: "longer than 255 bytes (100000)"},
		{name: "IDWithNUL", edit: func(r *flywheel.LogRecord) { r.ClientID = "a\x00" }, field: "client_id", reason: "NUL"},
		{name: "IDNotUTF8", edit: func(r *flywheel.LogRecord) { r.ClientID = "a\xfe" }, field: "client_id", reason: "UTF-8"},
		{name: "EmptyID", edit: func(r *flywheel.LogRecord) { r.ClientID = "" }, field: "client_id", reason: "empty"},
		{name: "ResponseNUL", edit: func(r *flywheel.LogRecord) {
			r.Response = json.RawMessage(`{"choices":[{"message":{"content":"\u0000"}}]}`)
		}, field: "response.choices[0].message.content", reason: "NUL"},
		{name: "TooLarge", edit: func(r *flywheel.LogRecord) {
			r.Request = json.RawMessage(`{"a":"` + strings.Repeat("x", flywheel.MaxRecordBytes) + `"}`)
		}, reason: "record larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := good
			tc.edit(&r)
			field, reason := flywheel.CheckRecord(r)
			if tc.reason == "" {
				require.Empty(t, reason)
				return
			}
			require.Equal(t, tc.field, field)
			require.Contains(t, reason, tc.reason)
		})
	}
}

func TestCheckText(t *testing.T) {
	t.Parallel()
	require.Empty(t, flywheel.CheckText("café", 5))
	require.Equal(t, "longer than 4 bytes (5)", flywheel.CheckText("café", 4))
	require.Equal(t, "contains a NUL character (byte offset 1)", flywheel.CheckText("a\x00", 0))
	require.Equal(t, "not valid UTF-8 (byte offset 2)", flywheel.CheckText("ab\xff", 0))
}

// BenchmarkCheckRecord measures the storability check of a typical
// tool-calling record (about 3 KB of JSON, non-ASCII text included).
func BenchmarkCheckRecord(b *testing.B) {
	content := strings.Repeat("What is the weather in Zürich tomorrow? ", 40)
	r := flywheel.LogRecord{WorkloadID: "bfcl-simple", ClientID: "bfcl",
		Request:  json.RawMessage(`{"messages":[{"content":"` + content + `","role":"user"}],"model":"m","tools":[{"function":{"name":"get_weather","parameters":{"properties":{"city":{"type":"string"}},"type":"object"}},"type":"function"}]}`),
		Response: json.RawMessage(`{"choices":[{"message":{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Zürich\"}","name":"get_weather"},"id":"c1","type":"function"}]}}]}`)}
	b.SetBytes(int64(len(r.Request) + len(r.Response)))
	for b.Loop() {
		if _, reason := flywheel.CheckRecord(r); reason != "" {
			b.Fatal(reason)
		}
	}
}
