package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/flywheel-go/flywheel/internal/flywheel"
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
}

// ProgressFunc is called by Load after every batch with the bytes read and
// the summary so far.
type ProgressFunc func(bytesRead int64, s Summary)

// Load reads JSONL from r and stores its records through ing in batches of
// opts.BatchSize. Bad lines are rejected and counted and never stop the
// load. It returns the summary and, on a read error, a store error or a
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
	rd := NewReader(r, opts)

	type parsed struct {
		recs       []flywheel.LogRecord
		lines      int
		rejected   int
		rejections []Rejection
		bytes      int64
		lastLine   int
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
			}
			b.bytes, b.lastLine = rd.BytesRead(), rd.line
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
	for b := range batches {
		s.Lines += b.lines
		s.Rejected += b.rejected
		s.Rejections = append(s.Rejections, b.rejections...)
		if len(b.recs) > 0 {
			inserted, dups, err := ing.InsertLogs(ctx, b.recs)
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
