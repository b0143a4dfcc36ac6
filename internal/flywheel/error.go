package flywheel

import (
	"errors"
	"fmt"
)

// Error codes shown to API users. The server maps each to one HTTP status.
const (
	ECONFLICT      = "conflict"      // the request clashes with the current state
	EINTERNAL      = "internal"      // a bug or an unexpected failure
	EINVALID       = "invalid"       // the request is malformed
	ENOTFOUND      = "not_found"     // the thing asked for does not exist
	EUNAVAILABLE   = "unavailable"   // a dependency is down; try again
	EUNPROCESSABLE = "unprocessable" // the body failed validation (422)
	EPRECONDITION  = "precondition"  // the operation is not allowed in this state (400)
)

// Error is an error with a code and a message meant for the user.
type Error struct {
	Code    string
	Message string
	// Fields, for EUNPROCESSABLE, names the offending fields.
	Fields []FieldError
}

// FieldError names one invalid field of a request body.
type FieldError struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// Error implements the error interface; it is the user-facing message.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err: the message of the
// first *Error in its chain, or "Internal error".
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error"
}

// Sentinel errors that code branches on.
var (
	// ErrPermanent marks a failure that retrying cannot fix (a 4xx answer,
	// invalid input). Wrap it: fmt.Errorf("...: %w", errors.Join(ErrPermanent, err)).
	ErrPermanent = errors.New("permanent failure")
	// ErrNotFound is returned by stores and platforms when a thing is absent.
	ErrNotFound = errors.New("not found")
)

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string   { return p.err.Error() }
func (p *permanentError) Unwrap() []error { return []error{p.err, ErrPermanent} }
