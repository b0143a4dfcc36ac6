package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// fixedNowFunc is the clock of every test.
func fixedNowFunc() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func opts() ingest.Options {
	return ingest.Options{Now: fixedNowFunc}.WithDefaults()
}

// memIngester is a fake flywheel.LogIngester that dedups by ingest.Hash, the
// way the stores do.
type memIngester struct {
	mu      sync.Mutex
	seen    map[string]bool
	recs    []flywheel.LogRecord
	batches []int
	failAt  int // fail the call with this 1-based number
}

func newMemIngester() *memIngester { return &memIngester{seen: map[string]bool{}} }

func (m *memIngester) InsertLogs(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, len(recs))
	if m.failAt == len(m.batches) {
		return 0, 0, errors.New("disk full")
	}
	ins, dup := 0, 0
	for _, r := range recs {
		h := ingest.Hash(r)
		if m.seen[h] {
			dup++
			continue
		}
		m.seen[h] = true
		m.recs = append(m.recs, r)
		ins++
	}
	return ins, dup, nil
}

const logLine = `{"workload_id":"w","client_id":"c","timestamp":1746000037,"request":{"model":"m","messages":[{"role":"user","content":"hi"}]},"response":{"choices":[{"message":{"role":"assistant","content":"hello"}}]}}`

func TestParseLine(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		line       string
		opts       func(o *ingest.Options)
		wantField  string
		wantReason string
		check      func(t *testing.T, rec flywheel.LogRecord)
	}{
		{name: "LogFormat", line: logLine, check: func(t *testing.T, rec flywheel.LogRecord) {
			require.Equal(t, "w", rec.WorkloadID)
			require.Equal(t, "c", rec.ClientID)
			require.Equal(t, time.Unix(1746000037, 0).UTC(), rec.Timestamp)
			require.JSONEq(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, string(rec.Request))
		}},
		{name: "ByteOrderMark", line: "\ufeff" + logLine, check: func(t *testing.T, rec flywheel.LogRecord) {
			require.Equal(t, "w", rec.WorkloadID)
		}},
		{name: "OverridesWin", line: logLine, opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "W2", "C2" },
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, "W2", rec.WorkloadID)
				require.Equal(t, "C2", rec.ClientID)
			}},
		{name: "IDsFromOptions", line: `{"request":{"messages":[]},"response":{}}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" },
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, "w", rec.WorkloadID)
				require.Equal(t, fixedNowFunc(), rec.Timestamp)
			}},
		{name: "MissingWorkload", line: `{"client_id":"c","request":{},"response":{}}`, wantField: "workload_id", wantReason: "missing"},
		{name: "EmptyClient", line: `{"workload_id":"w","client_id":" ","request":{},"response":{}}`, wantField: "client_id", wantReason: "empty"},
		{name: "NumericWorkload", line: `{"workload_id":7,"client_id":"c","request":{},"response":{}}`, wantField: "workload_id", wantReason: "want a string, got a number"},
		{name: "TimestampRFC3339", line: `{"workload_id":"w","client_id":"c","timestamp":"2025-05-01T10:00:00+02:00","request":{},"response":{}}`,
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC), rec.Timestamp)
			}},
		{name: "TimestampMillis", line: `{"workload_id":"w","client_id":"c","timestamp":1746000037123,"request":{},"response":{}}`,
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, time.UnixMilli(1746000037123).UTC(), rec.Timestamp)
			}},
		{name: "TimestampFractionalSeconds", line: `{"workload_id":"w","client_id":"c","timestamp":1746000037.5,"request":{},"response":{}}`,
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, time.Unix(1746000037, 5e8).UTC(), rec.Timestamp)
			}},
		{name: "TimestampNumericString", line: `{"workload_id":"w","client_id":"c","timestamp":"1746000037","request":{},"response":{}}`,
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, time.Unix(1746000037, 0).UTC(), rec.Timestamp)
			}},
		{name: "TimestampNull", line: `{"workload_id":"w","client_id":"c","timestamp":null,"request":{},"response":{}}`,
			check: func(t *testing.T, rec flywheel.LogRecord) { require.Equal(t, fixedNowFunc(), rec.Timestamp) }},
		{name: "TimestampBad", line: `{"workload_id":"w","client_id":"c","timestamp":"yesterday","request":{},"response":{}}`, wantField: "timestamp", wantReason: "RFC 3339"},
		{name: "TimestampNegative", line: `{"workload_id":"w","client_id":"c","timestamp":-5,"request":{},"response":{}}`, wantField: "timestamp", wantReason: "unix"},
		{name: "RequestNotObject", line: `{"workload_id":"w","client_id":"c","request":"hi","response":{}}`, wantField: "request", wantReason: "got a string"},
		{name: "ResponseMissing", line: `{"workload_id":"w","client_id":"c","request":{}}`, wantField: "response", wantReason: "got nothing"},
		{name: "NotJSON", line: `{"workload_id":`, wantReason: "invalid JSON"},
		{name: "Array", line: `[1,2]`, wantReason: "not a JSON object"},
		{name: "Neither", line: `{"workload_id":"w","client_id":"c"}`, wantReason: "neither the log format"},
		{name: "Conversation", line: `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID, o.Model = "w", "c", "llama" },
			check: func(t *testing.T, rec flywheel.LogRecord) {
				var req struct {
					Model    string            `json:"model"`
					Messages []json.RawMessage `json:"messages"`
					Tools    []json.RawMessage `json:"tools"`
				}
				require.NoError(t, json.Unmarshal(rec.Request, &req))
				require.Equal(t, "llama", req.Model)
				require.Len(t, req.Messages, 2)
				require.Len(t, req.Tools, 1)
				var resp struct {
					Object  string `json:"object"`
					Choices []struct {
						FinishReason string `json:"finish_reason"`
						Message      struct {
							Role      string            `json:"role"`
							ToolCalls []json.RawMessage `json:"tool_calls"`
						} `json:"message"`
					} `json:"choices"`
				}
				require.NoError(t, json.Unmarshal(rec.Response, &resp))
				require.Equal(t, "chat.completion", resp.Object)
				require.Equal(t, "tool_calls", resp.Choices[0].FinishReason)
				require.Equal(t, "assistant", resp.Choices[0].Message.Role)
				require.Len(t, resp.Choices[0].Message.ToolCalls, 1)
			}},
		{name: "ConversationIDsFromRecord", line: `{"workload_id":"w","client_id":"c","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`,
			check: func(t *testing.T, rec flywheel.LogRecord) {
				require.Equal(t, "w", rec.WorkloadID)
				require.Contains(t, string(rec.Response), `"finish_reason":"stop"`)
			}},
		{name: "ConversationLastNotAssistant", line: `{"messages":[{"role":"user","content":"q"},{"role":"user","content":"a"}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, wantField: "messages[1].role", wantReason: "assistant"},
		{name: "ConversationTooShort", line: `{"messages":[{"role":"assistant","content":"a"}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, wantField: "messages", wantReason: "at least 2"},
		{name: "ConversationEmptyAnswer", line: `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, wantField: "messages[1]", wantReason: "neither content nor tool_calls"},
		{name: "ConversationMessageNotObject", line: `{"messages":[3,{"role":"assistant","content":"a"}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, wantField: "messages[0]", wantReason: "message object"},
		{name: "ConversationMissingRole", line: `{"messages":[{"content":"q"},{"role":"assistant","content":"a"}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, wantField: "messages[0].role", wantReason: "missing"},
		{name: "ConversationToolsNotArray", line: `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"tools":{}}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, wantField: "tools", wantReason: "array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			if tt.opts != nil {
				tt.opts(&o)
			}
			rec, rej := ingest.ParseLine([]byte(tt.line), 7, o)
			if tt.wantReason != "" {
				require.NotNil(t, rej, "got record %+v, want a rejection", rec)
				require.Equal(t, 7, rej.Line)
				require.Equal(t, tt.wantField, rej.Field)
				require.Contains(t, rej.Reason, tt.wantReason)
				require.Contains(t, rej.Error(), "line 7")
				return
			}
			require.Nil(t, rej)
			tt.check(t, rec)
		})
	}
}

func TestReader(t *testing.T) {
	t.Parallel()

	t.Run("LongLines", func(t *testing.T) {
		t.Parallel()
		big := strings.Repeat("x", 5<<20)
		line := `{"workload_id":"w","client_id":"c","request":{"messages":[{"role":"user","content":"` + big + `"}]},"response":{}}`
		in := line + "\n\n" + logLine + "\r\n" + logLine // last line without newline
		rd := ingest.NewReader(strings.NewReader(in), opts())
		var lines []int
		for {
			res, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			require.Nil(t, res.Rejection)
			lines = append(lines, res.Line)
		}
		require.Equal(t, []int{1, 3, 4}, lines)
		require.Equal(t, int64(len(in)), rd.BytesRead())
	})

	t.Run("LineOverLimitIsRejectedAndTheRestKept", func(t *testing.T) {
		t.Parallel()
		o := opts()
		o.MaxLineBytes = 1000
		long := `{"x":"` + strings.Repeat("y", 400<<10) + `"}`
		rd := ingest.NewReader(strings.NewReader(logLine+"\n"+long+"\n"+logLine+"\n"), o)
		var got []ingest.Result
		for {
			res, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			got = append(got, res)
		}
		require.Len(t, got, 3)
		require.Nil(t, got[0].Rejection)
		require.NotNil(t, got[1].Rejection)
		require.Equal(t, 2, got[1].Rejection.Line)
		require.Contains(t, got[1].Rejection.Reason, "longer than 1000 bytes")
		require.Nil(t, got[2].Rejection)
		require.Equal(t, "w", got[2].Record.WorkloadID)
	})
}

func TestLoad(t *testing.T) {
	t.Parallel()

	input := strings.Join([]string{
		logLine,
		`{"workload_id":"w","client_id":"c","request":{"messages":[{"role":"user","content":"two"}]},"response":{}}`,
		`not json`,
		``,
		`{"client_id":"c","request":{},"response":{}}`,
		`{"workload_id":"w","client_id":"c","request":{"messages":[{"role":"user","content":"three"}]},"response":{}}`,
		// The first line again with other key order and spacing: a duplicate.
		`{"response": {"choices":[{"message":{"content":"hello","role":"assistant"}}]}, "request":{"messages":[{"role":"user","content":"hi"}],"model":"m"},"workload_id":"w","client_id":"c","timestamp":1}`,
	}, "\n")

	t.Run("KeepsGoodLinesAndNamesBadOnes", func(t *testing.T) {
		t.Parallel()
		ing := newMemIngester()
		o := opts()
		o.BatchSize = 2
		var calls []int64
		s, err := ingest.Load(context.Background(), strings.NewReader(input), o, ing,
			func(n int64, _ ingest.Summary) { calls = append(calls, n) })
		require.NoError(t, err)
		require.Equal(t, 6, s.Lines)
		require.Equal(t, 3, s.Loaded)
		require.Equal(t, 1, s.Duplicates)
		require.Equal(t, 2, s.Rejected)
		require.Equal(t, []ingest.Rejection{
			{Line: 3, Reason: s.Rejections[0].Reason},
			{Line: 5, Field: "workload_id", Reason: s.Rejections[1].Reason},
		}, s.Rejections)
		require.Contains(t, s.Rejections[0].Reason, "not a JSON object")
		require.Equal(t, []int{2, 2}, ing.batches)
		require.Len(t, ing.recs, 3)
		require.Equal(t, int64(len(input)), s.Bytes)
		require.NotEmpty(t, calls)
		require.Equal(t, int64(len(input)), calls[len(calls)-1])

		// Loading the same input again stores nothing new.
		s2, err := ingest.Load(context.Background(), strings.NewReader(input), o, ing, nil)
		require.NoError(t, err)
		require.Equal(t, 0, s2.Loaded)
		require.Equal(t, 4, s2.Duplicates)
	})

	t.Run("CapsRejectionsButCountsAll", func(t *testing.T) {
		t.Parallel()
		o := opts()
		o.MaxRejections = 3
		bad := strings.Repeat("nope\n", 10)
		s, err := ingest.Load(context.Background(), strings.NewReader(bad+logLine), o, newMemIngester(), nil)
		require.NoError(t, err)
		require.Equal(t, 10, s.Rejected)
		require.Len(t, s.Rejections, 3)
		require.Equal(t, 1, s.Loaded)
	})

	t.Run("StoreErrorStops", func(t *testing.T) {
		t.Parallel()
		ing := newMemIngester()
		ing.failAt = 2
		o := opts()
		o.BatchSize = 1
		s, err := ingest.Load(context.Background(), strings.NewReader(input), o, ing, nil)
		require.ErrorContains(t, err, "disk full")
		require.ErrorContains(t, err, "line 2")
		require.Equal(t, 1, s.Loaded)
	})

	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ingest.Load(ctx, strings.NewReader(input), opts(), newMemIngester(), nil)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// TestLoadBFCL loads the generated tool-calling corpus and, when
// FLYWHEEL_BFCL_DIR names one, that corpus too.
func TestLoadBFCL(t *testing.T) {
	t.Parallel()
	for _, corpus := range testcorpus.Dirs(t) {
		t.Run(corpus.Name, func(t *testing.T) {
			t.Parallel()
			testLoadBFCL(t, corpus.Dir)
		})
	}
}

func testLoadBFCL(t *testing.T, bfclDir string) {
	files, err := filepath.Glob(filepath.Join(bfclDir, "*.jsonl"))
	require.NoError(t, err)
	var logs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".answers.jsonl") {
			logs = append(logs, f)
		}
	}
	require.Len(t, logs, 4, "BFCL files in %s", bfclDir)
	for _, f := range logs {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			want := strings.Count(strings.TrimSpace(string(data)), "\n") + 1
			ing := newMemIngester()
			s, err := ingest.Load(context.Background(), strings.NewReader(string(data)), opts(), ing, nil)
			require.NoError(t, err)
			require.Zero(t, s.Rejected, "rejections: %v", s.Rejections)
			require.Equal(t, want, s.Lines)
			require.Equal(t, want, s.Loaded+s.Duplicates)
			require.Len(t, ing.recs, s.Loaded)
			for _, r := range ing.recs {
				require.NotEmpty(t, r.WorkloadID)
				require.Equal(t, "bfcl", r.ClientID)
				require.False(t, r.Timestamp.IsZero())
				require.Equal(t, r.Hash(), ingest.Hash(r), "records read here are canonical")
			}
		})
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	rec := func(w, c, req, resp string, ts int64) flywheel.LogRecord {
		return flywheel.LogRecord{WorkloadID: w, ClientID: c, Request: json.RawMessage(req), Response: json.RawMessage(resp), Timestamp: time.Unix(ts, 0)}
	}
	base := ingest.Hash(rec("w", "c", `{"a":1,"b":[1.0,"x"]}`, `{"z":null}`, 1))
	require.Len(t, base, 64)
	require.Equal(t, base, ingest.Hash(rec("w", "c", "{ \"b\": [1.0, \"x\"],\n \"a\": 1 }", `{"z": null}`, 99)), "key order, spacing and timestamp do not matter")
	require.NotEqual(t, base, ingest.Hash(rec("w2", "c", `{"a":1,"b":[1.0,"x"]}`, `{"z":null}`, 1)))
	require.NotEqual(t, base, ingest.Hash(rec("w", "c2", `{"a":1,"b":[1.0,"x"]}`, `{"z":null}`, 1)))
	require.NotEqual(t, base, ingest.Hash(rec("w", "c", `{"a":2,"b":[1.0,"x"]}`, `{"z":null}`, 1)))
	require.NotEqual(t, base, ingest.Hash(rec("w", "c", `{"a":1,"b":[1.0,"x"]}`, `{"z":0}`, 1)))
	// Moving bytes between fields changes the hash.
	require.NotEqual(t, ingest.Hash(rec("ab", "c", `{}`, `{}`, 1)), ingest.Hash(rec("a", "bc", `{}`, `{}`, 1)))
	// Invalid JSON still hashes.
	require.Len(t, ingest.Hash(rec("w", "c", `{`, ``, 1)), 64)
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(logLine))
	f.Add([]byte(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"tools":[]}`))
	f.Add([]byte(`{"workload_id":"w","client_id":"c","timestamp":"2025-05-01T10:00:00Z","request":{},"response":{}}`))
	f.Add([]byte(`{"timestamp":1e300}`))
	f.Add([]byte(`{"messages":[{"role":"assistant"},null]}`))
	o := opts()
	o.WorkloadID = ""
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, rej := ingest.ParseLine(data, 1, o)
		if rej != nil {
			require.NotEmpty(t, rej.Reason)
			return
		}
		require.NotEmpty(t, rec.WorkloadID)
		require.NotEmpty(t, rec.ClientID)
		require.True(t, json.Valid(rec.Request), "request %q", rec.Request)
		require.True(t, json.Valid(rec.Response), "response %q", rec.Response)
		_ = ingest.Hash(rec)
	})
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"b":1, "a":{"d":[1, 2.50,"x y"],"c":null}}`, `{"a":{"c":null,"d":[1,2.50,"x y"]},"b":1}`},
		{` [ ] `, `[]`},
		{`{}`, `{}`},
		{`{"a\"b":true,"a":false}`, `{"a":false,"a\"b":true}`},
		{`"s"`, `"s"`},
		{`{"a":`, `{"a":`}, // invalid: unchanged
		{`{"a":1} x`, `{"a":1} x`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(ingest.Canonical([]byte(tt.in))), "Canonical(%s)", tt.in)
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(logLine))
	f.Add([]byte(`{"b":[{"z":1,"y":2}],"a":"\u00e9\"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := ingest.Canonical(data)
		if !json.Valid(data) {
			return
		}
		require.True(t, json.Valid(out), "Canonical(%q) = %q", data, out)
		decode := func(b []byte) any {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var v any
			require.NoError(t, dec.Decode(&v))
			return v
		}
		require.Equal(t, decode(data), decode(out))
		require.Equal(t, out, ingest.Canonical(out), "idempotent")
	})
}
