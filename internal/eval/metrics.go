package eval

import (
	"slices"
)

// ToolScores are the per-item tool-calling metrics. Every field is in
// [0, 1].
type ToolScores struct {
	// FunctionName is 1 when the predicted calls name the same functions
	// as the reference, as a multiset (order of parallel calls ignored).
	FunctionName float64
	// NameAndArgs is 1 when the predicted calls equal the reference calls,
	// names and canonical arguments, as a multiset.
	NameAndArgs float64
	// CallPrecision, CallRecall and CallF1 count whole calls (name and
	// arguments) that match one reference call each.
	CallPrecision, CallRecall, CallF1 float64
	// ArgPrecision, ArgRecall and ArgF1 count (function, argument, value)
	// triples; a call without arguments counts as one triple of its own, so
	// that calling the wrong argument-less function is not a perfect score.
	ArgPrecision, ArgRecall, ArgF1 float64
}

// ScoreToolCalls compares predicted calls with reference calls. When both
// are empty every score is 1; when exactly one side is empty, every score
// is 0.
func ScoreToolCalls(pred, ref []Call) ToolScores {
	var s ToolScores
	predNames := make([]string, len(pred))
	refNames := make([]string, len(ref))
	for i, c := range pred {
		predNames[i] = normName(c.Name)
	}
	for i, c := range ref {
		refNames[i] = normName(c.Name)
	}
	slices.Sort(predNames)
	slices.Sort(refNames)
	if slices.Equal(predNames, refNames) {
		s.FunctionName = 1
	}

	predKeys := make([]string, len(pred))
	refKeys := make([]string, len(ref))
	for i, c := range pred {
		predKeys[i] = normName(c.Name) + "\x00" + c.canon
	}
	for i, c := range ref {
		refKeys[i] = normName(c.Name) + "\x00" + c.canon
	}
	matched := multisetOverlap(predKeys, refKeys)
	if matched == len(pred) && matched == len(ref) {
		s.NameAndArgs = 1
	}
	s.CallPrecision, s.CallRecall, s.CallF1 = prf(matched, len(pred), len(ref))

	pt, rt := argTriples(pred), argTriples(ref)
	s.ArgPrecision, s.ArgRecall, s.ArgF1 = prf(multisetOverlap(pt, rt), len(pt), len(rt))
	return s
}

// argTriples flattens calls to "name, key, canonical value" strings.
func argTriples(calls []Call) []string {
	var out []string
	for _, c := range calls {
		name := normName(c.Name)
		switch {
		case c.ArgsErr != nil:
			out = append(out, name+"\x00\x01invalid")
		case len(c.Args) == 0:
			out = append(out, name+"\x00\x01none")
		default:
			for k, v := range c.Args {
				out = append(out, name+"\x00"+k+"\x00"+Canonical(v))
			}
		}
	}
	return out
}

// multisetOverlap counts the elements a and b share, with multiplicity.
func multisetOverlap(a, b []string) int {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	counts := make(map[string]int, len(b))
	for _, x := range b {
		counts[x]++
	}
	n := 0
	for _, x := range a {
		if counts[x] > 0 {
			counts[x]--
			n++
		}
	}
	return n
}

// prf returns precision, recall and F1 for matched items out of nPred
// predicted and nRef expected. Nothing predicted and nothing expected is a
// perfect score.
func prf(matched, nPred, nRef int) (p, r, f float64) {
	if nPred == 0 && nRef == 0 {
		return 1, 1, 1
	}
	if nPred > 0 {
		p = float64(matched) / float64(nPred)
	}
	if nRef > 0 {
		r = float64(matched) / float64(nRef)
	}
	if p+r > 0 {
		f = 2 * p * r / (p + r)
	}
	return p, r, f
}
