package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

type bfclItem struct {
	id     string
	rec    *parsedRecord
	answer Answer
}

// loadBFCL reads one BFCL-format log file of dir and its answers.
func loadBFCL(t *testing.T, dir, name string) []bfclItem {
	t.Helper()
	af, err := os.Open(filepath.Join(dir, name+".answers.jsonl"))
	require.NoError(t, err)
	defer af.Close()
	answers, err := LoadAnswers(af)
	require.NoError(t, err)

	f, err := os.Open(filepath.Join(dir, name+".jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	var items []bfclItem
	for sc.Scan() {
		rec, err := parseRecord(bytes.Clone(sc.Bytes()), &toolsCache{})
		require.NoError(t, err, "%s line %d", name, len(items)+1)
		id := strings.TrimPrefix(rec.responseID, "chatcmpl-")
		ans, ok := answers[id]
		require.True(t, ok, "no answer for %s", id)
		items = append(items, bfclItem{id: id, rec: rec, answer: ans})
	}
	require.NoError(t, sc.Err())
	require.Len(t, answers, len(items))
	return items
}

// bfclFiles returns the names of the log files of dir.
func bfclFiles(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	var names []string
	for _, m := range matches {
		base := filepath.Base(m)
		if !strings.HasSuffix(base, ".answers.jsonl") {
			names = append(names, strings.TrimSuffix(base, ".jsonl"))
		}
	}
	require.Len(t, names, 4)
	return names
}

// TestBFCLGroundTruthScoresOne runs on the generated corpus and, when
// FLYWHEEL_BFCL_DIR names one, on that corpus too.
func TestBFCLGroundTruthScoresOne(t *testing.T) {
	t.Parallel()
	for _, corpus := range testcorpus.Dirs(t) {
		t.Run(corpus.Name, func(t *testing.T) {
			t.Parallel()
			testBFCLGroundTruthScoresOne(t, corpus.Dir)
		})
	}
}

func testBFCLGroundTruthScoresOne(t *testing.T, dir string) {
	for _, name := range bfclFiles(t, dir) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			items := loadBFCL(t, dir, name)
			for _, it := range items {
				ref := it.rec.refCalls
				require.NotEmpty(t, ref, it.id)
				// Replay the reference through the wire format, as a server would send it.
				pred := ParseCalls(it.rec.ref.ToolCalls)
				s := ScoreToolCalls(pred, ref)
				require.Equal(t, ToolScores{1, 1, 1, 1, 1, 1, 1, 1}, s, it.id)
				ch := CheckCalls(it.rec.tools, pred, it.answer)
				require.True(t, ch.Valid, "%s against acceptable values: %s %s", it.id, ch.Class, ch.Detail)
				ch = CheckCalls(it.rec.tools, pred, AnswerFromCalls(ref))
				require.True(t, ch.Valid, "%s against the reference: %s %s", it.id, ch.Class, ch.Detail)
				// Reformatted but equal JSON: indented, keys reversed.
				re := reformat(t, pred)
				s = ScoreToolCalls(re, ref)
				require.Equal(t, ToolScores{1, 1, 1, 1, 1, 1, 1, 1}, s, it.id)
				require.True(t, CheckCalls(it.rec.tools, re, it.answer).Valid, it.id)
			}
		})
	}
}

// reformat re-encodes each call's arguments with indentation and keys in
// reverse order.
func reformat(t *testing.T, calls []Call) []Call {
	t.Helper()
	out := make([]Call, len(calls))
	for i, c := range calls {
		keys := sortedKeys(c.Args)
		var sb strings.Builder
		sb.WriteString("{\n")
		for j := len(keys) - 1; j >= 0; j-- {
			v, err := json.MarshalIndent(c.Args[keys[j]], "  ", "    ")
			require.NoError(t, err)
			kb, _ := json.Marshal(keys[j])
			sb.WriteString("  " + string(kb) + " :  " + string(v))
			if j > 0 {
				sb.WriteString(",\n")
			}
		}
		sb.WriteString("\n}")
		out[i] = NewCall(c.Name, sb.String())
		require.NoError(t, out[i].ArgsErr)
		require.NotEqual(t, c.RawArgs, out[i].RawArgs)
	}
	return out
}

// perturbation changes the prediction of one item; ok is false when it
// does not apply to the item.
type perturbation struct {
	name  string
	apply func(t *testing.T, it bfclItem) (pred []Call, ok bool)
	class string
	// want is the expected tool scores; nil checks only the class.
	check func(t *testing.T, id string, s ToolScores)
	// minItems is how many items the perturbation must apply to.
	minItems int
}

// cloneCalls deep-copies calls through their canonical JSON.
func cloneCalls(t *testing.T, calls []Call) []Call {
	t.Helper()
	out := make([]Call, len(calls))
	for i, c := range calls {
		out[i] = NewCall(c.Name, c.canon)
		require.NoError(t, out[i].ArgsErr)
	}
	return out
}

// withArgs re-encodes call i of calls with args.
func withArgs(t *testing.T, calls []Call, i int, args map[string]any) []Call {
	t.Helper()
	out := cloneCalls(t, calls)
	b, err := json.Marshal(args)
	require.NoError(t, err)
	out[i] = NewCall(calls[i].Name, string(b))
	require.NoError(t, out[i].ArgsErr)
	return out
}

func copyArgs(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// answerFor returns the acceptable values of call i of an item.
func answerFor(it bfclItem, name string) AnswerCall {
	for _, a := range it.answer {
		if normName(a.Name) == normName(name) {
			return a
		}
	}
	return AnswerCall{}
}

// TestBFCLPerturbations runs on the generated corpus and, when
// FLYWHEEL_BFCL_DIR names one, on that corpus too.
func TestBFCLPerturbations(t *testing.T) {
	t.Parallel()
	for _, corpus := range testcorpus.Dirs(t) {
		t.Run(corpus.Name, func(t *testing.T) {
			t.Parallel()
			testBFCLPerturbations(t, corpus.Dir)
		})
	}
}

func testBFCLPerturbations(t *testing.T, dir string) {
	names := bfclFiles(t, dir)
	var items []bfclItem
	for _, n := range names {
		items = append(items, loadBFCL(t, dir, n)...)
	}

	perfect := ToolScores{1, 1, 1, 1, 1, 1, 1, 1}
	perturbations := []perturbation{
		{
			name: "WrongName", class: ClassWrongName, minItems: 1000,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				out := cloneCalls(t, it.rec.refCalls)
				out[0] = NewCall(out[0].Name+"_v2", out[0].RawArgs)
				return out, true
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Zero(t, s.FunctionName, id)
				require.Zero(t, s.NameAndArgs, id)
				require.Less(t, s.CallRecall, 1.0, id)
				require.Less(t, s.ArgF1, 1.0, id)
			},
		},
		{
			name: "DroppedRequiredArg", class: ClassMissingRequired, minItems: 900,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				for i, c := range it.rec.refCalls {
					schema := it.rec.tools[normName(c.Name)]
					if schema == nil {
						continue
					}
					ans := answerFor(it, c.Name)
					for _, r := range schema.Required {
						if _, ok := c.Args[r]; ok && !containsOmit(ans.Params[r]) {
							args := copyArgs(c.Args)
							delete(args, r)
							return withArgs(t, it.rec.refCalls, i, args), true
						}
					}
				}
				return nil, false
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Equal(t, 1.0, s.FunctionName, id)
				require.Zero(t, s.NameAndArgs, id)
				require.Less(t, s.ArgRecall, 1.0, id)
				require.Less(t, s.CallF1, 1.0, id)
			},
		},
		{
			name: "ExtraArg", class: ClassUnexpectedParam, minItems: 1000,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				c := it.rec.refCalls[0]
				args := copyArgs(c.Args)
				args["zz_not_a_param"] = json.Number("1")
				return withArgs(t, it.rec.refCalls, 0, args), true
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Equal(t, 1.0, s.FunctionName, id)
				require.Zero(t, s.NameAndArgs, id)
				require.Equal(t, 1.0, s.ArgRecall, id)
				require.Less(t, s.ArgPrecision, 1.0, id)
			},
		},
		{
			name: "WrongType", class: ClassTypeError, minItems: 800,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				for i, c := range it.rec.refCalls {
					schema := it.rec.tools[normName(c.Name)]
					if schema == nil {
						continue
					}
					ans := answerFor(it, c.Name)
					for _, k := range sortedKeys(c.Args) {
						prop := schema.Properties[k]
						if prop == nil || len(prop.Type) != 1 {
							continue
						}
						var bad any
						switch prop.Type[0] {
						case "integer", "number", "boolean", "array", "object":
							if slicesContainString(ans.Params[k]) {
								continue // BFCL tolerates strings there
							}
							bad = "not a " + prop.Type[0]
						case "string":
							bad = json.Number("12345")
						default:
							continue
						}
						args := copyArgs(c.Args)
						args[k] = bad
						return withArgs(t, it.rec.refCalls, i, args), true
					}
				}
				return nil, false
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Equal(t, 1.0, s.FunctionName, id)
				require.Zero(t, s.NameAndArgs, id)
				require.Less(t, s.ArgF1, 1.0, id)
			},
		},
		{
			name: "WrongValue", class: ClassValueError, minItems: 900,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				for i, c := range it.rec.refCalls {
					for _, k := range sortedKeys(c.Args) {
						if n, ok := c.Args[k].(json.Number); ok {
							args := copyArgs(c.Args)
							f, err := n.Float64()
							require.NoError(t, err)
							args[k] = f*3 + 1001
							return withArgs(t, it.rec.refCalls, i, args), true
						}
						if s, ok := c.Args[k].(string); ok {
							args := copyArgs(c.Args)
							args[k] = s + " Zanzibar"
							return withArgs(t, it.rec.refCalls, i, args), true
						}
					}
				}
				return nil, false
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Equal(t, 1.0, s.FunctionName, id)
				require.Zero(t, s.NameAndArgs, id)
			},
		},
		{
			name: "SwappedParallelOrder", minItems: 400,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				if len(it.rec.refCalls) < 2 {
					return nil, false
				}
				out := cloneCalls(t, it.rec.refCalls)
				for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
					out[i], out[j] = out[j], out[i]
				}
				return out, true
			},
			check: func(t *testing.T, id string, s ToolScores) { require.Equal(t, perfect, s, id) },
		},
		{
			name: "DroppedCall", class: ClassWrongCount, minItems: 400,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				if len(it.rec.refCalls) < 2 {
					return nil, false
				}
				return cloneCalls(t, it.rec.refCalls[1:]), true
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Zero(t, s.NameAndArgs, id)
				require.Equal(t, 1.0, s.CallPrecision, id)
				require.Less(t, s.CallRecall, 1.0, id)
			},
		},
		{
			name: "NoToolCall", class: ClassNoToolCall, minItems: 1000,
			apply: func(*testing.T, bfclItem) ([]Call, bool) { return nil, true },
			check: func(t *testing.T, id string, s ToolScores) { require.Equal(t, ToolScores{}, s, id) },
		},
		{
			name: "InvalidJSON", class: ClassInvalidJSON, minItems: 1000,
			apply: func(t *testing.T, it bfclItem) ([]Call, bool) {
				out := cloneCalls(t, it.rec.refCalls)
				out[0] = NewCall(out[0].Name, strings.TrimSuffix(out[0].RawArgs, "}"))
				return out, true
			},
			check: func(t *testing.T, id string, s ToolScores) {
				require.Equal(t, 1.0, s.FunctionName, id)
				require.Zero(t, s.NameAndArgs, id)
			},
		},
	}
	for _, p := range perturbations {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			applied := 0
			for _, it := range items {
				pred, ok := p.apply(t, it)
				if !ok {
					continue
				}
				applied++
				p.check(t, it.id, ScoreToolCalls(pred, it.rec.refCalls))
				for _, ans := range []Answer{it.answer, AnswerFromCalls(it.rec.refCalls)} {
					ch := CheckCalls(it.rec.tools, pred, ans)
					if p.class == "" {
						require.True(t, ch.Valid, "%s: %s %s", it.id, ch.Class, ch.Detail)
						continue
					}
					require.False(t, ch.Valid, it.id)
					require.Equal(t, p.class, ch.Class, "%s: %s", it.id, ch.Detail)
				}
			}
			require.GreaterOrEqual(t, applied, p.minItems, "perturbation applied to too few items")
		})
	}
}

func containsOmit(l []any) bool {
	for _, a := range l {
		if isOmitMarker(a) {
			return true
		}
	}
	return false
}

func slicesContainString(l []any) bool {
	for _, a := range l {
		if isNonEmptyString(a) {
			return true
		}
	}
	return false
}
