// Package redact removes secrets and personal data from logged chat
// completions before they are stored. A Redactor holds a set of detectors;
// Record rewrites every string of a record's request and response JSON
// (tool-call arguments included: they are JSON text inside a string, and
// their values are redacted as text) and replaces each finding with a
// placeholder such as <EMAIL_1>. Within one record the same value always
// gets the same placeholder, so a tool call's arguments stay consistent with
// the user's message.
package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Built-in detector names.
const (
	Secrets = "secrets" // API keys, bearer tokens, JWTs, private keys, passwords in URLs
	Cards   = "cards"   // payment card numbers (Luhn-checked)
	Email   = "email"   // e-mail addresses
	Phone   = "phone"   // phone numbers
	IBAN    = "iban"    // IBANs (mod-97 checked)
	IP      = "ip"      // IPv4 and IPv6 addresses
)

// Builtins lists the built-in detectors in the order they run.
var Builtins = []string{Secrets, Cards, IBAN, Email, Phone, IP}

// MaxDetectors is how many detectors, built-in and custom, a Redactor
// runs at most.
const MaxDetectors = 64

// None, alone in Config.Detectors, runs no built-in detector.
const None = "none"

// DefaultDetectors are the detectors on when the configuration names none.
var DefaultDetectors = []string{Secrets, Cards}

// Custom is a detector defined by a regular expression (Go syntax). When the
// expression has a capturing group, only the first group is replaced.
type Custom struct {
	Name    string `yaml:"name" json:"name"`
	Pattern string `yaml:"pattern" json:"pattern"`
}

// Config selects the detectors of a Redactor.
type Config struct {
	// Detectors names the built-in detectors to run (see Builtins); empty
	// means DefaultDetectors, and ["none"] only the custom ones.
	Detectors []string `yaml:"detectors,omitempty" json:"detectors,omitempty"`
	// Custom adds detectors from regular expressions.
	Custom []Custom `yaml:"custom,omitempty" json:"custom,omitempty"`
	// Disabled turns redaction off altogether.
	Disabled bool `yaml:"disabled" json:"disabled"`
}

// Counts is how many values each detector replaced, by detector name.
type Counts map[string]int

// Add adds o to c.
func (c Counts) Add(o Counts) {
	for k, v := range o {
		c[k] += v
	}
}

// Total is the sum of the counts.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// detector finds the values to replace in a string.
type detector struct {
	name  string
	label string // placeholder prefix, e.g. EMAIL
	// minLen is the length of the shortest finding (in bytes).
	minLen int
	// maybe is a cheap test that the text may hold a finding (nil: always
	// run).
	maybe func(b []byte, f *features) bool
	// find returns the [start, end) byte ranges to replace, in order and
	// not overlapping.
	find func(s string) [][2]int
}

// Redactor redacts records. It is safe for concurrent use.
type Redactor struct {
	detectors []detector
	observe   Observer
	// minLen is the shortest string any detector can find something in.
	minLen int
}

// Observer is told what Batch redacted, and on which ingest path (for
// metrics).
type Observer func(path string, c Counts)

// Ingest paths, as given to Batch.
const (
	PathLoad    = "load"          // flywheel load
	PathAPI     = "api"           // POST /api/logs
	PathCapture = "capture"       // the capture proxy
	PathES      = "elasticsearch" // the Elasticsearch reader
	PathStored  = "stored"        // flywheel logs redact
)

// WithObserver returns a copy of r that tells o what each Batch redacted.
func (r *Redactor) WithObserver(o Observer) *Redactor {
	if r == nil {
		return nil
	}
	c := *r
	c.observe = o
	return &c
}

// Batch is Records for one batch of an ingest path: it also tells r's
// Observer. A nil Redactor redacts nothing.
func (r *Redactor) Batch(path string, recs []flywheel.LogRecord) Counts {
	c := r.Records(recs)
	if r != nil && r.observe != nil && len(c) > 0 {
		r.observe(path, c)
	}
	return c
}

// New returns the Redactor of cfg, or an error naming the bad detector or
// pattern. A disabled config, or one with no detector, gives a Redactor
// that changes nothing.
func New(cfg Config) (*Redactor, error) {
	r := &Redactor{}
	if cfg.Disabled {
		return r, nil
	}
	names := cfg.Detectors
	if len(names) == 0 {
		names = DefaultDetectors
	}
	if len(names) == 1 && strings.EqualFold(strings.TrimSpace(names[0]), None) {
		names = nil
	}
	for _, n := range names {
		if !slices.Contains(Builtins, strings.ToLower(strings.TrimSpace(n))) {
			return nil, fmt.Errorf("redaction detector %q: unknown (one of %s)", n, strings.Join(Builtins, ", "))
		}
	}
	for _, b := range Builtins {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), b) }) {
			continue
		}
		r.detectors = append(r.detectors, builtin(b))
	}
	if len(r.detectors)+len(cfg.Custom) > MaxDetectors {
		return nil, fmt.Errorf("redaction custom: %d detectors, at most %d in all", len(r.detectors)+len(cfg.Custom), MaxDetectors)
	}
	seen := map[string]bool{}
	for i, c := range cfg.Custom {
		name := strings.TrimSpace(c.Name)
		if name == "" {
			return nil, fmt.Errorf("redaction custom[%d].name: empty", i)
		}
		if slices.Contains(Builtins, strings.ToLower(name)) || seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("redaction custom[%d].name %q: already a detector", i, name)
		}
		seen[strings.ToLower(name)] = true
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("redaction custom[%d] (%s).pattern: %w", i, name, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("redaction custom[%d] (%s).pattern: matches the empty string", i, name)
		}
		r.detectors = append(r.detectors, detector{name: name, label: label(name), minLen: 1, find: regexFinder(re, nil)})
	}
	for i, d := range r.detectors {
		if i == 0 || d.minLen < r.minLen {
			r.minLen = d.minLen
		}
	}
	return r, nil
}

// MustNew is New for configurations known to be valid (tests, defaults).
func MustNew(cfg Config) *Redactor {
	r, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return r
}

// Enabled reports whether r has any detector.
func (r *Redactor) Enabled() bool { return r != nil && len(r.detectors) > 0 }

// Detectors returns the names of r's detectors, in the order they run.
func (r *Redactor) Detectors() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.detectors))
	for i, d := range r.detectors {
		out[i] = d.name
	}
	return out
}

// label makes a placeholder prefix of a detector name.
func label(name string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(name) {
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// state is the placeholders of one record.
type state struct {
	seen   map[string]string // detector label + "\x00" + value → placeholder
	next   map[string]int    // label → last number used
	counts Counts
}

func (st *state) placeholder(d *detector, value string) string {
	if st.seen == nil {
		st.seen, st.next = map[string]string{}, map[string]int{}
	}
	key := d.label + "\x00" + value
	if p, ok := st.seen[key]; ok {
		return p
	}
	st.next[d.label]++
	p := "<" + d.label + "_" + strconv.Itoa(st.next[d.label]) + ">"
	st.seen[key] = p
	return p
}

// Text redacts one string on its own (placeholders numbered from 1).
func (r *Redactor) Text(s string) (string, Counts) {
	st := state{counts: Counts{}}
	return r.text(s, &st), st.counts
}

// candidates returns the set (bit i for detector i) of r's detectors that
// may find something in b.
func (r *Redactor) candidates(b []byte) uint64 {
	var set uint64
	f := scan(b)
	for i := range r.detectors {
		d := &r.detectors[i]
		if len(b) >= d.minLen && (d.maybe == nil || d.maybe(b, &f)) {
			set |= 1 << i
		}
	}
	return set
}

func (r *Redactor) text(s string, st *state) string {
	return r.textOf(s, st, r.candidates([]byte(s)))
}

// textOf runs the detectors of set over s, in order.
func (r *Redactor) textOf(s string, st *state, set uint64) string {
	for i := range r.detectors {
		d := &r.detectors[i]
		if set&(1<<i) == 0 {
			continue
		}
		locs := d.find(s)
		if len(locs) == 0 {
			continue
		}
		var b strings.Builder
		b.Grow(len(s))
		prev := 0
		for _, l := range locs {
			b.WriteString(s[prev:l[0]])
			b.WriteString(st.placeholder(d, s[l[0]:l[1]]))
			prev = l[1]
		}
		b.WriteString(s[prev:])
		s = b.String()
		st.counts[d.name] += len(locs)
	}
	return s
}

// Record redacts rec's request and response in place and returns what it
// replaced. Placeholders are consistent across the request and the
// response. The JSON keeps its layout: only string values change (object
// keys never do). A record whose JSON cannot be read is left as it is (the
// parser rejects it). When something changed, a precomputed ContentHash is
// computed again.
func (r *Redactor) Record(rec *flywheel.LogRecord) Counts {
	if !r.Enabled() {
		return nil
	}
	st := state{counts: Counts{}}
	req, okReq := r.json(rec.Request, &st)
	resp, okResp := r.json(rec.Response, &st)
	if st.counts.Total() == 0 {
		return st.counts
	}
	if okReq {
		rec.Request = req
	}
	if okResp {
		rec.Response = resp
	}
	if rec.ContentHash != "" {
		rec.ContentHash = rec.HashCompact()
	}
	return st.counts
}

// Records redacts every record of recs in place and returns the total counts.
func (r *Redactor) Records(recs []flywheel.LogRecord) Counts {
	total := Counts{}
	if !r.Enabled() {
		return total
	}
	for i := range recs {
		total.Add(r.Record(&recs[i]))
	}
	return total
}

// json rewrites the string values of raw. ok is false when raw is not
// JSON this scanner can read; then raw is returned unchanged.
func (r *Redactor) json(raw json.RawMessage, st *state) (json.RawMessage, bool) {
	if len(raw) == 0 {
		return raw, true
	}
	var out []byte // nil until something changes
	prev := 0
	i := 0
	for i < len(raw) {
		q := bytes.IndexByte(raw[i:], '"')
		if q < 0 {
			break
		}
		i += q
		end, ok := stringEnd(raw, i)
		if !ok {
			return raw, false
		}
		// An object key is followed by a colon.
		j := end
		for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
			j++
		}
		if j < len(raw) && raw[j] == ':' {
			i = end
			continue
		}
		lit := raw[i:end]
		if len(lit)-2 < r.minLen {
			// Too short for any finding (escapes only make the text shorter).
			i = end
			continue
		}
		var (
			s   string
			set uint64
		)
		if body := lit[1 : len(lit)-1]; bytes.IndexByte(body, '\\') < 0 {
			// Most strings: nothing to find, and no copy made to find it.
			if set = r.candidates(body); set == 0 {
				i = end
				continue
			}
			s = string(body)
		} else {
			if err := json.Unmarshal(lit, &s); err != nil {
				return raw, false
			}
			if set = r.candidates([]byte(s)); set == 0 {
				i = end
				continue
			}
		}
		red := r.textOf(s, st, set)
		if red != s {
			if out == nil {
				out = make([]byte, 0, len(raw)+64)
			}
			out = append(out, raw[prev:i]...)
			out = appendString(out, red)
			prev = end
		}
		i = end
	}
	if out == nil {
		return raw, true
	}
	out = append(out, raw[prev:]...)
	return out, true
}

// stringEnd returns the index just past the JSON string starting at raw[i].
func stringEnd(raw []byte, i int) (int, bool) {
	j := i + 1
	for {
		q := bytes.IndexByte(raw[j:], '"')
		if q < 0 {
			return 0, false
		}
		j += q
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		n := 0
		for k := j - 1; k > i && raw[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		j++
	}
}

// appendString appends s as a JSON string without HTML escaping.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
