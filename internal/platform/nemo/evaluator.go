package nemo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// EvaluatorClient is a client of the NeMo Evaluator (v1 jobs API).
type EvaluatorClient struct {
	c   *caller
	svc Service
}

// Evaluation task, metric and score names of the blueprint's configs.
const (
	TaskToolCalling    = "custom-tool-calling"
	TaskLLMJudge       = "llm-as-judge"
	MetricToolCalling  = "tool-calling-accuracy"
	MetricCorrectness  = "correctness"
	MetricLLMJudge     = "llm-judge"
	ScoreFunctionAcc   = "function_name_accuracy"
	ScoreNameArgsAcc   = "function_name_and_args_accuracy"
	ScoreRating        = "rating"
	ScoreSimilarityRaw = "similarity"
)

// Judge prompts of the blueprint (their meaning, in our words).
const (
	toolCallingJudgeSystem = "You are an expert judge of tool calls. Compare the predicted tool calls with the " +
		"ground truth. Rate 0 if the prediction is missing or invalid, if a function name differs, or if an argument " +
		"of the ground truth is missing or has a different value (short identifiers must match exactly; long natural " +
		"language strings may match in meaning). Rate 1 otherwise. Answer exactly:\nRATING: 0 or 1\nEXPLANATION: one sentence."
	toolCallingJudgeUser = "*Ground Truth*: {{item.response.choices[0].message.tool_calls}}\n" +
		"*Prediction*: {{sample.response.choices[0].message.tool_calls}}"
	similarityJudgeSystem = "You are an expert judge. Rate how similar the CANDIDATE answer is to the REFERENCE " +
		"answer for the TASK, from 1 (irrelevant or empty) to 10 (nearly identical in meaning). Return ONLY the integer (1-10)."
	similarityJudgeUser = "TASK:\n<<<\n{{item.request.messages}}\n>>>\n\nREFERENCE:\n<<<\n" +
		"{{item.response.choices[0].message.content}}\n>>>\n\nCANDIDATE:\n<<<\n{{sample.output_text}}\n>>>"
)

// JudgeModel returns the "model" parameter of an LLM-judge metric: the
// model id string for a judge served by the NIM proxy (local), or an
// api_endpoint object for a remote one.
func JudgeModel(local bool, url, modelID, apiKey string) any {
	if local {
		return modelID
	}
	ep := map[string]string{"url": url, "model_id": modelID}
	if apiKey != "" {
		ep["api_key"] = apiKey
	}
	return map[string]any{"api_endpoint": ep}
}

func evalDataset(filesURL string, limit int) map[string]any {
	ds := map[string]any{"files_url": filesURL}
	if limit > 0 {
		ds["limit"] = limit
	}
	return ds
}

// ToolCallingConfig returns the blueprint's inline config for tool-calling
// workloads: name and argument accuracy plus an LLM-judge correctness rating.
func ToolCallingConfig(filesURL string, limit int, judge any) map[string]any {
	return map[string]any{
		"type": "custom",
		"tasks": map[string]any{TaskToolCalling: map[string]any{
			"type":    "chat-completion",
			"dataset": evalDataset(filesURL, limit),
			"params": map[string]any{"template": map[string]any{
				"messages":    "{{ item.request.messages | tojson }}",
				"tools":       "{{ item.request.tools | tojson }}",
				"tool_choice": "required",
			}},
			"metrics": map[string]any{
				MetricToolCalling: map[string]any{"type": "tool-calling", "params": map[string]any{
					"model":                   judge,
					"tool_calls_ground_truth": "{{ item.response.choices[0].message.tool_calls | tojson }}",
				}},
				MetricCorrectness: map[string]any{"type": "llm-judge", "params": map[string]any{
					"model": judge,
					"template": map[string]any{"messages": []map[string]string{
						{"role": "system", "content": toolCallingJudgeSystem},
						{"role": "user", "content": toolCallingJudgeUser},
					}},
					"scores": map[string]any{ScoreRating: map[string]any{
						"type": "int", "parser": map[string]any{"type": "regex", "pattern": `RATING:\s*(\d+)`},
					}},
				}},
			},
		}},
	}
}

// GenericConfig returns the inline config for generic workloads: an LLM
// judge rating similarity 1-10. The regex takes every digit, so "10" reads
// as 10 (the blueprint's "(\d)" read it as 1).
func GenericConfig(filesURL string, limit int, judge any) map[string]any {
	return map[string]any{
		"type": "custom",
		"tasks": map[string]any{TaskLLMJudge: map[string]any{
			"type":    "chat-completion",
			"dataset": evalDataset(filesURL, limit),
			"params": map[string]any{"template": map[string]any{
				"messages": "{{ item.request.messages | tojson }}",
			}},
			"metrics": map[string]any{
				MetricLLMJudge: map[string]any{"type": "llm-judge", "params": map[string]any{
					"model": judge,
					"template": map[string]any{"messages": []map[string]string{
						{"role": "system", "content": similarityJudgeSystem},
						{"role": "user", "content": similarityJudgeUser},
					}},
					"scores": map[string]any{ScoreSimilarityRaw: map[string]any{
						"type": "int", "parser": map[string]any{"type": "regex", "pattern": `(\d+)`},
					}},
				}},
			},
		}},
	}
}

// CreateEvaluationJob is the body of a job create call.
type CreateEvaluationJob struct {
	Namespace    string         `json:"namespace,omitempty"`
	Description  string         `json:"description,omitempty"`
	Config       any            `json:"config"`
	Target       any            `json:"target"`
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

// ModelTarget returns the inline target {"type":"model","model":id}.
func ModelTarget(modelID string) map[string]any {
	return map[string]any{"type": "model", "model": modelID}
}

// EvaluationJob is the Evaluator's job object (the fields the flywheel reads).
type EvaluationJob struct {
	ID            string         `json:"id"`
	Namespace     string         `json:"namespace,omitempty"`
	Status        string         `json:"status"`
	CustomFields  map[string]any `json:"custom_fields,omitempty"`
	StatusDetails struct {
		Message          string            `json:"message,omitempty"`
		Progress         *float64          `json:"progress"`
		SamplesProcessed int               `json:"samples_processed,omitempty"`
		TaskStatus       map[string]string `json:"task_status,omitempty"`
	} `json:"status_details"`
	OutputFilesURL string `json:"output_files_url,omitempty"`
}

// ScoreStats are the statistics of one score.
type ScoreStats struct {
	Count  int      `json:"count"`
	Sum    float64  `json:"sum"`
	Mean   float64  `json:"mean"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	StdDev float64  `json:"stddev,omitempty"`
	StdErr float64  `json:"stderr,omitempty"`
}

// Score is one score of a metric.
type Score struct {
	Value float64     `json:"value"`
	Stats *ScoreStats `json:"stats,omitempty"`
}

// EvaluationResults is the answer of GET /v1/evaluation/jobs/{id}/results.
type EvaluationResults struct {
	ID    string `json:"id,omitempty"`
	Job   string `json:"job,omitempty"`
	Tasks map[string]struct {
		Metrics map[string]struct {
			Scores map[string]Score `json:"scores"`
		} `json:"metrics"`
	} `json:"tasks"`
}

// Score returns tasks[task].metrics[metric].scores[score].
func (r EvaluationResults) Score(task, metric, score string) (Score, bool) {
	t, ok := r.Tasks[task]
	if !ok {
		return Score{}, false
	}
	m, ok := t.Metrics[metric]
	if !ok {
		return Score{}, false
	}
	s, ok := m.Scores[score]
	return s, ok
}

// CreateJob sends one create call without retrying (see Customizer.CreateJob).
func (e *EvaluatorClient) CreateJob(ctx context.Context, body CreateEvaluationJob) (EvaluationJob, error) {
	var out EvaluationJob
	if err := e.c.once(ctx, request{method: http.MethodPost, svc: e.svc, path: "/v1/evaluation/jobs", body: body, out: &out}); err != nil {
		return EvaluationJob{}, fmt.Errorf("create evaluation job: %w", err)
	}
	if out.ID == "" {
		return EvaluationJob{}, fmt.Errorf("create evaluation job: answer has no id")
	}
	return out, nil
}

// Job returns a job with its status details.
func (e *EvaluatorClient) Job(ctx context.Context, id string) (EvaluationJob, error) {
	var out EvaluationJob
	if err := e.c.do(ctx, request{method: http.MethodGet, svc: e.svc,
		path: "/v1/evaluation/jobs/" + url.PathEscape(id), out: &out}); err != nil {
		return EvaluationJob{}, fmt.Errorf("get evaluation job %s: %w", id, err)
	}
	return out, nil
}

// Results returns a completed job's aggregate scores.
func (e *EvaluatorClient) Results(ctx context.Context, id string) (EvaluationResults, error) {
	var out EvaluationResults
	if err := e.c.do(ctx, request{method: http.MethodGet, svc: e.svc,
		path: "/v1/evaluation/jobs/" + url.PathEscape(id) + "/results", out: &out}); err != nil {
		return EvaluationResults{}, fmt.Errorf("get evaluation job %s results: %w", id, err)
	}
	return out, nil
}

// CancelJob cancels a job; a missing one is not an error.
func (e *EvaluatorClient) CancelJob(ctx context.Context, id string) error {
	err := e.c.do(ctx, request{method: http.MethodPost, svc: e.svc,
		path: "/v1/evaluation/jobs/" + url.PathEscape(id) + "/cancel"})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("cancel evaluation job %s: %w", id, err)
	}
	return nil
}

// DeleteJob deletes a job; a missing one is not an error.
func (e *EvaluatorClient) DeleteJob(ctx context.Context, id string) error {
	err := e.c.do(ctx, request{method: http.MethodDelete, svc: e.svc, path: "/v1/evaluation/jobs/" + url.PathEscape(id)})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("delete evaluation job %s: %w", id, err)
	}
	return nil
}

// FindJob returns the newest job whose custom_fields[key] == value among
// the newest pages of the job list, or false.
func (e *EvaluatorClient) FindJob(ctx context.Context, key, value string, pages int) (EvaluationJob, bool, error) {
	var found EvaluationJob
	ok, err := listPages(ctx, e.c, e.svc, "/v1/evaluation/jobs", pages, func(raw json.RawMessage) (bool, error) {
		var j EvaluationJob
		if err := json.Unmarshal(raw, &j); err != nil {
			return false, fmt.Errorf("decode evaluation job: %w", err)
		}
		if v, _ := j.CustomFields[key].(string); v == value {
			found = j
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return EvaluationJob{}, false, fmt.Errorf("find evaluation job %s=%s: %w", key, value, err)
	}
	return found, ok, nil
}
