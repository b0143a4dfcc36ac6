package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
)

// ingestLogs stores an NDJSON body of log records. The whole body is read
// (up to its cap) before anything is stored, so a body that is too large
// stores nothing. Good lines are stored even when others are rejected; each
// rejected line is listed with its number and reason.
func (s *Server) ingestLogs(w http.ResponseWriter, r *http.Request) {
	if s.opts.Logs == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Log ingestion is not configured")
		return
	}
	body, err := readBody(w, r, s.opts.MaxLogBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		writeDetail(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body exceeds %d bytes; split it into smaller requests", s.opts.MaxLogBodyBytes))
		return
	}
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "Could not read the request body")
		return
	}

	var resp api.LogsResponse
	resp.Errors = []api.LogLineError{}
	recs := make([]flywheel.LogRecord, 0, LogBatchSizeDefault)
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		ins, dup, err := s.opts.Logs.InsertLogs(r.Context(), recs)
		if err != nil {
			return err
		}
		resp.Inserted += ins
		resp.Duplicates += dup
		recs = recs[:0]
		return nil
	}

	lineNo := 0
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		lineNo++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		resp.Lines++
		rec, rej := s.opts.LogParser(line, lineNo)
		if rej != nil {
			resp.Rejected++
			if len(resp.Errors) < MaxLogErrors {
				rej.Line = lineNo
				resp.Errors = append(resp.Errors, *rej)
			} else {
				resp.ErrorsTruncated = true
			}
			continue
		}
		recs = append(recs, rec)
		if len(recs) == LogBatchSizeDefault {
			if err := flush(); err != nil {
				s.ingestFailed(w, r, err, lineNo, resp)
				return
			}
		}
	}
	if err := flush(); err != nil {
		s.ingestFailed(w, r, err, lineNo, resp)
		return
	}
	if resp.Lines == 0 {
		writeDetail(w, http.StatusBadRequest, "Request body holds no records (expected one JSON object per line)")
		return
	}
	s.logger.InfoContext(r.Context(), "Logs ingested",
		slog.Int("lines", resp.Lines), slog.Int("inserted", resp.Inserted),
		slog.Int("duplicates", resp.Duplicates), slog.Int("rejected", resp.Rejected))
	writeJSON(w, http.StatusOK, resp)
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
