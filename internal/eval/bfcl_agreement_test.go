package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBFCLAgreement compares both checker modes with verdicts recorded
// from BFCL's own AST checker. It runs when FLYWHEEL_BFCL_VERDICTS names a
// folder holding items.jsonl ({id, category, tools, bfcl_tools, answer}:
// the OpenAI tools of the item, the same tools with BFCL's type names, and
// BFCL's ground truth) and pairs.jsonl ({id, variant, pred: [{name,
// arguments}], answer?, bfcl: {valid, error_type}}: a prediction, an
// optional replacement answer, and BFCL's verdict). The bfcl mode must
// agree on every pair, verdict and error type, with either form of the
// tools; the flywheel mode's disagreements are listed by class.
func TestBFCLAgreement(t *testing.T) {
	dir := os.Getenv("FLYWHEEL_BFCL_VERDICTS")
	if dir == "" {
		t.Skip("FLYWHEEL_BFCL_VERDICTS is not set")
	}
	type item struct {
		category         string
		tools, bfclTools Tools
		answer           Answer
	}
	items := map[string]*item{}
	readLines(t, filepath.Join(dir, "items.jsonl"), func(line int, b []byte) {
		var raw struct {
			ID        string          `json:"id"`
			Category  string          `json:"category"`
			Tools     json.RawMessage `json:"tools"`
			BFCLTools json.RawMessage `json:"bfcl_tools"`
			Answer    json.RawMessage `json:"answer"`
		}
		require.NoError(t, json.Unmarshal(b, &raw), "items line %d", line)
		it := &item{category: raw.Category}
		var err error
		it.tools, err = ParseTools(raw.Tools)
		require.NoError(t, err, "items line %d", line)
		it.bfclTools, err = ParseTools(raw.BFCLTools)
		require.NoError(t, err, "items line %d", line)
		it.answer = answerOf(t, raw.Answer, line)
		items[raw.ID] = it
	})

	var diffs []string // flywheel disagreements, JSON lines, for FLYWHEEL_BFCL_DIFFS
	var total, agreeBFCL, agreeBFCLTypes, agreeBFCLOrig, agreeFly, bothReject, sameClass int
	flyDiff, flyExample, classDiff := map[string]int{}, map[string]string{}, map[string]int{}
	var firstBFCLDiffs []string
	readLines(t, filepath.Join(dir, "pairs.jsonl"), func(line int, b []byte) {
		var raw struct {
			ID      string `json:"id"`
			Variant string `json:"variant"`
			Pred    []struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"pred"`
			Answer json.RawMessage `json:"answer"`
			BFCL   struct {
				Valid     bool   `json:"valid"`
				ErrorType string `json:"error_type"`
			} `json:"bfcl"`
		}
		require.NoError(t, json.Unmarshal(b, &raw), "pairs line %d", line)
		it := items[raw.ID]
		require.NotNil(t, it, "pairs line %d: unknown item %s", line, raw.ID)
		answer := it.answer
		if len(raw.Answer) > 0 {
			answer = answerOf(t, raw.Answer, line)
		}
		pred := make([]Call, len(raw.Pred))
		for i, p := range raw.Pred {
			pred[i] = NewCall(p.Name, p.Arguments)
		}
		total++
		got := CheckCallsBFCL(it.tools, pred, answer, it.category)
		inferred := CheckerBFCL.Check(it.tools, pred, answer)
		orig := CheckCallsBFCL(it.bfclTools, pred, answer, it.category)
		if got.Valid == raw.BFCL.Valid && got.Class == raw.BFCL.ErrorType {
			agreeBFCL++
		} else if len(firstBFCLDiffs) < 20 {
			firstBFCLDiffs = append(firstBFCLDiffs, fmt.Sprintf("%s %s: bfcl %v %q, ours %v %q (%s)", raw.ID, raw.Variant,
				raw.BFCL.Valid, raw.BFCL.ErrorType, got.Valid, got.Class, got.Detail))
		}
		if inferred.Valid == raw.BFCL.Valid && inferred.Class == raw.BFCL.ErrorType {
			agreeBFCLTypes++
		}
		if orig.Valid == raw.BFCL.Valid && orig.Class == raw.BFCL.ErrorType {
			agreeBFCLOrig++
		}
		fly := CheckCalls(it.tools, pred, answer)
		if fly.Valid == raw.BFCL.Valid {
			agreeFly++
		} else {
			verdict := "accepts"
			if !fly.Valid {
				verdict = "rejects (" + fly.Class + ")"
			}
			key := fmt.Sprintf("%-40s BFCL %-55s flywheel %s", variantFamily(raw.Variant), orDash(raw.BFCL.ErrorType), verdict)
			flyDiff[key]++
			d, _ := json.Marshal(map[string]any{"id": raw.ID, "variant": raw.Variant, "bfcl": raw.BFCL.ErrorType, "flywheel": fly.Class})
			diffs = append(diffs, string(d))
			if _, ok := flyExample[key]; !ok {
				ex := fmt.Sprintf("%s %s", raw.ID, raw.Pred)
				flyExample[key] = ex[:min(len(ex), 300)]
			}
		}
		if !fly.Valid && !raw.BFCL.Valid {
			bothReject++
			if c := bfclClassOf(raw.BFCL.ErrorType, len(pred)); c == "" || c == fly.Class {
				sameClass++
			} else {
				key := fmt.Sprintf("BFCL %s, flywheel %s (%s)", raw.BFCL.ErrorType, fly.Class, variantFamily(raw.Variant))
				classDiff[key]++
				if _, ok := flyExample[key]; !ok {
					ex := fmt.Sprintf("%s %s", raw.ID, raw.Pred)
					flyExample[key] = ex[:min(len(ex), 300)]
				}
			}
		}
	})
	require.NotZero(t, total)
	if path := os.Getenv("FLYWHEEL_BFCL_DIFFS"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(strings.Join(diffs, "\n")+"\n"), 0o644))
	}
	pct := func(n, of int) string {
		return fmt.Sprintf("%d/%d = %.2f %%", n, of, 100*float64(n)/float64(max(of, 1)))
	}
	t.Logf("pairs: %d", total)
	t.Logf("bfcl mode, category given, OpenAI tools: verdict and error type agree on %s", pct(agreeBFCL, total))
	t.Logf("bfcl mode, category inferred:            agree on %s", pct(agreeBFCLTypes, total))
	t.Logf("bfcl mode, BFCL's own type names:         agree on %s", pct(agreeBFCLOrig, total))
	t.Logf("flywheel mode: verdict agrees on %s; where both reject, same class on %s", pct(agreeFly, total), pct(sameClass, bothReject))
	keys := make([]string, 0, len(flyDiff))
	for k := range flyDiff {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return flyDiff[b] - flyDiff[a] })
	for _, k := range keys {
		t.Logf("  flywheel differs %6d× %s", flyDiff[k], k)
		if testing.Verbose() {
			t.Logf("      e.g. %s", flyExample[k])
		}
	}
	keys = keys[:0]
	for k := range classDiff {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return classDiff[b] - classDiff[a] })
	for _, k := range keys {
		t.Logf("  both reject, other class %6d× %s", classDiff[k], k)
		if testing.Verbose() {
			t.Logf("      e.g. %s", flyExample[k])
		}
	}
	require.Equal(t, total, agreeBFCL, "bfcl mode disagreements:\n%s", strings.Join(firstBFCLDiffs, "\n"))
	require.Equal(t, total, agreeBFCLTypes, "bfcl mode with the inferred category")
	require.Equal(t, total, agreeBFCLOrig, "bfcl mode with BFCL's type names")
}

// variantFamily drops the call index and parameter details of a variant
// name ("c0:type:float" → "type:float").
func variantFamily(v string) string {
	if strings.HasPrefix(v, "c0:") || strings.HasPrefix(v, "c1:") {
		return v[3:]
	}
	return v
}

func orDash(s string) string {
	if s == "" {
		return "accepts"
	}
	return "rejects " + s
}

// bfclClassOf maps a BFCL error type to the flywheel mode's class ("" when
// BFCL's type does not say: a parallel item's failed match).
func bfclClassOf(errType string, calls int) string {
	switch {
	case strings.HasPrefix(errType, "ast_decoder:"):
		return ClassInvalidJSON
	case strings.HasSuffix(errType, ":wrong_count"):
		if calls == 0 {
			return ClassNoToolCall
		}
		return ClassWrongCount
	case strings.HasSuffix(errType, ":wrong_func_name"):
		return ClassWrongName
	case strings.HasSuffix(errType, ":missing_required"):
		return ClassMissingRequired
	case strings.HasSuffix(errType, ":unexpected_param"):
		return ClassUnexpectedParam
	case strings.HasSuffix(errType, ":missing_optional"):
		return ClassMissingOptional
	case strings.HasPrefix(errType, "type_error"):
		return ClassTypeError
	case strings.HasPrefix(errType, "value_error"), strings.HasPrefix(errType, "dict_checker"), strings.HasPrefix(errType, "list_dict_checker"):
		return ClassValueError
	}
	return ""
}

func answerOf(t *testing.T, gt json.RawMessage, line int) Answer {
	t.Helper()
	v, err := decodeJSON([]byte(`{"id":"x","ground_truth":` + string(gt) + `}`))
	require.NoError(t, err, "line %d", line)
	_, ans, err := parseAnswer(v)
	require.NoError(t, err, "line %d", line)
	return ans
}

func readLines(t *testing.T, path string, fn func(line int, b []byte)) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		fn(n, sc.Bytes())
	}
	require.NoError(t, sc.Err())
}
