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
func Load(ctx context.Context, r io.Reader, opts Options, ing flywheel.LogIngester, progress ProgressFunc) (Summary, error) {
	opts = opts.WithDefaults()
	rd := NewReader(r, opts)
	var s Summary
	batch := make([]flywheel.LogRecord, 0, opts.BatchSize)

	flush := func() error {
		if len(batch) > 0 {
			inserted, dups, err := ing.InsertLogs(ctx, batch)
			if err != nil {
				return fmt.Errorf("store records up to line %d: %w", rd.line, err)
			}
			s.Loaded += inserted
			s.Duplicates += dups
			batch = batch[:0]
		}
		s.Bytes = rd.BytesRead()
		if progress != nil {
			progress(s.Bytes, s)
		}
		return nil
	}

	for {
		if err := ctx.Err(); err != nil {
			s.Bytes = rd.BytesRead()
			return s, fmt.Errorf("load records: %w", err)
		}
		res, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return s, errors.Join(err, ferr)
			}
			return s, err
		}
		s.Lines++
		if res.Rejection != nil {
			s.Rejected++
			if opts.MaxRejections > 0 && len(s.Rejections) < opts.MaxRejections {
				s.Rejections = append(s.Rejections, *res.Rejection)
			}
			continue
		}
		batch = append(batch, res.Record)
		if len(batch) >= opts.BatchSize {
			if err := flush(); err != nil {
				return s, err
			}
		}
	}
	if err := flush(); err != nil {
		return s, err
	}
	return s, nil
}
