package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
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
// the failure stay; sending the same body again is safe, as stored records
// are recognised as duplicates.
func (s *Server) ingestFailed(w http.ResponseWriter, r *http.Request, err error, lineNo int, resp api.LogsResponse) {
	s.logger.ErrorContext(r.Context(), "Storing logs failed",
		slog.Int("line", lineNo), slog.Int("inserted", resp.Inserted), slog.Any("error", err))
	status := statusOf(flywheel.ErrorCode(err))
	if status == http.StatusInternalServerError {
		status = http.StatusServiceUnavailable
	}
	writeDetail(w, status, fmt.Sprintf(
		"Storing records failed near line %d after %d were stored; send the same body again (stored records are skipped as duplicates)",
		lineNo, resp.Inserted))
}

// logLine is the blueprint's log schema.
type logLine struct {
	WorkloadID *string         `json:"workload_id"`
	ClientID   *string         `json:"client_id"`
	Timestamp  json.RawMessage `json:"timestamp"`
	Request    json.RawMessage `json:"request"`
	Response   json.RawMessage `json:"response"`
}

// parseLogLine is the built-in parser of one line in the blueprint's log
// schema: workload_id, client_id, timestamp (unix seconds or RFC 3339),
// request and response (JSON objects).
func parseLogLine(line []byte, lineNo int) (flywheel.LogRecord, *api.LogLineError) {
	reject := func(field, reason string) (flywheel.LogRecord, *api.LogLineError) {
		return flywheel.LogRecord{}, &api.LogLineError{Line: lineNo, Field: field, Reason: reason}
	}
	var l logLine
	if err := json.Unmarshal(line, &l); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return reject(ute.Field, "must be a "+ute.Type.String())
		}
		if errors.As(err, &ute) {
			return reject("", "line is not a JSON object")
		}
		return reject("", "invalid JSON: "+err.Error())
	}
	if l.WorkloadID == nil || *l.WorkloadID == "" {
		return reject("workload_id", "missing or empty")
	}
	if l.ClientID == nil || *l.ClientID == "" {
		return reject("client_id", "missing or empty")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"request", l.Request}, {"response", l.Response}} {
		if t := bytes.TrimSpace(f.raw); len(t) == 0 || t[0] != '{' {
			return reject(f.name, "missing or not a JSON object")
		}
	}
	ts, ok := parseTimestamp(l.Timestamp)
	if !ok {
		return reject("timestamp", "must be unix seconds or an RFC 3339 time")
	}
	return flywheel.LogRecord{
		WorkloadID: *l.WorkloadID,
		ClientID:   *l.ClientID,
		Timestamp:  ts,
		Request:    l.Request,
		Response:   l.Response,
	}, nil
}

func parseTimestamp(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		return t.UTC(), err == nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
}
