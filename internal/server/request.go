package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// This file validates request bodies and query parameters the way FastAPI
// (pydantic v2, lax mode) does, with the same error types and messages, so
// a client of the blueprint sees the 422 bodies it knows.

// errBodyTooLarge is returned by readBody when the body exceeds its cap.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads at most limit bytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

// verr builds one validation error.
func verr(typ, msg string, loc ...any) api.ValidationError {
	return api.ValidationError{Loc: loc, Msg: msg, Type: typ}
}

// MaxEchoedInputBytes bounds the input a 422 item echoes: a larger value
// (a 100 KB id, a big body missing a field) is not repeated in the answer.
const MaxEchoedInputBytes = 1024

// withInput adds pydantic 2's input (the value at fault; nil writes null;
// left out when its JSON exceeds MaxEchoedInputBytes) and ctx (the rule's
// parameters, as key, value pairs) to e.
func withInput(e api.ValidationError, input any, ctx ...any) api.ValidationError {
	b, err := json.Marshal(input)
	if err != nil {
		b = []byte("null")
	}
	if len(b) <= MaxEchoedInputBytes {
		e.Input = b
	}
	if len(ctx) > 1 {
		e.Ctx = make(map[string]any, len(ctx)/2)
		for i := 0; i+1 < len(ctx); i += 2 {
			e.Ctx[fmt.Sprint(ctx[i])] = ctx[i+1]
		}
	}
	return e
}

// decodeJobRequest validates a POST /api/jobs body. It reports every
// problem at once; a nil slice means the request is valid.
func decodeJobRequest(body []byte) (flywheel.CreateJobRequest, []api.ValidationError) {
	var req flywheel.CreateJobRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, []api.ValidationError{withInput(verr("missing", "Field required", "body"), nil)}
	}
	if !utf8.Valid(body) {
		// The decoder would silently turn the bad bytes into U+FFFD.
		return req, []api.ValidationError{withInput(verr("json_invalid", "JSON decode error: invalid UTF-8", "body", invalidUTF8Offset(body)),
			map[string]any{}, "error", "invalid UTF-8")}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		err = fmt.Errorf("extra data after the JSON value")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = fmt.Errorf("extra data after the JSON value")
		}
	}
	if err != nil {
		pos := int(dec.InputOffset())
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// Offset counts the bad byte; FastAPI names its 0-based position.
			pos = max(int(se.Offset)-1, 0)
		}
		e := withInput(verr("json_invalid", "JSON decode error", "body", pos), map[string]any{}, "error", err.Error())
		return req, []api.ValidationError{e}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return req, []api.ValidationError{withInput(verr("model_attributes_type",
			"Input should be a valid dictionary or object to extract fields from", "body"), v)}
	}
	var errs []api.ValidationError
	raw, fromManifest := obj["manifest"]
	fromManifest = fromManifest && raw != nil
	if fromManifest {
		req.Manifest, errs = decodeManifest(raw, errs)
	}
	// A run made from a manifest takes its workload and client from it.
	if _, ok := obj["workload_id"]; ok || !fromManifest {
		req.WorkloadID, errs = requiredString(obj, "workload_id", errs)
	}
	if _, ok := obj["client_id"]; ok || !fromManifest {
		req.ClientID, errs = requiredString(obj, "client_id", errs)
	}
	if raw, ok := obj["data_split_config"]; ok && raw != nil {
		req.DataSplitConfig, errs = decodeDataSplit(raw, errs)
	}
	return req, errs
}

func requiredString(obj map[string]any, name string, errs []api.ValidationError) (string, []api.ValidationError) {
	raw, ok := obj[name]
	if !ok {
		return "", append(errs, withInput(verr("missing", "Field required", "body", name), obj))
	}
	s, ok := raw.(string)
	if !ok {
		return "", append(errs, withInput(verr("string_type", "Input should be a valid string", "body", name), raw))
	}
	if strings.TrimSpace(s) == "" {
		return "", append(errs, withInput(verr("string_too_short", "String should have at least 1 character", "body", name), s, "min_length", 1))
	}
	if e := textError(s, flywheel.MaxIDBytes, "body", name); e != nil {
		return "", append(errs, *e)
	}
	return s, errs
}

// textError returns the 422 item for a string the service cannot store
// (see flywheel.CheckText): longer than max bytes, not UTF-8, or with a
// NUL character; nil when s is fine.
func textError(s string, max int, loc ...any) *api.ValidationError {
	if len(s) > max {
		e := withInput(verr("string_too_long", fmt.Sprintf("String should have at most %d bytes", max), loc...), s, "max_length", max)
		return &e
	}
	if reason := flywheel.CheckText(s, 0); reason != "" {
		e := withInput(verr("value_error", "Value error, "+reason, loc...), s, "error", reason)
		return &e
	}
	return nil
}

// invalidUTF8Offset is the offset of the first byte of b that is not valid
// UTF-8.
func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func decodeDataSplit(raw any, errs []api.ValidationError) (*flywheel.DataSplitOverride, []api.ValidationError) {
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, append(errs, withInput(verr("model_type",
			"Input should be a valid dictionary or instance of DataSplitConfig", "body", "data_split_config"),
			raw, "class_name", "DataSplitConfig"))
	}
	o := &flywheel.DataSplitOverride{}
	loc := func(f string) []any { return []any{"body", "data_split_config", f} }
	intField := func(name string) *int {
		v, present := obj[name]
		if !present {
			return nil
		}
		n, e := laxInt(v)
		if e != nil && e.Type != "less_than_equal" {
			e.Loc = loc(name)
			errs = append(errs, *e)
			return nil
		}
		if e != nil || n > flywheel.MaxRecordCount {
			errs = append(errs, withInput(verr("less_than_equal",
				fmt.Sprintf("Input should be less than or equal to %d", flywheel.MaxRecordCount), loc(name)...),
				v, "le", flywheel.MaxRecordCount))
			return nil
		}
		i := int(n)
		return &i
	}
	o.EvalSize = intField("eval_size")
	o.MinTotalRecords = intField("min_total_records")
	o.Limit = intField("limit")
	if v, present := obj["random_seed"]; present && v != nil {
		n, e := laxInt(v)
		if e != nil {
			e.Loc = loc("random_seed")
			errs = append(errs, *e)
		} else {
			o.RandomSeed = &n
		}
	}
	if v, present := obj["val_ratio"]; present {
		f, e := laxFloat(v)
		switch {
		case e != nil:
			e.Loc = loc("val_ratio")
			errs = append(errs, *e)
		case f < 0:
			errs = append(errs, withInput(verr("greater_than_equal", "Input should be greater than or equal to 0", loc("val_ratio")...), v, "ge", 0))
		case f >= 1:
			errs = append(errs, withInput(verr("less_than", "Input should be less than 1", loc("val_ratio")...), v, "lt", 1))
		default:
			o.ValRatio = &f
		}
	}
	if v, present := obj["parse_function_arguments"]; present {
		b, e := laxBool(v)
		if e != nil {
			e.Loc = loc("parse_function_arguments")
			errs = append(errs, *e)
		} else {
			o.ParseFunctionArguments = &b
		}
	}
	return o, errs
}

// laxInt accepts what pydantic's lax mode accepts for int: integers,
// floats without a fractional part, and strings holding an integer.
func laxInt(v any) (int64, *api.ValidationError) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			e := withInput(verr("int_type", "Input should be a valid integer"), v)
			return 0, &e
		}
		if f != math.Trunc(f) {
			e := withInput(verr("int_from_float", "Input should be a valid integer, got a number with a fractional part"), v)
			return 0, &e
		}
		// float64(math.MaxInt64) is 2^63: compare with >=.
		if f >= 1<<63 {
			e := withInput(verr("less_than_equal", fmt.Sprintf("Input should be less than or equal to %d", int64(math.MaxInt64))), v, "le", int64(math.MaxInt64))
			return 0, &e
		}
		if f < -(1 << 63) {
			e := withInput(verr("greater_than_equal", fmt.Sprintf("Input should be greater than or equal to %d", int64(math.MinInt64))), v, "ge", int64(math.MinInt64))
			return 0, &e
		}
		return int64(f), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			e := withInput(verr("int_parsing", "Input should be a valid integer, unable to parse string as an integer"), v)
			return 0, &e
		}
		return n, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	default:
		e := withInput(verr("int_type", "Input should be a valid integer"), v)
		return 0, &e
	}
}

// laxFloat accepts numbers and strings holding a number.
func laxFloat(v any) (float64, *api.ValidationError) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			e := withInput(verr("finite_number", "Input should be a finite number"), v)
			return 0, &e
		}
		return f, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			e := withInput(verr("float_parsing", "Input should be a valid number, unable to parse string as a number"), v)
			return 0, &e
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			e := withInput(verr("finite_number", "Input should be a finite number"), v)
			return 0, &e
		}
		return f, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	default:
		e := withInput(verr("float_type", "Input should be a valid number"), v)
		return 0, &e
	}
}

// laxBool accepts booleans, 0 and 1, and pydantic's boolean words.
func laxBool(v any) (bool, *api.ValidationError) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case json.Number:
		switch x.String() {
		case "0", "0.0":
			return false, nil
		case "1", "1.0":
			return true, nil
		}
		e := withInput(verr("bool_parsing", "Input should be a valid boolean, unable to interpret input"), v)
		return false, &e
	case string:
		if b, ok := parseBoolWord(x); ok {
			return b, nil
		}
		e := withInput(verr("bool_parsing", "Input should be a valid boolean, unable to interpret input"), v)
		return false, &e
	default:
		e := withInput(verr("bool_type", "Input should be a valid boolean"), v)
		return false, &e
	}
}

func parseBoolWord(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "t", "yes", "y", "on":
		return true, true
	case "0", "false", "f", "no", "n", "off":
		return false, true
	}
	return false, false
}

// query reads the query parameters of a request, collecting errors.
type query struct {
	r    *http.Request
	errs []api.ValidationError
}

// text reads a string parameter that must be storable text of at most max
// bytes (see textError).
func (q *query) text(name string, max int) string {
	s := q.r.URL.Query().Get(name)
	if e := textError(s, max, "query", name); e != nil {
		q.errs = append(q.errs, *e)
		return ""
	}
	return s
}

// pathID reads a path parameter naming a record: storable text of at most
// flywheel.MaxIDBytes bytes. Its format is the service's to check.
func (q *query) pathID(name string) string {
	s := q.r.PathValue(name)
	if e := textError(s, flywheel.MaxIDBytes, "path", name); e != nil {
		q.errs = append(q.errs, *e)
		return ""
	}
	return s
}

// intIn reads an integer parameter in [lo, hi], def when absent.
func (q *query) intIn(name string, def, lo, hi int) int {
	s := q.r.URL.Query().Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		q.errs = append(q.errs, withInput(verr("int_parsing", "Input should be a valid integer, unable to parse string as an integer", "query", name), s))
		return def
	}
	if n < lo {
		q.errs = append(q.errs, withInput(verr("greater_than_equal", fmt.Sprintf("Input should be greater than or equal to %d", lo), "query", name), s, "ge", lo))
		return def
	}
	if n > hi {
		q.errs = append(q.errs, withInput(verr("less_than_equal", fmt.Sprintf("Input should be less than or equal to %d", hi), "query", name), s, "le", hi))
		return def
	}
	return n
}

// oneOf reads a parameter that must be one of values, def when absent.
func (q *query) oneOf(name, def string, values ...string) string {
	s := q.r.URL.Query().Get(name)
	if s == "" {
		return def
	}
	if slices.Contains(values, s) {
		return s
	}
	expected := "'" + strings.Join(values, "' or '") + "'"
	q.errs = append(q.errs, withInput(verr("literal_error", "Input should be "+expected, "query", name), s, "expected", expected))
	return def
}

func (q *query) boolean(name string) bool {
	s := q.r.URL.Query().Get(name)
	if s == "" {
		return false
	}
	b, ok := parseBoolWord(s)
	if !ok {
		q.errs = append(q.errs, withInput(verr("bool_parsing", "Input should be a valid boolean, unable to interpret input", "query", name), s))
	}
	return b
}

// runStatus reads a run status parameter.
func (q *query) runStatus(name string) flywheel.RunStatus {
	s := flywheel.RunStatus(q.r.URL.Query().Get(name))
	if s == "" || s.Valid() {
		return s
	}
	q.errs = append(q.errs, withInput(verr("enum",
		"Input should be 'pending', 'running', 'completed', 'failed' or 'cancelled'", "query", name),
		s, "expected", "'pending', 'running', 'completed', 'failed' or 'cancelled'"))
	return ""
}
