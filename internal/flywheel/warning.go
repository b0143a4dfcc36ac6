package flywheel

import (
	"fmt"
	"strings"
)

// WarnFailureShare is the share of an evaluation's items without a usable
// reply (or without a judge score) from which its run carries a warning.
const WarnFailureShare = 0.5

// Warning kinds.
const (
	// WarningEvalFailures: at least WarnFailureShare of an evaluation's
	// items failed at the server, timed out, got an unparseable reply or
	// no reply at all; its scores say little about the model.
	WarningEvalFailures = "evaluation_failures"
	// WarningJudgeFailures: the LLM judge failed on at least
	// WarnFailureShare of the items it was asked to score.
	WarningJudgeFailures = "judge_failures"
)

// Warning says that a run's evidence is weaker than its status suggests.
type Warning struct {
	Kind      string   `json:"kind"`
	Candidate string   `json:"candidate"`
	EvalType  EvalType `json:"eval_type"`
	// Failed of Items items failed; Counts breaks Failed down by class.
	Failed     int            `json:"failed"`
	Items      int            `json:"items"`
	Counts     map[string]int `json:"counts,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	// Message says all of the above in one sentence.
	Message string `json:"message"`
}

// EvalWarnings returns the warnings one evaluation of candidate calls for.
func EvalWarnings(candidate string, e Evaluation) []Warning {
	s := e.Summary
	if s == nil {
		return nil
	}
	var out []Warning
	if failed := s.Failures.Total(); s.Items > 0 && failed > 0 && float64(failed) >= WarnFailureShare*float64(s.Items) {
		f := s.Failures
		w := Warning{Kind: WarningEvalFailures, Candidate: candidate, EvalType: e.EvalType, Failed: failed, Items: s.Items,
			Counts:     map[string]int{"server_error": f.ServerError, "timeout": f.Timeout, "unparseable": f.Unparseable, "connection": f.Connection},
			FirstError: s.FirstError}
		w.Message = fmt.Sprintf("%s %s: %d of %d items got no usable reply (server_error %d, timeout %d, unparseable %d, connection %d); its scores say little about the model",
			candidate, e.EvalType, failed, s.Items, f.ServerError, f.Timeout, f.Unparseable, f.Connection)
		out = append(out, withFirstError(w))
	}
	if s.JudgeCalls > 0 && s.JudgeFailures > 0 && float64(s.JudgeFailures) >= WarnFailureShare*float64(s.JudgeCalls) {
		w := Warning{Kind: WarningJudgeFailures, Candidate: candidate, EvalType: e.EvalType, Failed: s.JudgeFailures, Items: s.JudgeCalls,
			Counts: map[string]int{"judge_failed": s.JudgeFailures}, FirstError: s.FirstJudgeError}
		w.Message = fmt.Sprintf("%s %s: the LLM judge failed on %d of %d items; its judge scores are missing for them",
			candidate, e.EvalType, s.JudgeFailures, s.JudgeCalls)
		out = append(out, withFirstError(w))
	}
	return out
}

func withFirstError(w Warning) Warning {
	if w.FirstError != "" {
		w.Message += "; first error: " + strings.TrimSpace(w.FirstError)
	}
	return w
}

// Warnings returns the warnings of every evaluation of the run, in
// candidate and evaluation order; nil when there is none.
func (d *JobDetail) Warnings() []Warning {
	var out []Warning
	for _, n := range d.NIMs {
		for _, e := range n.Evaluations {
			out = append(out, EvalWarnings(n.ModelName, e)...)
		}
	}
	return out
}
