package eval

import (
	"fmt"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Findings says, for every candidate evaluated both as-is and another way,
// whether few-shot examples (icl-eval) and fine-tuning (customized-eval)
// helped it on metric: the paired difference from its base-eval on the
// items both answered, with its 95% interval (on exact tool calls, the
// tool name's too). "helped" and "hurt" need the
// interval to exclude zero; otherwise the line says the difference is not
// clear. Candidates come in their order; one without a base-eval, or
// sharing no scored item with it, has no finding.
func Findings(cands []Candidate, metric string, boot Bootstrap) []string {
	var out []string
	base := map[string]Candidate{}
	var order []string
	for _, c := range cands {
		if c.EvalType == flywheel.EvalBase {
			if _, seen := base[c.Name]; !seen {
				order = append(order, c.Name)
			}
			base[c.Name] = c
		}
	}
	for _, name := range order {
		for _, way := range []struct {
			t    flywheel.EvalType
			what string
		}{{flywheel.EvalICL, "few-shot examples (icl-eval)"}, {flywheel.EvalCustomized, "fine-tuning (customized-eval)"}} {
			for _, c := range cands {
				if c.Name != name || c.EvalType != way.t {
					continue
				}
				// Only items both answered: a failed request says
				// nothing of what examples or training did to the model
				// (the run's warnings count failures).
				a, b, left := answeredInBoth(c, base[name])
				cp, err := Compare(a, b, metric, boot)
				if err != nil {
					continue
				}
				line := fmt.Sprintf("%s: %s %s: %s %.4f vs %.4f as-is, difference %+.4f [95%% CI %+.4f, %+.4f], n=%d",
					name, way.what, verdict(cp.Diff), metric, cp.MeanA, cp.MeanB, cp.Diff.Mean, cp.Diff.CILow, cp.Diff.CIHigh, cp.N)
				// Exact calls say little where few are right: the tool
				// name shows what changed below them.
				if metric == flywheel.ScoreFunctionNameAndArgs {
					if fn, err := Compare(a, b, flywheel.ScoreFunctionName, boot); err == nil {
						line += fmt.Sprintf("; %s %s: %.4f vs %.4f, difference %+.4f [95%% CI %+.4f, %+.4f]",
							flywheel.ScoreFunctionName, verdict(fn.Diff), fn.MeanA, fn.MeanB, fn.Diff.Mean, fn.Diff.CILow, fn.Diff.CIHigh)
					}
				}
				if left > 0 {
					line += fmt.Sprintf(" (%d items without an answer in one of the two left out)", left)
				}
				out = append(out, line)
			}
		}
	}
	return out
}

// verdict reads a paired difference's interval.
func verdict(d flywheel.ScoreDetail) string {
	switch {
	case d.CILow > 0:
		return "helped"
	case d.CIHigh < 0:
		return "did not help (it hurt)"
	case d.Mean == 0 && d.CILow == 0 && d.CIHigh == 0:
		return "made no difference"
	default:
		return "made no clear difference"
	}
}

// answeredInBoth returns a and b holding only the items (by index) that
// both answered (a wrong answer counts; a failed request does not), and
// how many items of either were left out.
func answeredInBoth(a, b Candidate) (Candidate, Candidate, int) {
	ok := func(c Candidate) map[int]bool {
		m := make(map[int]bool, len(c.Result.Items))
		for _, it := range c.Result.Items {
			m[it.Index] = !noReply(it.ErrorClass)
		}
		return m
	}
	okA, okB := ok(a), ok(b)
	keep := func(c Candidate) (Candidate, int) {
		var items []flywheel.ItemResult
		left := 0
		for _, it := range c.Result.Items {
			if okA[it.Index] && okB[it.Index] {
				items = append(items, it)
			} else {
				left++
			}
		}
		c.Result.Items = items
		return c, left
	}
	fa, leftA := keep(a)
	fb, leftB := keep(b)
	return fa, fb, max(leftA, leftB)
}

// noReply reports whether an item's class says the model gave no usable
// reply (a failed request), rather than a wrong one.
func noReply(class string) bool {
	switch class {
	case ClassServerError, ClassTimeout, ClassUnparseable, ClassConnectionError:
		return true
	}
	return false
}
