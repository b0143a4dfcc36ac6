package eval

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// JudgePrompts are the templates sent to the LLM judge. Placeholders:
// {{task}} (the conversation), {{reference}} and {{candidate}} (texts) for
// similarity; {{ground_truth}} and {{prediction}} (tool calls as JSON) for
// tool-calling correctness.
type JudgePrompts struct {
	SimilaritySystem string
	SimilarityUser   string
	ToolSystem       string
	ToolUser         string
}

// DefaultJudgePrompts returns our prompts. They ask for the same scales as
// the blueprint: similarity 1–10 and a 0/1 rating of a tool call.
func DefaultJudgePrompts() JudgePrompts {
	return JudgePrompts{
		SimilaritySystem: "You grade how close a candidate answer is to a reference answer for the same task. " +
			"Use a scale from 1 to 10: 10 means the candidate says the same thing as the reference, " +
			"7 to 9 means small differences, 4 to 6 means partly the same, 2 or 3 means mostly different, " +
			"and 1 means unrelated, wrong or empty. Reply with the number only.",
		SimilarityUser: "Task:\n<<<\n{{task}}\n>>>\n\nReference answer:\n<<<\n{{reference}}\n>>>\n\n" +
			"Candidate answer:\n<<<\n{{candidate}}\n>>>\n\nScore (1-10):",
		ToolSystem: "You check whether a predicted set of function calls does what the expected calls do. " +
			"Give 0 when the prediction is empty or not valid calls, when a function name differs, or when an " +
			"argument of the expected calls is missing. Short identifiers, numbers and enumerations must match " +
			"exactly; long free-text arguments may be paraphrased if they mean the same. Otherwise give 1. " +
			"Answer in two lines: \"RATING: <0 or 1>\" then \"EXPLANATION: <one sentence>\".",
		ToolUser: "Expected calls:\n{{ground_truth}}\n\nPredicted calls:\n{{prediction}}",
	}
}

// Judge scores predictions with an LLM through any OpenAI-compatible
// server. It is safe for concurrent use.
type Judge struct {
	client  *openai.Client
	model   string
	prompts JudgePrompts
}

// NewJudge returns a judge that asks model through client. Empty prompt
// fields take DefaultJudgePrompts' values.
func NewJudge(client *openai.Client, model string, prompts JudgePrompts) *Judge {
	def := DefaultJudgePrompts()
	if prompts.SimilaritySystem == "" {
		prompts.SimilaritySystem = def.SimilaritySystem
	}
	if prompts.SimilarityUser == "" {
		prompts.SimilarityUser = def.SimilarityUser
	}
	if prompts.ToolSystem == "" {
		prompts.ToolSystem = def.ToolSystem
	}
	if prompts.ToolUser == "" {
		prompts.ToolUser = def.ToolUser
	}
	return &Judge{client: client, model: model, prompts: prompts}
}

// ErrJudgeUnparsable is returned when the judge's reply holds no score.
var ErrJudgeUnparsable = errors.New("judge reply has no score")

// Similarity asks the judge how similar candidate is to reference (1–10).
func (j *Judge) Similarity(ctx context.Context, task, reference, candidate string) (float64, error) {
	user := fill(j.prompts.SimilarityUser, map[string]string{"task": task, "reference": reference, "candidate": candidate})
	reply, err := j.ask(ctx, j.prompts.SimilaritySystem, user)
	if err != nil {
		return 0, err
	}
	v, ok := ParseSimilarity(reply)
	if !ok {
		return 0, fmt.Errorf("%w: %.80q", ErrJudgeUnparsable, reply)
	}
	return v, nil
}

// ToolCallingCorrectness asks the judge whether the predicted calls are
// correct (0 or 1). Both arguments are JSON texts of tool-call lists.
func (j *Judge) ToolCallingCorrectness(ctx context.Context, groundTruth, prediction string) (float64, error) {
	user := fill(j.prompts.ToolUser, map[string]string{"ground_truth": groundTruth, "prediction": prediction})
	reply, err := j.ask(ctx, j.prompts.ToolSystem, user)
	if err != nil {
		return 0, err
	}
	v, ok := ParseRating(reply)
	if !ok {
		return 0, fmt.Errorf("%w: %.80q", ErrJudgeUnparsable, reply)
	}
	return v, nil
}

func (j *Judge) ask(ctx context.Context, system, user string) (string, error) {
	zero := 0.0
	maxTokens := 256
	resp, err := j.client.Chat(ctx, openai.ChatRequest{
		Model:       j.model,
		Messages:    []openai.Message{{Role: "system", Content: system}, {Role: "user", Content: user}},
		Temperature: &zero,
		MaxTokens:   &maxTokens,
	})
	if err != nil {
		return "", fmt.Errorf("ask judge: %w", err)
	}
	return resp.FirstMessage().Content, nil
}

// fill replaces {{name}} placeholders.
func fill(tmpl string, vals map[string]string) string {
	pairs := make([]string, 0, 2*len(vals))
	for k, v := range vals {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

// ParseSimilarity reads a 1–10 score: the first whole number of the reply
// (so "10" is ten, not one as the blueprint's one-digit regex reads it).
// A number outside 1–10 is not a score.
func ParseSimilarity(reply string) (float64, bool) {
	m := regexp.MustCompile(`\d+`).FindString(reply)
	if m == "" {
		return 0, false
	}
	n, err := strconv.Atoi(m)
	if err != nil || n < 1 || n > 10 {
		return 0, false
	}
	return float64(n), true
}

// ParseRating reads "RATING: 0" or "RATING: 1"; a bare "0" or "1" reply is
// accepted too.
func ParseRating(reply string) (float64, bool) {
	if m := regexp.MustCompile(`(?i)rating\s*[:=]?\s*\**\s*(\d+)`).FindStringSubmatch(reply); m != nil {
		switch m[1] {
		case "0":
			return 0, true
		case "1":
			return 1, true
		}
		return 0, false
	}
	switch strings.TrimSpace(reply) {
	case "0":
		return 0, true
	case "1":
		return 1, true
	}
	return 0, false
}
