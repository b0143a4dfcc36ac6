// Package endpoint is the platform for models that already run behind an
// OpenAI-compatible server the user operates (a NIM deployed by the NIM
// operator, vLLM, Ollama, llama.cpp): deploying a candidate only checks that
// its server answers and lists the model, and shutting it down does nothing.
// It cannot fine-tune; candidates on it must have customization disabled.
package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Platform checks pre-deployed endpoints. It is safe for concurrent use.
type Platform struct {
	// APIKey is sent to every endpoint (from the environment).
	APIKey     string
	HTTPClient *http.Client
}

var _ flywheel.Platform = (*Platform)(nil)

// Name implements flywheel.Platform.
func (p *Platform) Name() string { return "endpoint" }

func (p *Platform) client() *http.Client {
	if p.HTTPClient != nil {
		return p.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Deploy implements flywheel.Platform: the deployment's id is the endpoint
// and model, and nothing is started.
func (p *Platform) Deploy(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	if req.Adapter != nil {
		return flywheel.Deployment{}, flywheel.Permanent(errors.New("pre-deployed endpoints cannot serve customized models"))
	}
	if req.Model.Endpoint == "" {
		return flywheel.Deployment{}, flywheel.Permanent(fmt.Errorf("candidate %s has no endpoint configured (nims[].endpoint)", req.Model.ModelName))
	}
	id := strings.TrimSuffix(strings.TrimSuffix(req.Model.Endpoint, "/"), "/v1") + "|" + req.Model.ModelName
	return p.Deployment(ctx, id)
}

// Deployment implements flywheel.Platform: ready when the server lists the model.
func (p *Platform) Deployment(ctx context.Context, id string) (flywheel.Deployment, error) {
	base, model, ok := strings.Cut(id, "|")
	if !ok {
		return flywheel.Deployment{}, flywheel.Permanent(fmt.Errorf("malformed endpoint deployment id %q", id))
	}
	dep := flywheel.Deployment{ID: id, Status: flywheel.DeploymentPending, Endpoint: flywheel.Endpoint{BaseURL: base, Model: model, APIKey: p.APIKey}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/models", nil)
	if err != nil {
		return dep, flywheel.Permanent(err)
	}
	if p.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.APIKey)
	}
	resp, err := p.client().Do(req)
	if err != nil {
		dep.Message = err.Error()
		return dep, nil // not up yet: keep polling
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		dep.Message = fmt.Sprintf("GET /v1/models: %s", resp.Status)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			dep.Status = flywheel.DeploymentFailed
		}
		return dep, nil
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		dep.Message = "GET /v1/models: not an OpenAI model list"
		return dep, nil
	}
	for _, m := range list.Data {
		if m.ID == model {
			dep.Status = flywheel.DeploymentReady
			return dep, nil
		}
	}
	dep.Message = fmt.Sprintf("model %s is not listed by %s", model, base)
	return dep, nil
}

// Undeploy implements flywheel.Platform: the user's server keeps running.
func (p *Platform) Undeploy(ctx context.Context, id string) error { return nil }

// StartCustomization implements flywheel.Platform: not supported.
func (p *Platform) StartCustomization(ctx context.Context, req flywheel.CustomizationRequest) (flywheel.CustomizationJob, error) {
	return flywheel.CustomizationJob{}, flywheel.Permanent(errors.New("the endpoint platform cannot fine-tune; set customization_enabled: false"))
}

// Customization implements flywheel.Platform.
func (p *Platform) Customization(ctx context.Context, id string) (flywheel.CustomizationJob, error) {
	return flywheel.CustomizationJob{}, fmt.Errorf("customization %s: %w", id, flywheel.ErrNotFound)
}

// CancelCustomization implements flywheel.Platform.
func (p *Platform) CancelCustomization(ctx context.Context, id string) error { return nil }
