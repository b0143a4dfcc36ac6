package nemotest

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // git-style object ids, not security
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

type modelEntity struct {
	Name      string
	Namespace string
	BaseModel string
	Created   time.Time
}

type repo struct {
	files   map[string][]byte
	commits int
	oid     string
}

func (s *Server) entityRoutes() {
	s.handle("POST /v1/namespaces", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID string `json:"id"`
		}
		if !decode(w, r, &body) {
			return
		}
		if body.ID == "" {
			missingField(w, "id")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.namespaces[body.ID]; ok {
			detail(w, http.StatusConflict, "namespace %s already exists", body.ID)
			return
		}
		now := s.opts.Now()
		s.namespaces[body.ID] = now
		s.created[KindNamespace]++
		writeJSON(w, http.StatusCreated, map[string]any{"id": body.ID, "created_at": timestamp(now),
			"updated_at": timestamp(now), "description": nil, "project": nil, "custom_fields": map[string]any{}})
	})
	s.handle("GET /v1/namespaces/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t, ok := s.namespaces[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "namespace not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "created_at": timestamp(t)})
	})
	s.handle("POST /v1/datasets", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !decode(w, r, &body) {
			return
		}
		name, _ := body["name"].(string)
		ns, _ := body["namespace"].(string)
		files, _ := body["files_url"].(string)
		for field, v := range map[string]string{"name": name, "namespace": ns, "files_url": files} {
			if v == "" {
				missingField(w, field)
				return
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.namespaces[ns]; !ok {
			detail(w, http.StatusUnprocessableEntity, "namespace %s does not exist", ns)
			return
		}
		key := ns + "/" + name
		if _, ok := s.datasets[key]; ok {
			detail(w, http.StatusConflict, "dataset %s already exists", key)
			return
		}
		body["id"] = s.newID("dataset")
		body["created_at"] = timestamp(s.opts.Now())
		s.datasets[key] = body
		s.created[KindDataset]++
		writeJSON(w, http.StatusOK, body)
	})
	s.handle("GET /v1/datasets/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.datasets[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			detail(w, http.StatusNotFound, "dataset not found")
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	s.handle("PATCH /v1/datasets/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !decode(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.datasets[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			detail(w, http.StatusNotFound, "dataset not found")
			return
		}
		for k, v := range body {
			if k != "id" && k != "name" && k != "namespace" {
				d[k] = v
			}
		}
		writeJSON(w, http.StatusOK, d)
	})
	s.handle("DELETE /v1/datasets/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.PathValue("ns") + "/" + r.PathValue("name")
		if _, ok := s.datasets[key]; !ok {
			detail(w, http.StatusNotFound, "dataset not found")
			return
		}
		delete(s.datasets, key)
		s.deleted[KindDataset]++
		w.WriteHeader(http.StatusNoContent)
	})
	s.handle("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance()
		keys := make([]string, 0, len(s.models))
		for k := range s.models {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		items := make([]any, 0, len(keys))
		for _, k := range keys {
			items = append(items, s.models[k].json())
		}
		listPage(w, r, items)
	})
	s.handle("GET /v1/models/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance()
		m, ok := s.models[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			detail(w, http.StatusNotFound, "model not found")
			return
		}
		writeJSON(w, http.StatusOK, m.json())
	})
	s.handle("DELETE /v1/models/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance()
		key := r.PathValue("ns") + "/" + r.PathValue("name")
		if _, ok := s.models[key]; !ok {
			detail(w, http.StatusNotFound, "model not found")
			return
		}
		delete(s.models, key)
		s.deleted[KindModel]++
		delete(s.published, key)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (m *modelEntity) json() map[string]any {
	name, rev, _ := strings.Cut(m.Name, "@")
	return map[string]any{
		"name": m.Name, "namespace": m.Namespace, "base_model": m.BaseModel,
		"created_at": timestamp(m.Created),
		"spec":       map[string]any{"is_chat": true},
		"artifact": map[string]any{"backend_engine": "nemo", "status": "upload_completed",
			"files_url": "hf://" + m.Namespace + "/" + name + "@" + rev},
		"peft": map[string]any{"finetuning_type": "lora"},
	}
}

func (s *Server) dataStoreRoutes() {
	s.handle("POST /v1/datastore/namespaces", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			detail(w, http.StatusUnprocessableEntity, "invalid form: %v", err)
			return
		}
		ns := r.PostForm.Get("namespace")
		if ns == "" {
			missingField(w, "namespace")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dsNamespaces[ns] {
			detail(w, http.StatusConflict, "namespace %s already exists", ns)
			return
		}
		s.dsNamespaces[ns] = true
		writeJSON(w, http.StatusCreated, map[string]any{"namespace": ns})
	})
	s.handle("GET /v1/datastore/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.dsNamespaces[r.PathValue("ns")] {
			detail(w, http.StatusNotFound, "namespace not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"namespace": r.PathValue("ns")})
	})
	type repoBody struct {
		Name         string `json:"name"`
		Organization string `json:"organization"`
		Type         string `json:"type"`
	}
	s.handle("POST /v1/hf/api/repos/create", func(w http.ResponseWriter, r *http.Request) {
		var body repoBody
		if !decode(w, r, &body) {
			return
		}
		if body.Name == "" || body.Organization == "" {
			missingField(w, "name")
			return
		}
		if body.Type != "dataset" {
			detail(w, http.StatusBadRequest, "this fake stores dataset repos only, not %q", body.Type)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.dsNamespaces[body.Organization] {
			detail(w, http.StatusNotFound, "namespace %s not found", body.Organization)
			return
		}
		key := body.Organization + "/" + body.Name
		if _, ok := s.repos[key]; ok {
			detail(w, http.StatusConflict, "You already created this dataset repo")
			return
		}
		s.repos[key] = &repo{files: map[string][]byte{}}
		s.created[KindRepo]++
		writeJSON(w, http.StatusOK, map[string]any{"url": s.URL + "/v1/hf/datasets/" + key})
	})
	s.handle("DELETE /v1/hf/api/repos/delete", func(w http.ResponseWriter, r *http.Request) {
		var body repoBody
		if !decode(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		key := body.Organization + "/" + body.Name
		if _, ok := s.repos[key]; !ok {
			detail(w, http.StatusNotFound, "repository not found")
			return
		}
		delete(s.repos, key)
		s.deleted[KindRepo]++
		w.WriteHeader(http.StatusOK)
	})
	s.handle("POST /v1/hf/api/datasets/{ns}/{name}/preupload/{rev}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Files []struct {
				Path   string `json:"path"`
				Sample string `json:"sample"`
				Size   int    `json:"size"`
			} `json:"files"`
		}
		if !decode(w, r, &body) {
			return
		}
		s.mu.Lock()
		_, ok := s.repos[r.PathValue("ns")+"/"+r.PathValue("name")]
		s.mu.Unlock()
		if !ok {
			detail(w, http.StatusNotFound, "repository not found")
			return
		}
		out := make([]map[string]any, 0, len(body.Files))
		for _, f := range body.Files {
			if _, err := base64.StdEncoding.DecodeString(f.Sample); err != nil {
				detail(w, http.StatusBadRequest, "file %s: sample is not base64", f.Path)
				return
			}
			out = append(out, map[string]any{"path": f.Path, "uploadMode": "regular", "shouldIgnore": false})
		}
		writeJSON(w, http.StatusOK, map[string]any{"files": out})
	})
	s.handle("POST /v1/hf/api/datasets/{ns}/{name}/commit/{rev}", s.commit)
	s.handle("GET /v1/hf/datasets/{ns}/{name}/resolve/{rev}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp, ok := s.repos[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			detail(w, http.StatusNotFound, "repository not found")
			return
		}
		b, ok := rp.files[r.PathValue("path")]
		if !ok {
			detail(w, http.StatusNotFound, "entry not found")
			return
		}
		w.Header().Set("X-Repo-Commit", rp.oid)
		w.Header().Set("ETag", `"`+gitOID(b)+`"`)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})
	s.handle("GET /v1/hf/api/datasets/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.PathValue("ns") + "/" + r.PathValue("name")
		rp, ok := s.repos[key]
		if !ok {
			detail(w, http.StatusNotFound, "repository not found")
			return
		}
		var siblings []map[string]string
		for p := range rp.files {
			siblings = append(siblings, map[string]string{"rfilename": p})
		}
		sort.Slice(siblings, func(i, j int) bool { return siblings[i]["rfilename"] < siblings[j]["rfilename"] })
		writeJSON(w, http.StatusOK, map[string]any{"id": key, "sha": rp.oid, "siblings": siblings})
	})
}

func gitOID(b []byte) string {
	h := sha1.New() //nolint:gosec // git-style object ids
	_, _ = io.WriteString(h, "blob ")
	_, _ = io.WriteString(h, strconv.Itoa(len(b)))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// commit applies an NDJSON commit: a header line, then file, deletedFile or
// deletedFolder lines. LFS files are refused (preupload never asks for them).
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") {
		detail(w, http.StatusUnsupportedMediaType, "commit body must be application/x-ndjson, not %q", ct)
		return
	}
	type line struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	type fileValue struct {
		Content  string `json:"content"`
		Path     string `json:"path"`
		Encoding string `json:"encoding"`
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var (
		header  bool
		writes  = map[string][]byte{}
		deletes []string
		n       int
	)
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			detail(w, http.StatusBadRequest, "commit line %d: %v", n, err)
			return
		}
		switch l.Key {
		case "header":
			var h struct {
				Summary string `json:"summary"`
			}
			if err := json.Unmarshal(l.Value, &h); err != nil {
				detail(w, http.StatusBadRequest, "commit line %d: header: %v", n, err)
				return
			}
			header = true
		case "file":
			var f fileValue
			if err := json.Unmarshal(l.Value, &f); err != nil || f.Path == "" {
				detail(w, http.StatusBadRequest, "commit line %d: file needs a path and content", n)
				return
			}
			if f.Encoding != "base64" {
				detail(w, http.StatusBadRequest, "commit line %d: encoding %q not supported", n, f.Encoding)
				return
			}
			b, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				detail(w, http.StatusBadRequest, "commit line %d: content is not base64", n)
				return
			}
			writes[f.Path] = b
		case "deletedFile", "deletedFolder":
			var f fileValue
			if err := json.Unmarshal(l.Value, &f); err != nil {
				detail(w, http.StatusBadRequest, "commit line %d: %v", n, err)
				return
			}
			deletes = append(deletes, f.Path)
		case "lfsFile":
			detail(w, http.StatusBadRequest, "commit line %d: LFS files are not stored by this fake", n)
			return
		default:
			detail(w, http.StatusBadRequest, "commit line %d: unknown key %q", n, l.Key)
			return
		}
	}
	if err := sc.Err(); err != nil {
		detail(w, http.StatusBadRequest, "read commit: %v", err)
		return
	}
	if !header {
		detail(w, http.StatusBadRequest, "commit has no header line")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.PathValue("ns") + "/" + r.PathValue("name")
	rp, ok := s.repos[key]
	if !ok {
		detail(w, http.StatusNotFound, "repository not found")
		return
	}
	for _, p := range deletes {
		for f := range rp.files {
			if f == p || strings.HasPrefix(f, strings.TrimSuffix(p, "/")+"/") {
				delete(rp.files, f)
			}
		}
	}
	for p, b := range writes {
		rp.files[p] = b
		if strings.HasSuffix(p, ".jsonl") {
			s.learnJSONL(b)
		}
	}
	rp.commits++
	rp.oid = gitOID([]byte(key + strconv.Itoa(rp.commits)))
	writeJSON(w, http.StatusOK, map[string]any{
		"commitUrl": s.URL + "/v1/hf/datasets/" + key + "/commit/" + rp.oid,
		"commitOid": rp.oid,
	})
}
