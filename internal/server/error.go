package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// statusOf is the one mapping of flywheel error codes to HTTP statuses.
func statusOf(code string) int {
	switch code {
	case flywheel.EINVALID, flywheel.EPRECONDITION:
		return http.StatusBadRequest
	case flywheel.ENOTFOUND:
		return http.StatusNotFound
	case flywheel.ECONFLICT:
		return http.StatusConflict
	case flywheel.EUNPROCESSABLE:
		return http.StatusUnprocessableEntity
	case flywheel.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers with the status and body err calls for. Errors that
// are not *flywheel.Error become 500 "Internal error"; the full error is
// logged, never shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The client went away; nobody reads the answer.
		writeDetail(w, 499, "Client closed request")
		return
	}
	code := flywheel.ErrorCode(err)
	status := statusOf(code)
	if status >= http.StatusInternalServerError {
		s.logger.ErrorContext(ctx, "Request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	if code == flywheel.EUNPROCESSABLE {
		var fe *flywheel.Error
		errors.As(err, &fe)
		writeValidation(w, fieldErrors(fe))
		return
	}
	writeDetail(w, status, flywheel.ErrorMessage(err))
}

// fieldErrors turns the fields of an EUNPROCESSABLE error into the items
// of a 422 body; an error without fields names the body.
func fieldErrors(fe *flywheel.Error) []api.ValidationError {
	if fe == nil || len(fe.Fields) == 0 {
		msg := "Invalid request"
		if fe != nil && fe.Message != "" {
			msg = fe.Message
		}
		return []api.ValidationError{{Loc: []any{"body"}, Msg: msg, Type: "value_error"}}
	}
	out := make([]api.ValidationError, 0, len(fe.Fields))
	for _, f := range fe.Fields {
		loc := make([]any, len(f.Loc))
		for i, l := range f.Loc {
			loc[i] = l
		}
		out = append(out, api.ValidationError{Loc: loc, Msg: f.Msg, Type: cmpOr(f.Type, "value_error")})
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, api.ErrorResponse{Detail: detail})
}

func writeValidation(w http.ResponseWriter, errs []api.ValidationError) {
	writeJSON(w, http.StatusUnprocessableEntity, api.ValidationErrorResponse{Detail: errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unencodable values (NaN scores) get here.
		b = []byte(`{"detail":"Internal error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
