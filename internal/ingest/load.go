package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// Summary reports what Load did.
type Summary struct {
	// Lines is the number of non-blank lines read.
	Lines int `json:"lines"`
	// Loaded is the number of records stored.
	Loaded int `json:"loaded"`
	// Duplicates is the number of records skipped as already stored.
	Duplicates int `json:"duplicates"`
	// Rejected is the number of lines rejected.
	Rejected int `json:"rejected"`
	// Rejections lists the first Options.MaxRejections rejections.
	Rejections []Rejection `json:"rejections,omitempty"`
	// Bytes is the number of input bytes read.
	Bytes int64 `json:"bytes"`
	// Redacted is how many values each redaction detector replaced in the
	// records handed to the store (Options.Redactor).
	Redacted redact.Counts `json:"redacted,omitempty"`
}

// ProgressFunc is called by Load after every batch with the bytes read and
// the summary so far.
type ProgressFunc func(bytesRead int64, s Summary)

// Load reads JSONL from r and stores its records through ing in batches of
// opts.BatchSize. Bad lines are rejected and counted and never stop the
// load; so are records the store refuses (*flywheel.RecordErrors), with
// their line. It returns the summary and, on a read error, a store error or a
// cancelled ctx, that error too (the summary then counts what was stored
// before it). progress may be nil.
//
// Parsing and storing overlap: one goroutine reads and parses the next batch
// while the store writes the previous one.
func Load(ctx context.Context, r io.Reader, opts Options, ing flywheel.LogIngester, progress ProgressFunc) (Summary, error) {
	opts = opts.WithDefaults()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Reads fail once ctx is done, so a signal stops the load even in the
	// middle of a line many megabytes long.
	rd := NewReader(ctxReader{ctx: ctx, r: r}, opts)

	type parsed struct {
		recs       []flywheel.LogRecord
		lineNos    []int // the line of each of recs
		lines      int
		rejected   int
		rejections []Rejection
		bytes      int64
		lastLine   int
		redacted   redact.Counts
		err        error // a read error after recs
	}
	batches := make(chan parsed, 2)
	go func() {
		defer close(batches)
		kept := 0
		for {
			b := parsed{recs: make([]flywheel.LogRecord, 0, opts.BatchSize)}
			for len(b.recs) < opts.BatchSize {
				if err := ctx.Err(); err != nil {
					b.err = err
					break
				}
				res, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.err = err
					break
				}
				b.lines++
				if res.Rejection != nil {
					b.rejected++
					if opts.MaxRejections > 0 && kept < opts.MaxRejections {
						b.rejections = append(b.rejections, *res.Rejection)
						kept++
					}
					continue
				}
				b.recs = append(b.recs, res.Record)
				b.lineNos = append(b.lineNos, res.Line)
			}
			b.bytes, b.lastLine = rd.BytesRead(), rd.line
			// Redact here, while the store writes the previous batch.
			b.redacted = opts.Redactor.Batch(redact.PathLoad, b.recs)
			full := len(b.recs) == opts.BatchSize && b.err == nil
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
			if !full {
				return
			}
		}
	}()

	var s Summary
	for {
		var (
			b  parsed
			ok bool
		)
		select {
		case b, ok = <-batches:
		case <-parent.Done():
			return s, fmt.Errorf("load records: %w", parent.Err())
		}
		if !ok {
			break
		}
		s.Lines += b.lines
		s.Rejected += b.rejected
		s.Rejections = append(s.Rejections, b.rejections...)
		if len(b.redacted) > 0 {
			if s.Redacted == nil {
				s.Redacted = redact.Counts{}
			}
			s.Redacted.Add(b.redacted)
		}
		if len(b.recs) > 0 {
			inserted, dups, err := ing.InsertLogs(ctx, b.recs)
			var recErrs *flywheel.RecordErrors
			if errors.As(err, &recErrs) {
				// The store refused some records and kept the others.
				s.Rejected += len(recErrs.Items)
				for _, it := range recErrs.Items {
					if opts.MaxRejections > 0 && len(s.Rejections) < opts.MaxRejections && it.Index >= 0 && it.Index < len(b.lineNos) {
						s.Rejections = append(s.Rejections, Rejection{Line: b.lineNos[it.Index], Field: it.Field, Reason: it.Reason})
					}
				}
				sort.SliceStable(s.Rejections, func(i, j int) bool { return s.Rejections[i].Line < s.Rejections[j].Line })
				err = nil
			}
			if err != nil {
				return s, fmt.Errorf("store records up to line %d: %w", b.lastLine, err)
			}
			s.Loaded += inserted
			s.Duplicates += dups
		}
		s.Bytes = b.bytes
		if progress != nil {
			progress(s.Bytes, s)
		}
		if b.err != nil {
			if errors.Is(b.err, context.Canceled) || errors.Is(b.err, context.DeadlineExceeded) {
				return s, fmt.Errorf("load records: %w", b.err)
			}
			return s, b.err
		}
	}
	if err := parent.Err(); err != nil {
		return s, fmt.Errorf("load records: %w", err)
	}
	return s, nil
}

// ctxReader is an io.Reader that fails with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
