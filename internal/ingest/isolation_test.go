package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

func TestParseLineRefusesWhatADatabaseCannotStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line, field, reason string
		opts                      func(o *ingest.Options)
	}{
		{name: "NULInMessage", line: strings.Split(testcorpus.BadLines(1, 1, 0, 0), "\n")[0],
			field: "request.messages[0].content", reason: "NUL"},
		{name: "InvalidUTF8InMessage", line: strings.Split(testcorpus.BadLines(1, 0, 1, 0), "\n")[0],
			field: "request.messages[0].content", reason: "not valid UTF-8"},
		{name: "LongWorkloadID", line: strings.Split(testcorpus.BadLines(1, 0, 0, 1), "\n")[0],
			field: "workload_id", reason: "longer than 255 bytes (100000)"},
		{name: "NULInClientID", line: `{"workload_id":"w","client_id":"c\u0000","request":{},"response":{}}`,
			field: "client_id", reason: "NUL"},
		{name: "InvalidUTF8InClientID", line: "{\"workload_id\":\"w\",\"client_id\":\"c\xff\",\"request\":{},\"response\":{}}",
			field: "client_id", reason: "not valid UTF-8"},
		{name: "NULInConversation", line: `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a\u0000"}]}`,
			opts: func(o *ingest.Options) { o.WorkloadID, o.ClientID = "w", "c" }, field: "response.choices[0].message.content", reason: "NUL"},
		{name: "OverrideTooLong", line: logLine,
			opts: func(o *ingest.Options) { o.WorkloadID = strings.Repeat("x", 256) }, field: "workload_id", reason: "longer than 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			_, rej := ingest.ParseLine([]byte(tc.line), 9, o)
			require.NotNil(t, rej)
			require.Equal(t, 9, rej.Line)
			require.Equal(t, tc.field, rej.Field)
			require.Contains(t, rej.Reason, tc.reason)
		})
	}
}

// refusingIngester stores like memIngester but refuses, as a database
// would, every record whose client id is "refuse".
type refusingIngester struct{ *memIngester }

func (r refusingIngester) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (int, int, error) {
	var (
		keep []flywheel.LogRecord
		errs flywheel.RecordErrors
	)
	for i, rec := range recs {
		if rec.ClientID == "refuse" {
			errs.Items = append(errs.Items, flywheel.RecordError{Index: i, Field: "client_id", Reason: "refused"})
			continue
		}
		keep = append(keep, rec)
	}
	ins, dup, err := r.memIngester.InsertLogs(ctx, keep)
	if err == nil && len(errs.Items) > 0 {
		err = &errs
	}
	return ins, dup, err
}

func TestLoadIsolatesRecords(t *testing.T) {
	t.Parallel()

	t.Run("ParserRejectsThreeOf3000", func(t *testing.T) {
		t.Parallel()
		ing := newMemIngester()
		s, err := ingest.Load(context.Background(), strings.NewReader(testcorpus.BadLines(3000, 10, 1500, 2999)), opts(), ing, nil)
		require.NoError(t, err)
		require.Equal(t, 3000, s.Lines)
		require.Equal(t, 2997, s.Loaded)
		require.Equal(t, 3, s.Rejected)
		require.Len(t, s.Rejections, 3)
		require.Equal(t, []int{10, 1500, 2999}, []int{s.Rejections[0].Line, s.Rejections[1].Line, s.Rejections[2].Line})
		require.Len(t, ing.recs, 2997)
	})

	t.Run("StoreRefusalsAreRejectionsWithTheirLine", func(t *testing.T) {
		t.Parallel()
		var lines []string
		for i := 1; i <= 25; i++ {
			client := "c"
			if i == 4 || i == 17 {
				client = "refuse"
			}
			lines = append(lines, fmt.Sprintf(`{"workload_id":"w","client_id":%q,"request":{"messages":[{"role":"user","content":"%d"}]},"response":{}}`, client, i))
		}
		lines[9] = "not json" // line 10
		ing := refusingIngester{newMemIngester()}
		o := opts()
		o.BatchSize = 5
		s, err := ingest.Load(context.Background(), strings.NewReader(strings.Join(lines, "\n")), o, ing, nil)
		require.NoError(t, err)
		require.Equal(t, 22, s.Loaded)
		require.Equal(t, 3, s.Rejected)
		require.Equal(t, []ingest.Rejection{
			{Line: 4, Field: "client_id", Reason: "refused"},
			{Line: 10, Reason: s.Rejections[1].Reason},
			{Line: 17, Field: "client_id", Reason: "refused"},
		}, s.Rejections)
	})
}

// endlessLine is an io.Reader of one line that never ends.
type endlessLine struct {
	mu    sync.Mutex
	reads int
}

func (e *endlessLine) Read(p []byte) (int, error) {
	e.mu.Lock()
	e.reads++
	e.mu.Unlock()
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestLoadStopsWhileReadingALongLine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	in := &endlessLine{}
	done := make(chan error, 1)
	go func() {
		_, err := ingest.Load(ctx, in, opts(), newMemIngester(), nil)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Load did not stop within 5 s of the cancel")
	}
	// The reader stops too: no more reads after the cancel has been seen.
	time.Sleep(50 * time.Millisecond)
	in.mu.Lock()
	n := in.reads
	in.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	in.mu.Lock()
	defer in.mu.Unlock()
	require.Equal(t, n, in.reads)
}
