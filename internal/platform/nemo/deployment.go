package nemo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DeploymentManager is a client of NeMo Deployment Management (DMS).
type DeploymentManager struct {
	c   *caller
	svc Service
}

// NIMDeployment is the nim_deployment part of a deployment config.
type NIMDeployment struct {
	ImageName      string            `json:"image_name"`
	ImageTag       string            `json:"image_tag"`
	PVCSize        string            `json:"pvc_size,omitempty"`
	GPU            int               `json:"gpu"`
	AdditionalEnvs map[string]string `json:"additional_envs,omitempty"`
}

// DeploymentConfig is the config of a model deployment.
type DeploymentConfig struct {
	Model         string         `json:"model"`
	NIMDeployment *NIMDeployment `json:"nim_deployment,omitempty"`
}

// CreateDeployment is the body of a create call.
type CreateDeployment struct {
	Name      string           `json:"name"`
	Namespace string           `json:"namespace"`
	Config    DeploymentConfig `json:"config"`
}

// ModelDeployment is DMS's view of a deployment.
type ModelDeployment struct {
	Name          string `json:"name"`
	Namespace     string `json:"namespace"`
	URL           string `json:"url,omitempty"`
	Deployed      bool   `json:"deployed"`
	StatusDetails struct {
		Status      string `json:"status"`
		Description string `json:"description,omitempty"`
	} `json:"status_details"`
	// Config is either an object or a reference "ns/name".
	Config json.RawMessage `json:"config,omitempty"`
}

// Model returns the model id the deployment serves, or "".
func (m ModelDeployment) Model() string {
	var cfg DeploymentConfig
	if json.Unmarshal(m.Config, &cfg) == nil {
		return cfg.Model
	}
	return ""
}

// alreadyExists matches DMS's answer to a duplicate create (a 500 whose body
// says so, or a 409).
func alreadyExists(err error) bool {
	var he *HTTPError
	if !errors.As(err, &he) {
		return false
	}
	return he.StatusCode == http.StatusConflict ||
		strings.Contains(strings.ToLower(he.Body), "already exists")
}

func deploymentPath(ns, name string) string {
	return "/v1/deployment/model-deployments/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}

// Create creates a deployment. A duplicate ("model deployment already
// exists", which DMS answers with a 500) is success. Transient failures are
// retried only after checking that the deployment was not created meanwhile.
func (d *DeploymentManager) Create(ctx context.Context, body CreateDeployment) error {
	err := d.c.withRetry(ctx, "create deployment", func(ctx context.Context) error {
		err := d.c.once(ctx, request{method: http.MethodPost, svc: d.svc, path: "/v1/deployment/model-deployments", body: body})
		if alreadyExists(err) {
			return nil
		}
		if IsTransient(err) {
			if _, gerr := d.Get(ctx, body.Namespace, body.Name); gerr == nil {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create deployment %s/%s: %w", body.Namespace, body.Name, err)
	}
	return nil
}

// Get returns a deployment; a missing one is an error matching
// flywheel.ErrNotFound.
func (d *DeploymentManager) Get(ctx context.Context, ns, name string) (ModelDeployment, error) {
	var m ModelDeployment
	if err := d.c.do(ctx, request{method: http.MethodGet, svc: d.svc, path: deploymentPath(ns, name), out: &m}); err != nil {
		return ModelDeployment{}, fmt.Errorf("get deployment %s/%s: %w", ns, name, err)
	}
	return m, nil
}

// Delete deletes a deployment; a missing one is not an error.
func (d *DeploymentManager) Delete(ctx context.Context, ns, name string) error {
	err := d.c.do(ctx, request{method: http.MethodDelete, svc: d.svc, path: deploymentPath(ns, name)})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("delete deployment %s/%s: %w", ns, name, err)
	}
	return nil
}

// NIMProxy is a client of the NIM proxy's model list. Chat completions and
// embeddings go through the shared OpenAI-compatible client.
type NIMProxy struct {
	c   *caller
	svc Service
}

// Models returns the ids the proxy serves.
func (n *NIMProxy) Models(ctx context.Context) ([]string, error) {
	var out struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := n.c.do(ctx, request{method: http.MethodGet, svc: n.svc, path: "/v1/models", out: &out}); err != nil {
		return nil, fmt.Errorf("list NIM proxy models: %w", err)
	}
	ids := make([]string, 0, len(out.Data))
	for _, m := range out.Data {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// Serves reports whether the proxy lists model id.
func (n *NIMProxy) Serves(ctx context.Context, id string) (bool, error) {
	ids, err := n.Models(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range ids {
		if m == id {
			return true, nil
		}
	}
	return false, nil
}
