package eval

import (
	"strings"
	"unicode"
)

// MaxTextTokens caps the tokens ROUGE-L compares per text, bounding its
// quadratic cost.
const MaxTextTokens = 4096

// TextScores are the per-item text metrics, each in [0, 1].
type TextScores struct {
	ExactMatch float64
	TokenF1    float64
	RougeL     float64
}

// ScoreText compares a predicted text with the reference text.
func ScoreText(pred, ref string) TextScores {
	p, r := Tokenize(pred), Tokenize(ref)
	return TextScores{ExactMatch: ExactMatch(pred, ref), TokenF1: tokenF1(p, r), RougeL: rougeL(p, r)}
}

// ExactMatch is 1 when the texts are equal after trimming surrounding
// white space.
func ExactMatch(pred, ref string) float64 {
	if strings.TrimSpace(pred) == strings.TrimSpace(ref) {
		return 1
	}
	return 0
}

// Tokenize lower-cases s and splits it into runs of letters and digits.
func Tokenize(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// TokenF1 is the F1 of the bags of tokens of the two texts. Two texts
// without tokens score 1.
func TokenF1(pred, ref string) float64 { return tokenF1(Tokenize(pred), Tokenize(ref)) }

func tokenF1(p, r []string) float64 {
	if len(p) == 0 && len(r) == 0 {
		return 1
	}
	_, _, f := prf(multisetOverlap(p, r), len(p), len(r))
	return f
}

// RougeL is the ROUGE-L F1 of the two texts: the longest common
// subsequence of tokens against each text's length. Two texts without
// tokens score 1.
func RougeL(pred, ref string) float64 { return rougeL(Tokenize(pred), Tokenize(ref)) }

func rougeL(p, r []string) float64 {
	if len(p) == 0 && len(r) == 0 {
		return 1
	}
	if len(p) == 0 || len(r) == 0 {
		return 0
	}
	p, r = p[:min(len(p), MaxTextTokens)], r[:min(len(r), MaxTextTokens)]
	prev := make([]int, len(r)+1)
	cur := make([]int, len(r)+1)
	for i := range p {
		for j := range r {
			switch {
			case p[i] == r[j]:
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	_, _, f := prf(prev[len(r)], len(p), len(r))
	return f
}
