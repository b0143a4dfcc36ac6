package nemo

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults of the platform.
const (
	// NamespaceDefault is the blueprint's nmp_namespace.
	NamespaceDefault = "dfwbp"
	// RegistryBaseDefault prefixes NIM image names.
	RegistryBaseDefault = "nvcr.io/nim"
	// EvalPollIntervalDefault is how often Evaluate polls a job.
	EvalPollIntervalDefault = 5 * time.Second
	// EvalStallTimeoutDefault is how long an evaluation may go without
	// progress before Evaluate gives up on it.
	EvalStallTimeoutDefault = time.Hour
	// ListPagesDefault bounds how many pages of a job list are searched for
	// a job created by an earlier attempt.
	ListPagesDefault = 3
	// PlatformName is the platform's name in the ledger.
	PlatformName = "nemo"

	customFieldEvaluationID = "flywheel_evaluation_id"
	maxDeploymentName       = 63
	cancelTimeout           = 15 * time.Second
)

// Deployment id prefixes of deployments that DMS does not manage.
const (
	// IDPrefixCustomized marks a customized model served by the NIM proxy.
	IDPrefixCustomized = "customized:"
	// IDPrefixExternal marks a NIM deployed by someone else (NIM operator).
	IDPrefixExternal = "external:"
)

// Config configures the NeMo platform. NeMo, NIM and DataStore are the
// three URLs of the blueprint's nmp_config (nemo_base_url, nim_base_url,
// datastore_base_url); the per-service fields override NeMo for split or
// gatewayed installs.
type Config struct {
	NeMo      Service
	NIM       Service
	DataStore Service
	// EntityStore, Customizer, Evaluator and Deployment default to NeMo
	// (the BaseURL and, when empty, the Token).
	EntityStore Service
	Customizer  Service
	Evaluator   Service
	Deployment  Service

	// Namespace is nmp_namespace (default "dfwbp").
	Namespace string
	// ExternalDeployments is for NIMs deployed by someone else (for example
	// the NIM operator): Deploy and Undeploy call nothing remote, and a
	// deployment is ready once the NIM proxy lists its model.
	ExternalDeployments bool
	// SharedDeployments names a deployment after its model only, as the
	// blueprint does, so concurrent runs share one NIM. By default the
	// name also carries a hash of the deployment key.
	SharedDeployments bool
	// RegistryBase prefixes image names (default "nvcr.io/nim").
	RegistryBase string
	// AdditionalEnvs are set on every NIM (default: the blueprint's
	// NIM_GUIDED_DECODING_BACKEND=outlines).
	AdditionalEnvs map[string]string

	// HTTPClient sends every request (default: a client with a timeout).
	HTTPClient *http.Client
	// Logger receives debug logs of retries (default: discarded).
	Logger *slog.Logger
	// Retry controls retries of transient failures.
	Retry RetryPolicy
	// AttemptTimeout bounds one HTTP attempt (default 30 s).
	AttemptTimeout time.Duration
	// EvalPollInterval and EvalStallTimeout drive Evaluate.
	EvalPollInterval time.Duration
	EvalStallTimeout time.Duration
	// ListPages bounds job-list searches (default 3 pages of 100).
	ListPages int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func orService(s, def Service) Service {
	s.BaseURL = cmp.Or(s.BaseURL, def.BaseURL)
	s.Token = cmp.Or(s.Token, def.Token)
	return s
}

// TokensFromEnv fills the empty tokens of c from the environment through
// getenv (pass os.Getenv), with the config package's variable names:
// NEMO_API_KEY for the NeMo services, NIM_API_KEY for the NIM proxy,
// HF_TOKEN then DATASTORE_API_KEY for the Data Store, and NVIDIA_API_KEY
// as the fallback of each.
func (c Config) TokensFromEnv(getenv func(string) string) Config {
	c.NeMo.Token = cmp.Or(c.NeMo.Token, getenv("NEMO_API_KEY"), getenv("NVIDIA_API_KEY"))
	c.NIM.Token = cmp.Or(c.NIM.Token, getenv("NIM_API_KEY"), getenv("NVIDIA_API_KEY"))
	c.DataStore.Token = cmp.Or(c.DataStore.Token, getenv("HF_TOKEN"), getenv("DATASTORE_API_KEY"), getenv("NVIDIA_API_KEY"))
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.NeMo.BaseURL == "" && (c.EntityStore.BaseURL == "" || c.Customizer.BaseURL == "" ||
		c.Evaluator.BaseURL == "" || c.Deployment.BaseURL == "") {
		errs = append(errs, errors.New("nmp_config.nemo_base_url is required"))
	}
	if c.NIM.BaseURL == "" {
		errs = append(errs, errors.New("nmp_config.nim_base_url is required"))
	}
	if c.DataStore.BaseURL == "" {
		errs = append(errs, errors.New("nmp_config.datastore_base_url is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return flywheel.Errorf(flywheel.EINVALID, "nemo platform: %v", err)
	}
	return nil
}

// Platform is the NeMo microservices platform. It implements
// flywheel.Platform, flywheel.DatasetPublisher, flywheel.ResourceReleaser
// and flywheel.Evaluator (the NeMo Evaluator parity path). It is safe for
// concurrent use.
type Platform struct {
	// Clients of the six services, for callers that need more than the
	// platform interfaces.
	DMS        *DeploymentManager
	Customizer *Customizer
	Eval       *EvaluatorClient
	DataStore  *DataStore
	Entities   *EntityStore
	Proxy      *NIMProxy

	cfg    Config
	caller *caller
	logger *slog.Logger
	now    func() time.Time

	mu sync.Mutex
	// keyLocks serialise calls with the same idempotency key.
	keyLocks map[string]*keyLock
	// deployments maps deployment keys to ids; models maps deployment ids
	// to model ids.
	deployments map[string]string
	models      map[string]string
	// customizations maps customization keys to job ids; outputs maps job
	// ids to output model ids.
	customizations map[string]string
	outputs        map[string]string
	namespaces     map[string]bool
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

var (
	_ flywheel.Platform         = (*Platform)(nil)
	_ flywheel.DatasetPublisher = (*Platform)(nil)
	_ flywheel.ResourceReleaser = (*Platform)(nil)
	_ flywheel.Evaluator        = (*Platform)(nil)
)

// New returns a NeMo platform. It fails when a required URL is missing.
func New(cfg Config) (*Platform, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.EntityStore = orService(cfg.EntityStore, cfg.NeMo)
	cfg.Customizer = orService(cfg.Customizer, cfg.NeMo)
	cfg.Evaluator = orService(cfg.Evaluator, cfg.NeMo)
	cfg.Deployment = orService(cfg.Deployment, cfg.NeMo)
	cfg.Namespace = cmp.Or(cfg.Namespace, NamespaceDefault)
	cfg.RegistryBase = cmp.Or(cfg.RegistryBase, RegistryBaseDefault)
	if cfg.AdditionalEnvs == nil {
		cfg.AdditionalEnvs = map[string]string{"NIM_GUIDED_DECODING_BACKEND": "outlines"}
	}
	cfg.EvalPollInterval = cmp.Or(cfg.EvalPollInterval, EvalPollIntervalDefault)
	cfg.EvalStallTimeout = cmp.Or(cfg.EvalStallTimeout, EvalStallTimeoutDefault)
	cfg.ListPages = cmp.Or(cfg.ListPages, ListPagesDefault)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With(slog.String("component", "nemo"))
	c := newCaller(cfg.HTTPClient, logger, cfg.Retry, cfg.AttemptTimeout)
	return &Platform{
		DMS:            &DeploymentManager{c: c, svc: cfg.Deployment},
		Customizer:     &Customizer{c: c, svc: cfg.Customizer},
		Eval:           &EvaluatorClient{c: c, svc: cfg.Evaluator},
		DataStore:      &DataStore{c: c, svc: cfg.DataStore},
		Entities:       &EntityStore{c: c, svc: cfg.EntityStore},
		Proxy:          &NIMProxy{c: c, svc: cfg.NIM},
		cfg:            cfg,
		caller:         c,
		logger:         logger,
		now:            cfg.Now,
		keyLocks:       map[string]*keyLock{},
		deployments:    map[string]string{},
		models:         map[string]string{},
		customizations: map[string]string{},
		outputs:        map[string]string{},
		namespaces:     map[string]bool{},
	}, nil
}

// Name returns "nemo".
func (p *Platform) Name() string { return PlatformName }

// Namespace returns the namespace resources are created in.
func (p *Platform) Namespace() string { return p.cfg.Namespace }

// lockKey serialises work on one idempotency key and returns the unlock.
func (p *Platform) lockKey(key string) func() {
	p.mu.Lock()
	l := p.keyLocks[key]
	if l == nil {
		l = &keyLock{}
		p.keyLocks[key] = l
	}
	l.refs++
	p.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		p.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(p.keyLocks, key)
		}
		p.mu.Unlock()
	}
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// DeploymentName returns the DMS name of a deployment of model: the model
// id with "/" turned into "-", plus a hash of key unless shared.
func DeploymentName(model, key string, shared bool) string {
	name := strings.ToLower(strings.ReplaceAll(model, "/", "-"))
	name = strings.NewReplacer("@", "-", "_", "-", ":", "-").Replace(name)
	if shared || key == "" {
		if len(name) > maxDeploymentName {
			name = name[:maxDeploymentName]
		}
		return name
	}
	suffix := "-" + shortHash(key)
	if len(name)+len(suffix) > maxDeploymentName {
		name = name[:maxDeploymentName-len(suffix)]
	}
	return strings.TrimRight(name, "-") + suffix
}

func (p *Platform) endpoint(model string) flywheel.Endpoint {
	return flywheel.Endpoint{BaseURL: strings.TrimRight(p.cfg.NIM.BaseURL, "/"), Model: model, APIKey: p.cfg.NIM.Token}
}

type deploymentData struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Model     string `json:"model"`
	Mode      string `json:"mode"`
}

func (p *Platform) invalid(format string, args ...any) error {
	return flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, format, args...))
}

// Deploy creates a NIM deployment in DMS, or finds the one of req.Key. With
// req.Adapter set it returns a pseudo-deployment of the customized model
// served by the NIM proxy; in ExternalDeployments mode it creates nothing.
// It does not wait for readiness.
func (p *Platform) Deploy(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	if req.Adapter != nil {
		if req.Adapter.OutputModel == "" {
			return flywheel.Deployment{}, p.invalid("deploy customized %s: customization %s has no output model",
				req.Model.ModelName, req.Adapter.ID)
		}
		return p.Deployment(ctx, IDPrefixCustomized+req.Adapter.OutputModel)
	}
	model := req.Model.ModelName
	if model == "" {
		return flywheel.Deployment{}, p.invalid("deploy candidate %s: model_name is empty", req.NIMID)
	}
	if p.cfg.ExternalDeployments {
		return p.Deployment(ctx, IDPrefixExternal+model)
	}
	if req.Model.Tag == "" {
		return flywheel.Deployment{}, p.invalid("deploy %s: nims[].tag is required to deploy a NIM through DMS", model)
	}
	unlock := p.lockKey("deploy:" + req.Key)
	defer unlock()

	ns := p.cfg.Namespace
	name := DeploymentName(model, req.Key, p.cfg.SharedDeployments)
	id := ns + "/" + name
	p.mu.Lock()
	_, seen := p.deployments[req.Key]
	p.models[id] = model
	p.mu.Unlock()
	if !seen {
		_, err := p.DMS.Get(ctx, ns, name)
		switch {
		case errors.Is(err, flywheel.ErrNotFound):
			body := CreateDeployment{Name: name, Namespace: ns, Config: DeploymentConfig{
				Model: model,
				NIMDeployment: &NIMDeployment{
					ImageName:      cmp.Or(req.Model.RegistryBase, p.cfg.RegistryBase) + "/" + model,
					ImageTag:       req.Model.Tag,
					PVCSize:        req.Model.PVCSize,
					GPU:            max(req.Model.GPUs, 1),
					AdditionalEnvs: p.cfg.AdditionalEnvs,
				},
			}}
			if err := p.DMS.Create(ctx, body); err != nil {
				return flywheel.Deployment{}, fmt.Errorf("deploy %s: %w", model, err)
			}
			p.logger.InfoContext(ctx, "Deployment created", slog.String("deployment", id), slog.String("model", model))
		case err != nil:
			return flywheel.Deployment{}, fmt.Errorf("deploy %s: %w", model, err)
		}
		p.mu.Lock()
		p.deployments[req.Key] = id
		p.mu.Unlock()
	}
	return p.Deployment(ctx, id)
}

// Deployment returns the state of a deployment. A DMS deployment is Ready
// only when DMS says "ready" and the NIM proxy lists its model; "failed" is
// reported at once.
func (p *Platform) Deployment(ctx context.Context, id string) (flywheel.Deployment, error) {
	for _, prefix := range []string{IDPrefixCustomized, IDPrefixExternal} {
		if model, ok := strings.CutPrefix(id, prefix); ok {
			return p.proxyDeployment(ctx, id, model, strings.TrimSuffix(prefix, ":"))
		}
	}
	ns, name := splitRef(id, p.cfg.Namespace)
	md, err := p.DMS.Get(ctx, ns, name)
	if err != nil {
		return flywheel.Deployment{}, err
	}
	p.mu.Lock()
	model := cmp.Or(md.Model(), p.models[id])
	p.mu.Unlock()
	data, _ := json.Marshal(deploymentData{Namespace: ns, Name: name, Model: model, Mode: "dms"})
	d := flywheel.Deployment{ID: id, Endpoint: p.endpoint(model), Data: data, Message: md.StatusDetails.Description}
	switch s := md.StatusDetails.Status; s {
	case "ready":
		ok, err := p.Proxy.Serves(ctx, model)
		if err != nil {
			return flywheel.Deployment{}, err
		}
		if ok {
			d.Status = flywheel.DeploymentReady
		} else {
			d.Status = flywheel.DeploymentRunning
			d.Message = fmt.Sprintf("deployment is ready; waiting for the NIM proxy to list %s", model)
		}
	case "created", "pending", "running", "completed", "failed":
		d.Status = flywheel.DeploymentStatus(s)
	case "cancelled", "cancelling":
		d.Status = flywheel.DeploymentCancelled
	default:
		d.Status = flywheel.DeploymentUnknown
	}
	return d, nil
}

func (p *Platform) proxyDeployment(ctx context.Context, id, model, mode string) (flywheel.Deployment, error) {
	ok, err := p.Proxy.Serves(ctx, model)
	if err != nil {
		return flywheel.Deployment{}, err
	}
	data, _ := json.Marshal(deploymentData{Model: model, Mode: mode})
	d := flywheel.Deployment{ID: id, Status: flywheel.DeploymentReady, Endpoint: p.endpoint(model), Data: data}
	if !ok {
		d.Status = flywheel.DeploymentPending
		d.Message = fmt.Sprintf("waiting for the NIM proxy to list %s", model)
	}
	return d, nil
}

// Undeploy deletes a DMS deployment; pseudo-deployments of customized or
// external models need nothing remote. A missing deployment is not an error.
func (p *Platform) Undeploy(ctx context.Context, id string) error {
	if strings.HasPrefix(id, IDPrefixCustomized) || strings.HasPrefix(id, IDPrefixExternal) {
		return nil
	}
	ns, name := splitRef(id, p.cfg.Namespace)
	if err := p.DMS.Delete(ctx, ns, name); err != nil {
		return fmt.Errorf("undeploy %s: %w", id, err)
	}
	return nil
}

// CustomizationJobName returns the deterministic name of the job of key.
func CustomizationJobName(workloadID, model, key string) string {
	return "customization-" + workloadID + "-" + model + "-" + shortHash(key)
}

// StartCustomization creates (or reuses) the customization config and
// starts the job, or finds the job of req.Key: first in memory, then by its
// deterministic name in the Customizer's job list, so a retried create or a
// re-run after a crash never starts a second job.
func (p *Platform) StartCustomization(ctx context.Context, req flywheel.CustomizationRequest) (flywheel.CustomizationJob, error) {
	cc := req.Model.CustomizerConfigs
	switch {
	case cc == nil:
		return flywheel.CustomizationJob{}, p.invalid("customize %s: nims[].customizer_configs is required", req.Model.ModelName)
	case cc.Target == "":
		return flywheel.CustomizationJob{}, p.invalid("customize %s: customizer_configs.target is required", req.Model.ModelName)
	case req.TrainDataset.Name == "":
		return flywheel.CustomizationJob{}, p.invalid("customize %s: the training dataset has no name", req.Model.ModelName)
	case req.Model.ModelName == "":
		return flywheel.CustomizationJob{}, p.invalid("customize candidate %s: model_name is empty", req.NIMID)
	}
	unlock := p.lockKey("customize:" + req.Key)
	defer unlock()
	p.mu.Lock()
	id, seen := p.customizations[req.Key]
	p.mu.Unlock()
	if seen {
		return p.Customization(ctx, id)
	}
	ns := cmp.Or(req.Namespace, p.cfg.Namespace)
	name := CustomizationJobName(req.WorkloadID, req.Model.ModelName, req.Key)

	job, found, err := p.Customizer.FindJob(ctx, name, p.cfg.ListPages)
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	if !found {
		cfgName, err := p.Customizer.EnsureConfig(ctx, req.Model.ModelName, customizationConfig(ns, req))
		if err != nil {
			return flywheel.CustomizationJob{}, err
		}
		output := cmp.Or(req.OutputName, "customized-"+strings.ReplaceAll(req.Model.ModelName, "/", "-"))
		body := CreateCustomizationJob{
			Name:        name,
			OutputModel: ns + "/" + output,
			Config:      ns + "/" + cfgName,
			Dataset:     DatasetRef{Name: req.TrainDataset.Name, Namespace: ns},
			Hyperparameters: Hyperparameters{
				TrainingType:   req.Training.TrainingType,
				FinetuningType: req.Training.FinetuningType,
				Epochs:         req.Training.Epochs,
				BatchSize:      req.Training.BatchSize,
				LearningRate:   req.Training.LearningRate,
			},
		}
		if req.Training.FinetuningType == "lora" || req.LoRA.AdapterDim > 0 {
			body.Hyperparameters.LoRA = &LoRAParams{AdapterDim: req.LoRA.AdapterDim, AdapterDropout: req.LoRA.AdapterDropout}
		}
		job, err = p.createCustomizationJob(ctx, body)
		if err != nil {
			return flywheel.CustomizationJob{}, err
		}
		p.logger.InfoContext(ctx, "Customization job created", slog.String("job_id", job.ID),
			slog.String("output_model", job.OutputModel))
	}
	output := job.OutputModel
	if output != "" && !strings.Contains(output, "@") {
		output += "@" + job.ID
	}
	p.mu.Lock()
	p.customizations[req.Key] = job.ID
	if output != "" {
		p.outputs[job.ID] = output
	}
	p.mu.Unlock()
	return p.Customization(ctx, job.ID)
}

// createCustomizationJob creates a job; before every retry it looks for
// the job by name, in case the failed attempt did create it.
func (p *Platform) createCustomizationJob(ctx context.Context, body CreateCustomizationJob) (CustomizationJobInfo, error) {
	var job CustomizationJobInfo
	err := p.caller.withRetry(ctx, "create customization job", func(ctx context.Context) error {
		found, ok, err := p.Customizer.FindJob(ctx, body.Name, p.cfg.ListPages)
		if err != nil {
			return err
		}
		if ok {
			job = found
			return nil
		}
		job, err = p.Customizer.CreateJob(ctx, body)
		return err
	})
	return job, err
}

func customizationConfig(ns string, req flywheel.CustomizationRequest) CustomizationConfig {
	cc := req.Model.CustomizerConfigs
	return CustomizationConfig{
		Namespace: ns,
		Target:    cc.Target,
		TrainingOptions: []TrainingOption{{
			TrainingType:        cmp.Or(req.Training.TrainingType, "sft"),
			FinetuningType:      cmp.Or(req.Training.FinetuningType, "lora"),
			NumGPUs:             max(cc.GPUs, 1),
			NumNodes:            max(cc.NumNodes, 1),
			TensorParallelSize:  max(cc.TensorParallelSize, 1),
			DataParallelSize:    max(cc.DataParallelSize, 1),
			UseSequenceParallel: cc.UseSequenceParallel,
			MicroBatchSize:      max(cc.MicroBatchSize, 1),
		}},
		TrainingPrecision: cmp.Or(cc.TrainingPrecision, "bf16-mixed"),
		MaxSeqLength:      cmp.Or(cc.MaxSeqLength, 4096),
	}
}

type customizationData struct {
	TrainLoss     *float64   `json:"train_loss,omitempty"`
	ValLoss       *float64   `json:"val_loss,omitempty"`
	ValLosses     []float64  `json:"val_losses,omitempty"`
	BestEpoch     *int       `json:"best_epoch,omitempty"`
	StepsPerEpoch int        `json:"steps_per_epoch,omitempty"`
	ElapsedTime   float64    `json:"elapsed_time,omitempty"`
	LastLog       *StatusLog `json:"last_status_log,omitempty"`
	RemoteStatus  string     `json:"remote_status"`
}

// Customization returns the state of a job: status, progress, epochs,
// steps and losses as they arrive. A job waiting for GPUs says
// "NotEnoughResources: …" in Message; a failed one carries the last status
// log's detail.
func (p *Platform) Customization(ctx context.Context, id string) (flywheel.CustomizationJob, error) {
	st, err := p.Customizer.JobStatus(ctx, id)
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	p.mu.Lock()
	output, ok := p.outputs[id]
	p.mu.Unlock()
	if !ok {
		info, err := p.Customizer.Job(ctx, id)
		if err != nil {
			return flywheel.CustomizationJob{}, err
		}
		output = info.OutputModel
		if output != "" && !strings.Contains(output, "@") {
			output += "@" + id
		}
		p.mu.Lock()
		p.outputs[id] = output
		p.mu.Unlock()
	}
	job := flywheel.CustomizationJob{
		ID:              id,
		Progress:        st.PercentageDone,
		EpochsCompleted: st.EpochsCompleted,
		StepsCompleted:  st.StepsCompleted,
		OutputModel:     output,
		URI:             strings.TrimRight(p.cfg.Customizer.BaseURL, "/") + "/v1/customization/jobs/" + id,
	}
	data := customizationData{TrainLoss: st.TrainLoss, ValLoss: st.ValLoss, BestEpoch: st.BestEpoch,
		StepsPerEpoch: st.StepsPerEpoch, ElapsedTime: st.ElapsedTime, RemoteStatus: st.Status}
	if st.Metrics != nil {
		for _, m := range st.Metrics.Metrics["train_loss"] {
			job.Losses = append(job.Losses, m.Value)
		}
		for _, m := range st.Metrics.Metrics["val_loss"] {
			data.ValLosses = append(data.ValLosses, m.Value)
		}
	}
	if len(job.Losses) == 0 && st.TrainLoss != nil {
		job.Losses = []float64{*st.TrainLoss}
	}
	last := st.LastLog()
	if last.Message != "" {
		data.LastLog = &last
	}
	switch st.Status {
	case "created":
		job.Status = flywheel.JobCreated
	case "pending":
		job.Status = flywheel.JobPending
	case "running":
		job.Status = flywheel.JobRunning
	case "completed":
		job.Status = flywheel.JobCompleted
		job.Progress = 100
	case "failed":
		job.Status = flywheel.JobFailed
		job.Message = cmp.Or(last.Detail, last.Message, "customization failed; no details available")
	case "cancelled", "cancelling":
		job.Status = flywheel.JobCancelled
	default:
		job.Status = flywheel.JobPending
		job.Message = fmt.Sprintf("unknown remote status %q", st.Status)
	}
	if last.Message == MessageNotEnoughResources && (job.Status == flywheel.JobPending || job.Status == flywheel.JobCreated) {
		job.Message = MessageNotEnoughResources + ": " + cmp.Or(last.Detail, "the cluster lacks the GPUs the job asks for")
	}
	job.Data, _ = json.Marshal(data)
	return job, nil
}

// CancelCustomization cancels a job on the documented path. A missing or
// finished job is not an error.
func (p *Platform) CancelCustomization(ctx context.Context, id string) error {
	err := p.Customizer.CancelJob(ctx, id)
	if err == nil || errors.Is(err, flywheel.ErrNotFound) {
		return nil
	}
	if StatusCode(err) >= 400 && StatusCode(err) < 500 {
		// The service may refuse to cancel a finished job.
		st, serr := p.Customizer.JobStatus(ctx, id)
		if errors.Is(serr, flywheel.ErrNotFound) {
			return nil
		}
		if serr == nil {
			switch st.Status {
			case "completed", "failed", "cancelled", "cancelling":
				return nil
			}
		}
	}
	return err
}

// DatasetURI returns the hf:// URI of a dataset repo.
func DatasetURI(ns, name string) string { return "hf://datasets/" + ns + "/" + name }

func (p *Platform) ensureNamespace(ctx context.Context, ns string) error {
	p.mu.Lock()
	done := p.namespaces[ns]
	p.mu.Unlock()
	if done {
		return nil
	}
	if err := p.Entities.CreateNamespace(ctx, ns); err != nil {
		return err
	}
	if err := p.DataStore.CreateNamespace(ctx, ns); err != nil {
		return err
	}
	p.mu.Lock()
	p.namespaces[ns] = true
	p.mu.Unlock()
	return nil
}

// readDatasetFiles returns the files under dir with slash paths relative
// to it (eval_data.jsonl, training/train_data.jsonl, …). A file path is
// uploaded under its base name.
func readDatasetFiles(dir string) ([]RepoFile, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read dataset files: %w", err)
	}
	if !info.IsDir() {
		b, err := os.ReadFile(dir)
		if err != nil {
			return nil, fmt.Errorf("read dataset file: %w", err)
		}
		return []RepoFile{{Path: filepath.Base(dir), Content: b}}, nil
	}
	var files []RepoFile
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, RepoFile{Path: filepath.ToSlash(rel), Content: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dataset files under %s: %w", dir, err)
	}
	return files, nil
}

// PublishDataset uploads the files under ds.Path to the Data Store repo
// {namespace}/{ds.Name} in one commit, registers the dataset in the Entity
// Store, verifies the registration and returns ds with NMPURI set.
func (p *Platform) PublishDataset(ctx context.Context, namespace string, ds flywheel.Dataset) (flywheel.Dataset, error) {
	ns := cmp.Or(namespace, p.cfg.Namespace)
	if ds.Name == "" {
		return ds, p.invalid("publish dataset: the dataset has no name")
	}
	if ds.Path == "" {
		return ds, p.invalid("publish dataset %s: no local path", ds.Name)
	}
	files, err := readDatasetFiles(ds.Path)
	if err != nil {
		return ds, flywheel.Permanent(fmt.Errorf("publish dataset %s: %w", ds.Name, err))
	}
	if len(files) == 0 {
		return ds, p.invalid("publish dataset %s: no files under its directory", ds.Name)
	}
	if err := p.ensureNamespace(ctx, ns); err != nil {
		return ds, fmt.Errorf("publish dataset %s: %w", ds.Name, err)
	}
	if err := p.DataStore.CreateRepo(ctx, ns, ds.Name); err != nil {
		return ds, fmt.Errorf("publish dataset %s: %w", ds.Name, err)
	}
	if _, err := p.DataStore.Upload(ctx, ns, ds.Name, "Upload "+ds.Name, files); err != nil {
		return ds, fmt.Errorf("publish dataset %s: %w", ds.Name, err)
	}
	uri := DatasetURI(ns, ds.Name)
	if _, err := p.Entities.RegisterDataset(ctx, EntityDataset{
		Name: ds.Name, Namespace: ns, Description: string(ds.Type), FilesURL: uri, Project: "flywheel",
	}); err != nil {
		return ds, fmt.Errorf("publish dataset %s: %w", ds.Name, err)
	}
	got, err := p.Entities.Dataset(ctx, ns, ds.Name)
	if err != nil {
		return ds, fmt.Errorf("publish dataset %s: verify: %w", ds.Name, err)
	}
	if got.FilesURL != uri {
		return ds, fmt.Errorf("publish dataset %s: entity store has files_url %q, want %q", ds.Name, got.FilesURL, uri)
	}
	ds.NMPURI = &uri
	return ds, nil
}

// DeleteDataset deletes the dataset's repo and its registration; missing
// ones are not an error.
func (p *Platform) DeleteDataset(ctx context.Context, namespace, name string) error {
	ns := cmp.Or(namespace, p.cfg.Namespace)
	return errors.Join(p.DataStore.DeleteRepo(ctx, ns, name), p.Entities.DeleteDataset(ctx, ns, name))
}

// Release releases one ledger resource: an evaluation job is cancelled and
// deleted (found by Key, the evaluation id, when RemoteID is empty), a
// customized model deleted from the Entity Store, a dataset ("ns/name")
// deleted and unregistered, a deployment undeployed, a customization
// cancelled. A resource already gone is not an error.
func (p *Platform) Release(ctx context.Context, r flywheel.Resource) error {
	switch r.Kind {
	case flywheel.ResourceEvaluation:
		id := r.RemoteID
		if id == "" && r.Key != "" {
			job, ok, err := p.Eval.FindJob(ctx, customFieldEvaluationID, r.Key, p.cfg.ListPages)
			if err != nil {
				return fmt.Errorf("release evaluation %s: %w", r.Key, err)
			}
			if !ok {
				return nil
			}
			id = job.ID
		}
		if id == "" {
			return nil
		}
		if err := p.Eval.CancelJob(ctx, id); err != nil && !errors.Is(err, flywheel.ErrPermanent) {
			return fmt.Errorf("release evaluation: %w", err)
		}
		return p.Eval.DeleteJob(ctx, id)
	case flywheel.ResourceModel:
		return p.Entities.DeleteModel(ctx, r.RemoteID)
	case flywheel.ResourceDataset:
		ns, name := splitRef(r.RemoteID, p.cfg.Namespace)
		return p.DeleteDataset(ctx, ns, name)
	case flywheel.ResourceDeployment:
		return p.Undeploy(ctx, r.RemoteID)
	case flywheel.ResourceCustomization:
		return p.CancelCustomization(ctx, r.RemoteID)
	}
	return flywheel.Permanent(fmt.Errorf("release %s resource %q: unknown kind", r.Kind, r.RemoteID))
}
