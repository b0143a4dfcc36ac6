package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"unicode"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
)

// ReasonLeakage is the DataStats.Reasons key of the records the leakage
// guard removed.
const ReasonLeakage = "eval_leakage"

// questionKeys are the two keys the leakage guard compares records by.
type questionKeys struct {
	// exact hashes the last user message as written and the reference
	// tool calls (names and canonical arguments).
	exact [sha256.Size]byte
	// near hashes the same after NormalizeQuestion; hasNear is false when
	// nothing is left of the message once normalised.
	near    [sha256.Size]byte
	hasNear bool
}

// keysOf returns a record's question keys; ok is false for a record
// without a user message, which nothing can repeat.
func keysOf(r *Record) (k questionKeys, ok bool) {
	q := r.UserQuery()
	if strings.TrimSpace(q) == "" {
		return k, false
	}
	calls := callsKey(r)
	k.exact = sha256.Sum256(append([]byte(q+"\x00"), calls...))
	if n := NormalizeQuestion(q); n != "" {
		k.near = sha256.Sum256(append([]byte(n+"\x00"), calls...))
		k.hasNear = true
	}
	return k, true
}

// callsKey is the reference tool calls' names and canonical arguments, in
// order. Arguments written as a JSON string are read as the JSON they hold.
func callsKey(r *Record) []byte {
	var b bytes.Buffer
	for _, c := range r.Calls {
		b.WriteString(c.Name)
		b.WriteByte(0)
		b.Write(canonicalArguments(c.Arguments))
		b.WriteByte(0)
	}
	return b.Bytes()
}

func canonicalArguments(raw json.RawMessage) []byte {
	a := bytes.TrimSpace(raw)
	if len(a) > 0 && a[0] == '"' {
		var s string
		if json.Unmarshal(a, &s) == nil {
			a = bytes.TrimSpace([]byte(s))
		}
	}
	if len(a) == 0 || bytes.Equal(a, []byte("null")) {
		return []byte("{}")
	}
	return ingest.Canonical(a)
}

// NormalizeQuestion is the form the leakage guard compares questions in:
// lower case, punctuation removed, runs of white space made one space,
// trimmed.
func NormalizeQuestion(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsPunct(r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// guardLeakage removes from train and val every record whose question
// repeats one of the evaluation set's: exactly (same last user message and
// reference tool calls) or nearly (the same once normalised). The
// evaluation set is never changed. It returns the kept records and the
// counts.
func guardLeakage(eval, train, val []*Record) (keptTrain, keptVal []*Record, stats *flywheel.LeakageStats) {
	exact := map[[sha256.Size]byte]bool{}
	near := map[[sha256.Size]byte]bool{}
	for _, r := range eval {
		k, ok := keysOf(r)
		if !ok {
			continue
		}
		exact[k.exact] = true
		if k.hasNear {
			near[k.near] = true
		}
	}
	stats = &flywheel.LeakageStats{}
	filter := func(set []*Record, removed *int) []*Record {
		out := make([]*Record, 0, len(set))
		for _, r := range set {
			k, ok := keysOf(r)
			switch {
			case !ok:
			case exact[k.exact]:
				stats.Exact++
			case k.hasNear && near[k.near]:
				stats.Near++
			default:
				out = append(out, r)
				continue
			}
			if !ok {
				out = append(out, r)
				continue
			}
			*removed++
			if len(stats.RecordIDs) < flywheel.MaxLeakageIDs {
				stats.RecordIDs = append(stats.RecordIDs, r.Log.ID)
			}
		}
		return out
	}
	keptTrain = filter(train, &stats.Train)
	keptVal = filter(val, &stats.Val)
	return keptTrain, keptVal, stats
}
