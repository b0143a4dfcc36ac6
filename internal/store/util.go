package store

import (
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var errNotFound = flywheel.ErrNotFound

// NewID returns a new 24-hex-digit id shaped like a MongoDB ObjectId (4 bytes
// of seconds, 8 random bytes), so clients of the blueprint that check the
// id format keep working and ids sort roughly by creation time.
func NewID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	_, _ = rand.Read(b[4:])
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has the shape NewID produces.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

func nullStringPtr(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}

func strPtr(ns sql.NullString) *string {
	if !ns.Valid {
		return nil
	}
	s := ns.String
	return &s
}

func nullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

func timePtr(nt sql.NullTime) *time.Time {
	if !nt.Valid {
		return nil
	}
	t := nt.Time.UTC()
	return &t
}

// jsonText encodes v for a JSON column. Values that cannot be encoded (a NaN
// score) are an error, never a panic.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %T as json: %w", v, err)
	}
	return string(b), nil
}

func nullJSON(v any, present bool) (sql.NullString, error) {
	if !present {
		return sql.NullString{}, nil
	}
	s, err := jsonText(v)
	return sql.NullString{String: s, Valid: err == nil}, err
}

func fromJSON(ns sql.NullString, v any) error {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(ns.String), v); err != nil {
		return fmt.Errorf("decode stored json: %w", err)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, flywheel.ErrNotFound) }
