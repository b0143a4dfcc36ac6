package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// ingestLogs stores an NDJSON body of log records as it arrives: lines are
// parsed one by one and stored in batches (at most LogBatchSizeDefault
// records or LogBatchBytesDefault bytes), each before more of the body is
// read, so memory stays bounded whatever the body's size and a slow
// database slows the upload down. Good lines are stored even when others
// are rejected; each rejected line (unparsable, too long, or refused by the
// store) is listed with its number and reason.
func (s *Server) ingestLogs(w http.ResponseWriter, r *http.Request) {
	if s.opts.Logs == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Log ingestion is not configured")
		return
	}
	if r.ContentLength > s.opts.MaxLogBodyBytes {
		writeDetail(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body exceeds %d bytes; split it into smaller requests", s.opts.MaxLogBodyBytes))
		return
	}
	select {
	case s.ingestSlots <- struct{}{}:
		defer func() { <-s.ingestSlots }()
	case <-r.Context().Done():
		writeDetail(w, 499, "Client closed request")
		return
	}

	in := &logIngest{s: s, r: r}
	in.resp.Errors = []api.LogLineError{}
	lines := newLineReader(http.MaxBytesReader(w, r.Body, s.opts.MaxLogBodyBytes), s.opts.MaxLogLineBytes)
	for {
		line, lineNo, err := lines.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.bodyFailed(w, r, err, in)
			return
		}
		in.resp.Lines++
		if line == nil {
			in.reject(lineNo, "", fmt.Sprintf("line longer than %d bytes", s.opts.MaxLogLineBytes))
			continue
		}
		rec, rej := s.opts.LogParser(line, lineNo)
		if rej != nil {
			in.reject(lineNo, rej.Field, rej.Reason)
			continue
		}
		in.add(rec, lineNo, len(line))
		if len(in.batch) == LogBatchSizeDefault || in.batchBytes >= LogBatchBytesDefault {
			if err := in.flush(); err != nil {
				s.ingestFailed(w, r, err, lineNo, in.resp)
				return
			}
		}
	}
	if err := in.flush(); err != nil {
		s.ingestFailed(w, r, err, lines.lineNo, in.resp)
		return
	}
	resp := in.resp
	if resp.Lines == 0 {
		writeDetail(w, http.StatusBadRequest, "Request body holds no records (expected one JSON object per line)")
		return
	}
	s.logger.InfoContext(r.Context(), "Logs ingested",
		slog.Int("lines", resp.Lines), slog.Int("inserted", resp.Inserted),
		slog.Int("duplicates", resp.Duplicates), slog.Int("rejected", resp.Rejected))
	detail := map[string]any{"lines": resp.Lines, "inserted": resp.Inserted, "duplicates": resp.Duplicates, "rejected": resp.Rejected}
	if len(resp.Redacted) > 0 {
		detail["redacted"] = resp.Redacted
	}
	s.audit(r, flywheel.AuditLogsIngested, "POST /api/logs", detail)
	writeJSON(w, http.StatusOK, resp)
}

// logIngest is the state of one POST /api/logs: the answer so far and the
// batch being filled, with the line number of each of its records.
type logIngest struct {
	s          *Server
	r          *http.Request
	resp       api.LogsResponse
	batch      []flywheel.LogRecord
	lines      []int
	batchBytes int
	// storedThrough is the last line of the last batch stored.
	storedThrough int
}

func (in *logIngest) add(rec flywheel.LogRecord, lineNo, size int) {
	in.batch = append(in.batch, rec)
	in.lines = append(in.lines, lineNo)
	in.batchBytes += size
}

func (in *logIngest) reject(lineNo int, field, reason string) {
	in.resp.Rejected++
	if len(in.resp.Errors) < MaxLogErrors {
		in.resp.Errors = append(in.resp.Errors, api.LogLineError{Line: lineNo, Field: field, Reason: reason})
	} else {
		in.resp.ErrorsTruncated = true
	}
}

// flush stores the batch. Records the store refuses one by one
// (flywheel.RecordErrors) become rejected lines; the rest of their batch
// is stored. Any other error is returned.
func (in *logIngest) flush() error {
	if len(in.batch) == 0 {
		return nil
	}
	if c := in.s.opts.Redactor.Batch(redact.PathAPI, in.batch); len(c) > 0 {
		if in.resp.Redacted == nil {
			in.resp.Redacted = map[string]int{}
		}
		for k, v := range c {
			in.resp.Redacted[k] += v
		}
	}
	ins, dup, err := in.s.opts.Logs.InsertLogs(in.r.Context(), in.batch)
	if recErrs, ok := errors.AsType[*flywheel.RecordErrors](err); ok {
		refused := make([]api.LogLineError, 0, len(recErrs.Items))
		for _, it := range recErrs.Items {
			if it.Index >= 0 && it.Index < len(in.lines) {
				refused = append(refused, api.LogLineError{Line: in.lines[it.Index], Field: it.Field, Reason: it.Reason})
			}
		}
		slices.SortFunc(refused, func(a, b api.LogLineError) int { return a.Line - b.Line })
		for _, e := range refused {
			in.reject(e.Line, e.Field, e.Reason)
		}
		if len(refused) > 0 {
			// Keep the list in line order: parse rejections of this
			// batch's lines were added as they were read.
			slices.SortStableFunc(in.resp.Errors, func(a, b api.LogLineError) int { return a.Line - b.Line })
		}
		err = nil
	}
	if err != nil {
		return err
	}
	in.resp.Inserted += ins
	in.resp.Duplicates += dup
	in.storedThrough = in.lines[len(in.lines)-1]
	clear(in.batch) // let the stored records go
	in.batch, in.lines, in.batchBytes = in.batch[:0], in.lines[:0], 0
	return nil
}

// bodyFailed answers when the body could not be read to its end: too
// large, too slow, or cut. Batches stored before stay stored; the answer
// says up to which line.
func (s *Server) bodyFailed(w http.ResponseWriter, r *http.Request, err error, in *logIngest) {
	stored := "nothing was stored"
	if in.storedThrough > 0 {
		stored = fmt.Sprintf("lines 1 to %d were stored (%d new records); send the lines after it again (records sent twice are skipped as duplicates)",
			in.storedThrough, in.resp.Inserted)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeDetail(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body exceeds %d bytes; split it into smaller requests; %s", s.opts.MaxLogBodyBytes, stored))
	case bodyTimedOut(err):
		s.logger.WarnContext(r.Context(), "Request body too slow", slog.Int("stored_through_line", in.storedThrough))
		writeDetail(w, http.StatusRequestTimeout,
			fmt.Sprintf("The request body did not arrive in time (server.read_timeout); %s", stored))
	case r.Context().Err() != nil:
		writeDetail(w, 499, "Client closed request")
	default:
		s.logger.WarnContext(r.Context(), "Reading request body failed", slog.Any("error", err))
		writeDetail(w, http.StatusBadRequest, "Could not read the request body; "+stored)
	}
}

// ingestFailed answers when storing failed part-way. Records stored before
// the failure stay. It asks for the body again only when a retry can
// succeed (the database is down, full or busy: 503 with the reason; stored
// records are then skipped as duplicates); a record the database refuses
// is 422, and any other failure 500, without an invitation to retry.
func (s *Server) ingestFailed(w http.ResponseWriter, r *http.Request, err error, lineNo int, resp api.LogsResponse) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		writeDetail(w, 499, "Client closed request")
		return
	}
	s.logger.ErrorContext(r.Context(), "Storing logs failed",
		slog.Int("line", lineNo), slog.Int("inserted", resp.Inserted), slog.Any("error", err))
	where := fmt.Sprintf("Storing records failed near line %d after %d were stored", lineNo, resp.Inserted)
	switch code := flywheel.ErrorCode(err); code {
	case flywheel.EUNAVAILABLE:
		writeDetail(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"%s: %s; send the same body again when it is back (stored records are skipped as duplicates)",
			where, flywheel.ErrorMessage(err)))
	case flywheel.EUNPROCESSABLE, flywheel.EINVALID:
		writeDetail(w, statusOf(code), fmt.Sprintf(
			"%s: %s; sending these records again cannot succeed", where, flywheel.ErrorMessage(err)))
	default:
		writeDetail(w, http.StatusInternalServerError, where+": internal error")
	}
}

// ingestParser parses lines with the ingest package: the blueprint's log
// format and the conversation format, with the clock giving the time of
// records that carry none.
func ingestParser(now flywheel.Clock) LogParseFunc {
	opts := ingest.Options{Now: now}.WithDefaults()
	return func(line []byte, lineNo int) (flywheel.LogRecord, *api.LogLineError) {
		rec, rej := ingest.ParseLine(line, lineNo, opts)
		if rej != nil {
			return rec, &api.LogLineError{Line: rej.Line, Field: rej.Field, Reason: rej.Reason}
		}
		return rec, nil
	}
}

// lineReader reads the lines of a body one at a time, whatever their
// length, holding at most one line (up to its cap) in memory.
type lineReader struct {
	r      *bufio.Reader
	max    int
	lineNo int
	buf    []byte
}

func newLineReader(r io.Reader, maxLine int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: maxLine}
}

// next returns the next non-blank line (trimmed, in its own memory) and
// its 1-based number, or a nil line for a line over the cap (consumed to
// its end). It returns io.EOF after the last line and any read error as
// it comes.
func (lr *lineReader) next() ([]byte, int, error) {
	for {
		lr.buf = lr.buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			chunk, err = lr.r.ReadSlice('\n')
			if !tooLong {
				if len(lr.buf)+len(chunk) > lr.max+2 { // room for "\r\n"
					tooLong = true
					lr.buf = lr.buf[:0]
				} else {
					lr.buf = append(lr.buf, chunk...)
				}
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, lr.lineNo, err
		}
		if errors.Is(err, io.EOF) && len(lr.buf) == 0 && !tooLong {
			return nil, lr.lineNo, io.EOF
		}
		lr.lineNo++
		line := bytes.TrimSpace(lr.buf)
		if tooLong || len(line) > lr.max {
			return nil, lr.lineNo, nil
		}
		if len(line) > 0 {
			return bytes.Clone(line), lr.lineNo, nil
		}
	}
}
