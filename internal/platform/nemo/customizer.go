package nemo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// Customizer is a client of the NeMo Customizer: configs and jobs.
type Customizer struct {
	c   *caller
	svc Service
}

// TrainingOption is one entry of a config's training_options.
type TrainingOption struct {
	TrainingType        string `json:"training_type"`
	FinetuningType      string `json:"finetuning_type"`
	NumGPUs             int    `json:"num_gpus"`
	NumNodes            int    `json:"num_nodes"`
	TensorParallelSize  int    `json:"tensor_parallel_size"`
	DataParallelSize    int    `json:"data_parallel_size"`
	UseSequenceParallel bool   `json:"use_sequence_parallel"`
	MicroBatchSize      int    `json:"micro_batch_size"`
}

// CustomizationConfig is the body of a config create call.
type CustomizationConfig struct {
	Name              string           `json:"name"`
	Namespace         string           `json:"namespace"`
	Target            string           `json:"target"`
	TrainingOptions   []TrainingOption `json:"training_options"`
	TrainingPrecision string           `json:"training_precision"`
	MaxSeqLength      int              `json:"max_seq_length"`
}

// LoRAParams are the LoRA hyper-parameters of a job.
type LoRAParams struct {
	AdapterDim     int     `json:"adapter_dim"`
	AdapterDropout float64 `json:"adapter_dropout"`
}

// Hyperparameters are a job's training hyper-parameters.
type Hyperparameters struct {
	TrainingType   string      `json:"training_type"`
	FinetuningType string      `json:"finetuning_type"`
	Epochs         int         `json:"epochs"`
	BatchSize      int         `json:"batch_size"`
	LearningRate   float64     `json:"learning_rate"`
	LoRA           *LoRAParams `json:"lora,omitempty"`
}

// DatasetRef names a dataset by namespace and name.
type DatasetRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// CreateCustomizationJob is the body of a job create call, as the
// blueprint sends it.
type CreateCustomizationJob struct {
	Name            string          `json:"name"`
	OutputModel     string          `json:"output_model"`
	Config          string          `json:"config"`
	Dataset         DatasetRef      `json:"dataset"`
	Hyperparameters Hyperparameters `json:"hyperparameters"`
}

// CustomizationJobInfo is the Customizer's job object (the fields the
// flywheel reads).
type CustomizationJobInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	Status      string `json:"status"`
	OutputModel string `json:"output_model"`
	CreatedAt   string `json:"created_at,omitempty"`
}

// StatusLog is one entry of a job's status_logs.
type StatusLog struct {
	UpdatedAt string `json:"updated_at,omitempty"`
	Message   string `json:"message"`
	Detail    string `json:"detail,omitempty"`
}

// MetricPoint is one logged value of a training metric.
type MetricPoint struct {
	Value     float64 `json:"value"`
	Step      int     `json:"step"`
	Timestamp string  `json:"timestamp,omitempty"`
}

// CustomizationStatus is the answer of GET /v1/customization/jobs/{id}/status.
type CustomizationStatus struct {
	Status          string   `json:"status"`
	StepsCompleted  int      `json:"steps_completed"`
	EpochsCompleted int      `json:"epochs_completed"`
	PercentageDone  float64  `json:"percentage_done"`
	StepsPerEpoch   int      `json:"steps_per_epoch,omitempty"`
	ElapsedTime     float64  `json:"elapsed_time,omitempty"`
	BestEpoch       *int     `json:"best_epoch,omitempty"`
	TrainLoss       *float64 `json:"train_loss,omitempty"`
	ValLoss         *float64 `json:"val_loss,omitempty"`
	Metrics         *struct {
		Keys    []string                 `json:"keys,omitempty"`
		Metrics map[string][]MetricPoint `json:"metrics,omitempty"`
	} `json:"metrics,omitempty"`
	StatusLogs []StatusLog `json:"status_logs,omitempty"`
}

// LastLog returns the last status log, or a zero one.
func (s CustomizationStatus) LastLog() StatusLog {
	if len(s.StatusLogs) == 0 {
		return StatusLog{}
	}
	return s.StatusLogs[len(s.StatusLogs)-1]
}

// MessageNotEnoughResources is the status log message of a job that waits
// for GPUs the cluster does not have.
const MessageNotEnoughResources = "NotEnoughResources"

// maxConfigVersions bounds the search for a free config version.
const maxConfigVersions = 100

// configName returns "<model part>@v1.0.<patch>+dfw" for base model
// "org/model".
func configName(model string, patch int) string {
	if i := strings.LastIndex(model, "/"); i >= 0 {
		model = model[i+1:]
	}
	return model + "@v1.0." + strconv.Itoa(patch) + "+dfw"
}

// EnsureConfig creates cfg under a versioned name derived from model and
// returns the name used. A config that already exists under a name is
// reused only when it matches cfg; otherwise the next version is tried.
func (c *Customizer) EnsureConfig(ctx context.Context, model string, cfg CustomizationConfig) (string, error) {
	for patch := range maxConfigVersions {
		cfg.Name = configName(model, patch)
		err := c.c.do(ctx, request{method: http.MethodPost, svc: c.svc, path: "/v1/customization/configs", body: cfg})
		if err == nil {
			return cfg.Name, nil
		}
		if StatusCode(err) != http.StatusConflict {
			return "", fmt.Errorf("create customization config %s/%s: %w", cfg.Namespace, cfg.Name, err)
		}
		var existing map[string]any
		if err := c.c.do(ctx, request{method: http.MethodGet, svc: c.svc,
			path: "/v1/customization/configs/" + url.PathEscape(cfg.Namespace) + "/" + url.PathEscape(cfg.Name),
			out:  &existing}); err != nil {
			return "", fmt.Errorf("read existing customization config %s/%s: %w", cfg.Namespace, cfg.Name, err)
		}
		if configMatches(cfg, existing) {
			return cfg.Name, nil
		}
	}
	return "", fmt.Errorf("create customization config for %s: no free version among %d", model, maxConfigVersions)
}

// configMatches reports whether every field of want is present and equal
// in got (got may carry more fields the service fills in).
func configMatches(want CustomizationConfig, got map[string]any) bool {
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var w map[string]any
	if err := json.Unmarshal(b, &w); err != nil {
		return false
	}
	delete(w, "name")
	delete(w, "namespace")
	if t, ok := got["target"].(map[string]any); ok {
		// The service may expand the target reference into an object.
		ns, _ := t["namespace"].(string)
		name, _ := t["name"].(string)
		got["target"] = ns + "/" + name
	}
	return subset(w, got)
}

func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

// DeleteConfig deletes a config; a missing one is not an error.
func (c *Customizer) DeleteConfig(ctx context.Context, ns, name string) error {
	err := c.c.do(ctx, request{method: http.MethodDelete, svc: c.svc,
		path: "/v1/customization/configs/" + url.PathEscape(ns) + "/" + url.PathEscape(name)})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("delete customization config %s/%s: %w", ns, name, err)
	}
	return nil
}

// CreateJob sends one create call, without retrying: creating is not
// idempotent, so callers look for the job before trying again.
func (c *Customizer) CreateJob(ctx context.Context, body CreateCustomizationJob) (CustomizationJobInfo, error) {
	var out CustomizationJobInfo
	err := c.c.once(ctx, request{method: http.MethodPost, svc: c.svc, path: "/v1/customization/jobs", body: body, out: &out})
	if err != nil {
		return CustomizationJobInfo{}, fmt.Errorf("create customization job %q: %w", body.Name, err)
	}
	if out.ID == "" {
		return CustomizationJobInfo{}, fmt.Errorf("create customization job %q: answer has no id", body.Name)
	}
	return out, nil
}

// Job returns a job object.
func (c *Customizer) Job(ctx context.Context, id string) (CustomizationJobInfo, error) {
	var out CustomizationJobInfo
	if err := c.c.do(ctx, request{method: http.MethodGet, svc: c.svc,
		path: "/v1/customization/jobs/" + url.PathEscape(id), out: &out}); err != nil {
		return CustomizationJobInfo{}, fmt.Errorf("get customization job %s: %w", id, err)
	}
	return out, nil
}

// JobStatus returns a job's status details.
func (c *Customizer) JobStatus(ctx context.Context, id string) (CustomizationStatus, error) {
	var out CustomizationStatus
	if err := c.c.do(ctx, request{method: http.MethodGet, svc: c.svc,
		path: "/v1/customization/jobs/" + url.PathEscape(id) + "/status", out: &out}); err != nil {
		return CustomizationStatus{}, fmt.Errorf("get customization job %s status: %w", id, err)
	}
	return out, nil
}

// FindJob returns the newest job named name among the newest pages of the
// job list, or false.
func (c *Customizer) FindJob(ctx context.Context, name string, pages int) (CustomizationJobInfo, bool, error) {
	var found CustomizationJobInfo
	ok, err := listPages(ctx, c.c, c.svc, "/v1/customization/jobs", pages, func(raw json.RawMessage) (bool, error) {
		var j CustomizationJobInfo
		if err := json.Unmarshal(raw, &j); err != nil {
			return false, fmt.Errorf("decode customization job: %w", err)
		}
		if j.Name == name {
			found = j
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return CustomizationJobInfo{}, false, fmt.Errorf("find customization job %q: %w", name, err)
	}
	return found, ok, nil
}

// CancelJob cancels a job on the documented path
// POST /v1/customization/jobs/{id}/cancel.
func (c *Customizer) CancelJob(ctx context.Context, id string) error {
	if err := c.c.do(ctx, request{method: http.MethodPost, svc: c.svc,
		path: "/v1/customization/jobs/" + url.PathEscape(id) + "/cancel"}); err != nil {
		return fmt.Errorf("cancel customization job %s: %w", id, err)
	}
	return nil
}

// listPages walks the newest pages of a list endpoint, calling match on
// each entry until it returns true.
func listPages(ctx context.Context, c *caller, svc Service, path string, pages int,
	match func(json.RawMessage) (bool, error),
) (bool, error) {
	for page := 1; page <= pages; page++ {
		var out struct {
			Data       []json.RawMessage `json:"data"`
			Pagination struct {
				TotalPages int `json:"total_pages"`
			} `json:"pagination"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "page_size": {"100"}, "sort": {"-created_at"}}
		if err := c.do(ctx, request{method: http.MethodGet, svc: svc, path: path, query: q, out: &out}); err != nil {
			return false, err
		}
		for _, raw := range out.Data {
			ok, err := match(raw)
			if err != nil || ok {
				return ok, err
			}
		}
		if len(out.Data) == 0 || page >= out.Pagination.TotalPages {
			return false, nil
		}
	}
	return false, nil
}
