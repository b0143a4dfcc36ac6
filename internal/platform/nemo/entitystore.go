package nemo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// EntityStore is a client of the NeMo Entity Store: namespaces, dataset
// registrations and model entities.
type EntityStore struct {
	c   *caller
	svc Service
}

// EntityDataset is a dataset registration of the Entity Store.
type EntityDataset struct {
	ID          string         `json:"id,omitempty"`
	Name        string         `json:"name"`
	Namespace   string         `json:"namespace"`
	Description string         `json:"description"`
	FilesURL    string         `json:"files_url"`
	Project     string         `json:"project,omitempty"`
	Format      string         `json:"format,omitempty"`
	CustomField map[string]any `json:"custom_fields,omitempty"`
}

// Model is a model entity of the Entity Store (the fields the flywheel reads).
type Model struct {
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name"`
	Namespace string          `json:"namespace"`
	BaseModel string          `json:"base_model,omitempty"`
	Artifact  json.RawMessage `json:"artifact,omitempty"`
	PEFT      json.RawMessage `json:"peft,omitempty"`
}

// CreateNamespace creates a namespace; an existing one (409, or the 422 some
// versions answer) is success.
func (e *EntityStore) CreateNamespace(ctx context.Context, ns string) error {
	err := e.c.do(ctx, request{method: http.MethodPost, svc: e.svc, path: "/v1/namespaces",
		body: map[string]string{"id": ns}})
	switch StatusCode(err) {
	case http.StatusConflict, http.StatusUnprocessableEntity:
		return nil
	}
	if err != nil {
		return fmt.Errorf("create entity store namespace %q: %w", ns, err)
	}
	return nil
}

// Dataset returns a dataset registration; a missing one is an error
// matching flywheel.ErrNotFound.
func (e *EntityStore) Dataset(ctx context.Context, ns, name string) (EntityDataset, error) {
	var d EntityDataset
	err := e.c.do(ctx, request{method: http.MethodGet, svc: e.svc,
		path: "/v1/datasets/" + url.PathEscape(ns) + "/" + url.PathEscape(name), out: &d})
	if err != nil {
		return EntityDataset{}, fmt.Errorf("get dataset %s/%s: %w", ns, name, err)
	}
	return d, nil
}

// RegisterDataset creates the registration, or updates it when it exists
// (the blueprint's GET → PATCH | POST).
func (e *EntityStore) RegisterDataset(ctx context.Context, d EntityDataset) (EntityDataset, error) {
	_, err := e.Dataset(ctx, d.Namespace, d.Name)
	var out EntityDataset
	switch {
	case err == nil:
		err = e.c.do(ctx, request{method: http.MethodPatch, svc: e.svc,
			path: "/v1/datasets/" + url.PathEscape(d.Namespace) + "/" + url.PathEscape(d.Name), body: d, out: &out})
	case ignoreNotFound(err) == nil:
		err = e.c.do(ctx, request{method: http.MethodPost, svc: e.svc, path: "/v1/datasets", body: d, out: &out})
		if StatusCode(err) == http.StatusConflict {
			// Registered meanwhile by a retried request: update it instead.
			err = e.c.do(ctx, request{method: http.MethodPatch, svc: e.svc,
				path: "/v1/datasets/" + url.PathEscape(d.Namespace) + "/" + url.PathEscape(d.Name), body: d, out: &out})
		}
	}
	if err != nil {
		return EntityDataset{}, fmt.Errorf("register dataset %s/%s: %w", d.Namespace, d.Name, err)
	}
	return out, nil
}

// DeleteDataset removes a registration; a missing one is not an error.
func (e *EntityStore) DeleteDataset(ctx context.Context, ns, name string) error {
	err := e.c.do(ctx, request{method: http.MethodDelete, svc: e.svc,
		path: "/v1/datasets/" + url.PathEscape(ns) + "/" + url.PathEscape(name)})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("unregister dataset %s/%s: %w", ns, name, err)
	}
	return nil
}

// Model returns a model entity by its full id "ns/name[@rev]".
func (e *EntityStore) Model(ctx context.Context, id string) (Model, error) {
	var m Model
	err := e.c.do(ctx, request{method: http.MethodGet, svc: e.svc, path: "/v1/models/" + pathEscape(id), out: &m})
	if err != nil {
		return Model{}, fmt.Errorf("get model %s: %w", id, err)
	}
	return m, nil
}

// DeleteModel deletes a model entity by its full id "ns/name[@rev]"; a
// missing one is not an error.
func (e *EntityStore) DeleteModel(ctx context.Context, id string) error {
	err := e.c.do(ctx, request{method: http.MethodDelete, svc: e.svc, path: "/v1/models/" + pathEscape(id)})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("delete model %s: %w", id, err)
	}
	return nil
}
