package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Reasons given to users for a database that cannot serve a request.
const (
	reasonDiskFull    = "disk full"
	reasonUnreachable = "cannot reach the database"
	reasonBusy        = "the database is busy"
	reasonShutdown    = "the database is shutting down"
	reasonTimeout     = "the database did not answer in time"
)

// classifiedError is a driver error with the flywheel error users see for
// it. The driver error stays in the chain (errors.As still finds it) and
// gives Error() its text, for logs.
type classifiedError struct {
	err  error
	user *flywheel.Error
}

func (e *classifiedError) Error() string   { return e.err.Error() }
func (e *classifiedError) Unwrap() []error { return []error{e.user, e.err} }

// classify attaches a flywheel code to err when the driver's error says
// that the database cannot serve the request now but may later (disk full,
// connection refused or lost, busy, shutting down, timed out): those become
// EUNAVAILABLE with a short reason. Errors of the data (SQLSTATE class 22,
// an index row too big) become EUNPROCESSABLE: sending the same data again
// cannot succeed. Anything else, sql.ErrNoRows and a cancelled context are
// returned unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, sql.ErrNoRows) || errors.Is(err, context.Canceled) {
		return err
	}
	var ce *classifiedError
	if errors.As(err, &ce) {
		return err
	}
	if reason := unavailableReason(err); reason != "" {
		return &classifiedError{err: err, user: flywheel.Errorf(flywheel.EUNAVAILABLE, "Database unavailable: %s", reason)}
	}
	if isDataError(err) {
		return &classifiedError{err: err, user: flywheel.Errorf(flywheel.EUNPROCESSABLE, "The database cannot store a value: %s", dataReason(err))}
	}
	return err
}

// unavailableReason says why the database cannot serve a request now, or
// "" when err is not of that kind.
func unavailableReason(err error) string {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return reasonDiskFull
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return reasonBusy
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY:
			if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "disk is full") {
				return reasonDiskFull
			}
			return reasonUnreachable
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return reasonDiskFull
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return reasonUnreachable
		case pe.Code == "53300", pe.Code == "57P03": // too many connections, cannot connect now
			return reasonBusy
		case pe.Code == "57P01", pe.Code == "57P02": // admin or crash shutdown
			return reasonShutdown
		case pe.Code == "57014", pe.Code == "55P03": // query cancelled (statement timeout), lock not available
			return reasonTimeout
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return reasonBusy
		}
		return ""
	}
	if errors.Is(err, syscall.ENOSPC) {
		return reasonDiskFull
	}
	msg := err.Error()
	if strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "no space left on device") {
		return reasonDiskFull
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return reasonUnreachable
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout
	case errors.As(err, &netErr):
		if netErr.Timeout() {
			return reasonTimeout
		}
		return reasonUnreachable
	case strings.Contains(msg, "conn closed"), strings.Contains(msg, "connection refused"),
		strings.Contains(msg, "sql: database is closed"), strings.Contains(msg, "broken pipe"):
		return reasonUnreachable
	}
	return ""
}

// isDataError reports whether err says that a value cannot be stored:
// Postgres's SQLSTATE class 22 (data exception: NUL, invalid UTF-8, a
// value out of range) and 54000 (an index row too big), SQLite's
// SQLITE_TOOBIG and SQLITE_MISMATCH.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "22") || pe.Code == "54000"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return true
		}
	}
	return false
}

// dataReason is the database's own words for a data error, without the
// values it quotes.
func dataReason(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		if s, ok := sqlite.ErrorCodeString[se.Code()]; ok {
			return s
		}
	}
	return "value refused"
}
