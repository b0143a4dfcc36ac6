package nemo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DataStore is a client of the NeMo Data Store: its namespaces and its
// Hugging Face Hub-compatible API under /v1/hf (dataset repos only).
type DataStore struct {
	c   *caller
	svc Service
}

// RepoFile is one file to commit to a dataset repo.
type RepoFile struct {
	// Path is the file's path in the repo, with "/" separators.
	Path    string
	Content []byte
}

// PreuploadFile is the Data Store's verdict on one file before a commit.
type PreuploadFile struct {
	Path         string `json:"path"`
	UploadMode   string `json:"uploadMode"`
	ShouldIgnore bool   `json:"shouldIgnore"`
	OID          string `json:"oid,omitempty"`
}

// CommitInfo is the answer to a commit.
type CommitInfo struct {
	CommitURL string `json:"commitUrl"`
	CommitOID string `json:"commitOid"`
}

// RevisionDefault is the branch files are committed to.
const RevisionDefault = "main"

// CreateNamespace creates a Data Store namespace (a form-encoded POST, as
// the blueprint sends it); an existing one is success.
func (d *DataStore) CreateNamespace(ctx context.Context, ns string) error {
	form := url.Values{"namespace": {ns}}
	err := d.c.do(ctx, request{method: http.MethodPost, svc: d.svc, path: "/v1/datastore/namespaces",
		raw: []byte(form.Encode()), contentType: "application/x-www-form-urlencoded"})
	switch StatusCode(err) {
	case http.StatusConflict, http.StatusUnprocessableEntity:
		return nil
	}
	if err != nil {
		return fmt.Errorf("create data store namespace %q: %w", ns, err)
	}
	return nil
}

type repoRef struct {
	Name         string `json:"name"`
	Organization string `json:"organization"`
	Type         string `json:"type"`
	Private      *bool  `json:"private,omitempty"`
}

// CreateRepo creates the dataset repo ns/name; an existing one is success.
func (d *DataStore) CreateRepo(ctx context.Context, ns, name string) error {
	err := d.c.do(ctx, request{method: http.MethodPost, svc: d.svc, path: "/v1/hf/api/repos/create",
		body: repoRef{Name: name, Organization: ns, Type: "dataset"}})
	if StatusCode(err) == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create dataset repo %s/%s: %w", ns, name, err)
	}
	return nil
}

// DeleteRepo deletes the dataset repo ns/name; a missing one is not an error.
func (d *DataStore) DeleteRepo(ctx context.Context, ns, name string) error {
	err := d.c.do(ctx, request{method: http.MethodDelete, svc: d.svc, path: "/v1/hf/api/repos/delete",
		body: repoRef{Name: name, Organization: ns, Type: "dataset"}})
	if err = ignoreNotFound(err); err != nil {
		return fmt.Errorf("delete dataset repo %s/%s: %w", ns, name, err)
	}
	return nil
}

func repoPath(ns, name string) string {
	return "/v1/hf/api/datasets/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}

// Preupload asks how each file must be uploaded ("regular" or "lfs").
func (d *DataStore) Preupload(ctx context.Context, ns, name string, files []RepoFile) ([]PreuploadFile, error) {
	type entry struct {
		Path   string `json:"path"`
		Sample string `json:"sample"`
		Size   int    `json:"size"`
	}
	body := struct {
		Files []entry `json:"files"`
	}{}
	for _, f := range files {
		sample := f.Content
		if len(sample) > 512 {
			sample = sample[:512]
		}
		body.Files = append(body.Files, entry{Path: f.Path, Sample: base64.StdEncoding.EncodeToString(sample), Size: len(f.Content)})
	}
	var out struct {
		Files []PreuploadFile `json:"files"`
	}
	err := d.c.do(ctx, request{method: http.MethodPost, svc: d.svc,
		path: repoPath(ns, name) + "/preupload/" + RevisionDefault, body: body, out: &out})
	if err != nil {
		return nil, fmt.Errorf("preupload to %s/%s: %w", ns, name, err)
	}
	return out.Files, nil
}

// Commit writes files to the repo's main branch in one NDJSON commit,
// every file base64-encoded inline.
func (d *DataStore) Commit(ctx context.Context, ns, name, summary string, files []RepoFile) (CommitInfo, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	type value struct {
		Summary     string `json:"summary,omitempty"`
		Description string `json:"description"`
	}
	if err := enc.Encode(map[string]any{"key": "header", "value": value{Summary: summary}}); err != nil {
		return CommitInfo{}, fmt.Errorf("encode commit header: %w", err)
	}
	for _, f := range files {
		line := map[string]any{"key": "file", "value": map[string]string{
			"content":  base64.StdEncoding.EncodeToString(f.Content),
			"path":     f.Path,
			"encoding": "base64",
		}}
		if err := enc.Encode(line); err != nil {
			return CommitInfo{}, fmt.Errorf("encode commit line for %s: %w", f.Path, err)
		}
	}
	var out CommitInfo
	err := d.c.do(ctx, request{method: http.MethodPost, svc: d.svc,
		path: repoPath(ns, name) + "/commit/" + RevisionDefault,
		raw:  buf.Bytes(), contentType: "application/x-ndjson", out: &out})
	if err != nil {
		return CommitInfo{}, fmt.Errorf("commit to %s/%s: %w", ns, name, err)
	}
	return out, nil
}

// Upload commits files after the preupload check. Files the store says to
// ignore are left out; a file the store wants through Git LFS is an error
// (the flywheel's datasets are small JSONL files).
func (d *DataStore) Upload(ctx context.Context, ns, name, summary string, files []RepoFile) (CommitInfo, error) {
	modes, err := d.Preupload(ctx, ns, name, files)
	if err != nil {
		return CommitInfo{}, err
	}
	verdict := make(map[string]PreuploadFile, len(modes))
	for _, m := range modes {
		verdict[m.Path] = m
	}
	keep := files[:0:0]
	for _, f := range files {
		v, ok := verdict[f.Path]
		if ok && v.ShouldIgnore {
			continue
		}
		if ok && v.UploadMode == "lfs" && len(f.Content) > 0 {
			return CommitInfo{}, fmt.Errorf("upload %s to %s/%s: data store asks for Git LFS, which this client does not speak",
				f.Path, ns, name)
		}
		keep = append(keep, f)
	}
	return d.Commit(ctx, ns, name, summary, keep)
}

// Download returns one file of a dataset repo at the main revision.
func (d *DataStore) Download(ctx context.Context, ns, name, path string) ([]byte, error) {
	var data []byte
	err := d.c.do(ctx, request{method: http.MethodGet, svc: d.svc,
		path: "/v1/hf/datasets/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/resolve/" +
			RevisionDefault + "/" + pathEscape(strings.TrimPrefix(path, "/")),
		rawOut: &data})
	if err != nil {
		return nil, fmt.Errorf("download %s from %s/%s: %w", path, ns, name, err)
	}
	return data, nil
}
