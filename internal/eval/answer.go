package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// ErrAnswerUnreadable is returned by Scorer.Score, with the zero scores of
// a failed request, when the answer is not a chat completion.
var ErrAnswerUnreadable = errors.New("answer is not a chat completion")

// Scorer scores one answer against a reference answer to the same request
// with the deterministic metrics and the tool-call checker Evaluate uses
// (no judge). The online evaluation scores a promoted candidate's answers
// against production's with it. Its zero value is ready to use (checker
// mode CheckerFlywheel), and it is safe for concurrent use.
type Scorer struct {
	// Checker is the AST checker's mode (eval.tool_call_checker).
	Checker ToolCallChecker
	tools   toolsCache
}

// Score returns the per-item scores of answer, a chat-completion response
// body, against reference, the response body the request (a chat-completion
// request body) got from the reference model, keyed by metric name as in
// an evaluation's items. A request that offers tools or a reference that
// calls one is scored with the tool-calling metrics (function_name,
// function_name_and_args_accuracy, tool-call and argument F1, ast_accuracy),
// others with the text metrics (exact_match, token_f1, rouge_l).
//
// A nil answer is a failed request, and an answer that is not a chat
// completion too (then the error is ErrAnswerUnreadable): as in Evaluate,
// it scores 0 on every metric. A request or reference that cannot be
// scored is an error naming the field, with nil scores.
func (s *Scorer) Score(request, reference, answer json.RawMessage) (map[string]float64, error) {
	line := make([]byte, 0, len(request)+len(reference)+32)
	line = append(line, `{"request":`...)
	line = append(line, orNull(request)...)
	line = append(line, `,"response":`...)
	line = append(line, orNull(reference)...)
	line = append(line, '}')
	rec, err := parseRecord(line, &s.tools)
	if err != nil {
		return nil, err
	}
	tooling := len(rec.tools) > 0 || len(rec.refCalls) > 0
	var scores [numMetrics]float32
	for i := range scores {
		scores[i] = float32(math.NaN())
	}
	var answerErr error
	var pred openai.Message
	if len(answer) > 0 {
		resp, err := openai.DecodeChatResponse(answer)
		if err != nil {
			answerErr = fmt.Errorf("%w: %v", ErrAnswerUnreadable, err)
		} else {
			pred = resp.FirstMessage()
		}
	}
	switch {
	case len(answer) == 0 || answerErr != nil:
		failedScores(&scores, tooling)
	case tooling:
		toolScores(&scores, s.Checker, rec.tools, rec.refCalls, s.Checker.AnswerFromCalls(rec.tools, rec.refCalls), ParseCalls(pred.ToolCalls))
	default:
		t := ScoreText(pred.Content, rec.ref.Content)
		scores[mExact], scores[mTokenF1], scores[mRougeL] = float32(t.ExactMatch), float32(t.TokenF1), float32(t.RougeL)
	}
	out := make(map[string]float64, numMetrics)
	for m := range numMetrics {
		if m.perItem() && !math.IsNaN(float64(scores[m])) {
			out[m.key()] = float64(scores[m])
		}
	}
	return out, answerErr
}

// orNull is raw, or JSON null when it is empty.
func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// failedScores sets the scores of an item whose request failed: 0 on every
// deterministic metric of its kind.
func failedScores(scores *[numMetrics]float32, tooling bool) {
	if tooling {
		for _, m := range []metric{mFunctionName, mNameAndArgs, mCallP, mCallR, mCallF1, mArgP, mArgR, mArgF1, mAST} {
			scores[m] = 0
		}
		return
	}
	scores[mExact], scores[mTokenF1], scores[mRougeL] = 0, 0, 0
}

// toolScores sets the deterministic tool-calling scores of the predicted
// calls against the reference calls, and the AST check against answer in
// the checker's mode, whose verdict it returns.
func toolScores(scores *[numMetrics]float32, checker ToolCallChecker, tools Tools, ref []Call, answer Answer, calls []Call) Check {
	s := ScoreToolCalls(calls, ref)
	scores[mFunctionName] = float32(s.FunctionName)
	scores[mNameAndArgs] = float32(s.NameAndArgs)
	scores[mCallP], scores[mCallR], scores[mCallF1] = float32(s.CallPrecision), float32(s.CallRecall), float32(s.CallF1)
	scores[mArgP], scores[mArgR], scores[mArgF1] = float32(s.ArgPrecision), float32(s.ArgRecall), float32(s.ArgF1)
	ch := checker.Check(tools, calls, answer)
	scores[mAST] = 0
	if ch.Valid {
		scores[mAST] = 1
	}
	return ch
}
