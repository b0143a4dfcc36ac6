package nemotest

import (
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

type deployment struct {
	ns, name, model string
	body            map[string]any
	created         time.Time
	fail            bool
}

func (d *deployment) status(now time.Time, o Options) string {
	t := now.Sub(d.created)
	switch {
	case t < o.DeploymentPendingAfter:
		return "created"
	case t < o.DeploymentReadyAfter:
		return "pending"
	case d.fail:
		return "failed"
	}
	return "ready"
}

func (d *deployment) json(now time.Time, o Options) map[string]any {
	st := d.status(now, o)
	desc := map[string]string{"created": "Deployment created", "pending": "Pulling the NIM image",
		"ready": "Deployment is ready", "failed": "NIM container exited: CUDA out of memory (injected by nemotest)"}[st]
	return map[string]any{
		"name": d.name, "namespace": d.ns, "config": d.body["config"],
		"deployed":       st == "ready",
		"url":            "http://" + d.name + "." + d.ns + ".svc:8000",
		"status_details": map[string]any{"status": st, "description": desc},
		"created_at":     timestamp(d.created), "updated_at": timestamp(now),
		"schema_version": "1.0",
	}
}

func (s *Server) dmsRoutes() {
	s.handle(EndpointDeploymentCreate, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !decode(w, r, &body) {
			return
		}
		name, _ := body["name"].(string)
		ns, _ := body["namespace"].(string)
		cfg, _ := body["config"].(map[string]any)
		model, _ := cfg["model"].(string)
		nim, _ := cfg["nim_deployment"].(map[string]any)
		switch {
		case name == "":
			missingField(w, "name")
			return
		case ns == "":
			missingField(w, "namespace")
			return
		case strings.Contains(name, "/"):
			detail(w, http.StatusUnprocessableEntity, "deployment name %q must not contain '/'", name)
			return
		case model == "":
			missingField(w, "config.model")
			return
		case nim == nil || nim["image_name"] == nil || nim["image_tag"] == nil || nim["gpu"] == nil:
			missingField(w, "config.nim_deployment")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		key := ns + "/" + name
		if _, ok := s.deployments[key]; ok {
			s.duplicates[KindDeployment]++
			// DMS answers a duplicate with a 500 (the blueprint's "Bug in DMS API").
			detail(w, http.StatusInternalServerError, "model deployment already exists: %s", key)
			return
		}
		now := s.opts.Now()
		d := &deployment{ns: ns, name: name, model: model, body: body, created: now, fail: s.opts.FailDeployments}
		s.deployments[key] = d
		s.created[KindDeployment]++
		writeJSON(w, http.StatusOK, d.json(now, s.opts))
	})
	s.handle(EndpointDeploymentGet, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.deployments[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			detail(w, http.StatusNotFound, "model deployment not found")
			return
		}
		writeJSON(w, http.StatusOK, d.json(s.opts.Now(), s.opts))
	})
	s.handle("GET /v1/deployment/model-deployments", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.opts.Now()
		keys := make([]string, 0, len(s.deployments))
		for k := range s.deployments {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		items := make([]any, 0, len(keys))
		for _, k := range keys {
			items = append(items, s.deployments[k].json(now, s.opts))
		}
		listPage(w, r, items)
	})
	s.handle(EndpointDeploymentDelete, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.PathValue("ns") + "/" + r.PathValue("name")
		d, ok := s.deployments[key]
		if !ok {
			detail(w, http.StatusNotFound, "model deployment not found")
			return
		}
		delete(s.deployments, key)
		s.deleted[KindDeployment]++
		writeJSON(w, http.StatusOK, map[string]any{"message": "deployment " + d.name + " deleted"})
	})
}

type customization struct {
	id, name, ns, output, config, dataset string
	body                                  map[string]any
	epochs                                int
	created                               time.Time
	cancelled                             *time.Time
	stuck, ner, fail                      bool
	// published is set once the output model has been published.
	published bool
}

func (c *customization) runStart(o Options) time.Time { return c.created.Add(2 * o.JobStartAfter) }

func (c *customization) doneAt(o Options) time.Time {
	return c.runStart(o).Add(time.Duration(c.epochs) * o.EpochDuration)
}

// progress returns completed steps and epochs at now.
func (c *customization) progress(now time.Time, o Options) (steps, epochs int) {
	if c.stuck || c.ner {
		return 0, 0
	}
	if c.cancelled != nil && c.cancelled.Before(now) {
		now = *c.cancelled
	}
	run := now.Sub(c.runStart(o))
	if run <= 0 {
		return 0, 0
	}
	steps = int(run * time.Duration(o.StepsPerEpoch) / o.EpochDuration)
	total := c.epochs * o.StepsPerEpoch
	if c.fail {
		total = o.StepsPerEpoch
	}
	steps = min(steps, total)
	return steps, steps / o.StepsPerEpoch
}

func (c *customization) status(now time.Time, o Options) string {
	if c.cancelled != nil {
		return "cancelled"
	}
	t := now.Sub(c.created)
	switch {
	case t < o.JobStartAfter:
		return "created"
	case t < 2*o.JobStartAfter || c.ner:
		return "pending"
	case c.stuck:
		return "running"
	}
	_, epochs := c.progress(now, o)
	switch {
	case c.fail && epochs >= 1:
		return "failed"
	case epochs >= c.epochs:
		return "completed"
	}
	return "running"
}

func (c *customization) jobJSON(now time.Time, o Options) map[string]any {
	out := map[string]any{}
	for k, v := range c.body {
		out[k] = v
	}
	out["id"], out["namespace"], out["output_model"] = c.id, c.ns, c.output
	out["status"] = c.status(now, o)
	out["created_at"], out["updated_at"] = timestamp(c.created), timestamp(now)
	out["status_details"] = c.statusJSON(now, o)
	return out
}

func loss(step, spe int) float64 { return 0.4 + 1.8*math.Pow(0.8, float64(step)/float64(spe)) }

func (c *customization) statusJSON(now time.Time, o Options) map[string]any {
	st := c.status(now, o)
	steps, epochs := c.progress(now, o)
	total := max(c.epochs*o.StepsPerEpoch, 1)
	pct := float64(steps) / float64(total) * 100
	if st == "completed" {
		pct = 100
	}
	out := map[string]any{
		"status": st, "created_at": timestamp(c.created), "updated_at": timestamp(now),
		"steps_completed": steps, "epochs_completed": epochs, "percentage_done": pct,
		"steps_per_epoch": o.StepsPerEpoch,
		"elapsed_time":    math.Max(0, now.Sub(c.runStart(o)).Seconds()),
	}
	var logs []map[string]any
	logs = append(logs, map[string]any{"updated_at": timestamp(c.created), "message": "created"})
	if c.ner && st == "pending" {
		logs = append(logs, map[string]any{"updated_at": timestamp(now), "message": "NotEnoughResources",
			"detail": "Insufficient GPUs: the job asks for 1 GPU and none is free (nemotest)"})
	}
	if st == "failed" {
		logs = append(logs, map[string]any{"updated_at": timestamp(now), "message": "failed",
			"detail": "Training failed: loss became NaN at epoch 1 (injected by nemotest)"})
	}
	out["status_logs"] = logs
	if steps > 0 {
		var train, val []map[string]any
		for i := 1; i <= steps; i++ {
			train = append(train, map[string]any{"value": loss(i, o.StepsPerEpoch), "step": i})
			if i%o.StepsPerEpoch == 0 {
				val = append(val, map[string]any{"value": loss(i, o.StepsPerEpoch) + 0.1, "step": i})
			}
		}
		out["train_loss"] = loss(steps, o.StepsPerEpoch)
		out["metrics"] = map[string]any{"keys": []string{"train_loss", "val_loss"},
			"metrics": map[string]any{"train_loss": train, "val_loss": val}}
		if len(val) > 0 {
			out["val_loss"] = val[len(val)-1]["value"]
			out["best_epoch"] = epochs
		}
	}
	return out
}

func (s *Server) customizerRoutes() {
	s.handle(EndpointConfigCreate, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !decode(w, r, &body) {
			return
		}
		name, _ := body["name"].(string)
		ns, _ := body["namespace"].(string)
		target, _ := body["target"].(string)
		opts, _ := body["training_options"].([]any)
		switch {
		case name == "" || ns == "":
			missingField(w, "name")
			return
		case !strings.Contains(name, "@"):
			detail(w, http.StatusUnprocessableEntity, "config name %q needs a version (name@version)", name)
			return
		case target == "":
			missingField(w, "target")
			return
		case len(opts) == 0:
			missingField(w, "training_options")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		key := ns + "/" + name
		if _, ok := s.configs[key]; ok {
			detail(w, http.StatusConflict, "customization config %s already exists", key)
			return
		}
		now := timestamp(s.opts.Now())
		body["id"], body["created_at"], body["updated_at"] = s.newID("customization_config"), now, now
		tns, tname, _ := strings.Cut(target, "/")
		stored := map[string]any{}
		for k, v := range body {
			stored[k] = v
		}
		// The service answers with the target expanded into an object.
		stored["target"] = map[string]any{"namespace": tns, "name": tname, "enabled": true, "status": "ready"}
		s.configs[key] = stored
		s.created[KindConfig]++
		writeJSON(w, http.StatusOK, stored)
	})
	s.handle("GET /v1/customization/configs/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c, ok := s.configs[r.PathValue("ns")+"/"+r.PathValue("name")]
		if !ok {
			detail(w, http.StatusNotFound, "customization config not found")
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	s.handle("DELETE /v1/customization/configs/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.PathValue("ns") + "/" + r.PathValue("name")
		if _, ok := s.configs[key]; !ok {
			detail(w, http.StatusNotFound, "customization config not found")
			return
		}
		delete(s.configs, key)
		s.deleted[KindConfig]++
		writeJSON(w, http.StatusOK, map[string]any{"message": "deleted"})
	})
	s.handle(EndpointCustomizationCreate, s.createCustomization)
	s.handle(EndpointCustomizationList, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.opts.Now()
		jobs := make([]*customization, 0, len(s.custs))
		for _, c := range s.custs {
			jobs = append(jobs, c)
		}
		sort.Slice(jobs, func(i, j int) bool {
			if !jobs[i].created.Equal(jobs[j].created) {
				return jobs[i].created.After(jobs[j].created)
			}
			return jobs[i].id > jobs[j].id
		})
		items := make([]any, 0, len(jobs))
		for _, c := range jobs {
			items = append(items, c.jobJSON(now, s.opts))
		}
		listPage(w, r, items)
	})
	s.handle("GET /v1/customization/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c, ok := s.custs[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "customization job not found")
			return
		}
		writeJSON(w, http.StatusOK, c.jobJSON(s.opts.Now(), s.opts))
	})
	s.handle(EndpointCustomizationStatus, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance()
		c, ok := s.custs[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "customization job not found")
			return
		}
		writeJSON(w, http.StatusOK, c.statusJSON(s.opts.Now(), s.opts))
	})
	s.handle(EndpointCustomizationCancel, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c, ok := s.custs[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "customization job not found")
			return
		}
		now := s.opts.Now()
		switch st := c.status(now, s.opts); st {
		case "completed", "failed":
			detail(w, http.StatusConflict, "cannot cancel a job that is %s", st)
			return
		case "cancelled":
		default:
			c.cancelled = &now
			s.cancelled[KindCustomization]++
		}
		writeJSON(w, http.StatusOK, c.jobJSON(now, s.opts))
	})
}

func (s *Server) createCustomization(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if !decode(w, r, &body) {
		return
	}
	name, _ := body["name"].(string)
	output, _ := body["output_model"].(string)
	config, _ := body["config"].(string)
	ds, _ := body["dataset"].(map[string]any)
	dsName, _ := ds["name"].(string)
	dsNS, _ := ds["namespace"].(string)
	hp, _ := body["hyperparameters"].(map[string]any)
	ft, _ := hp["finetuning_type"].(string)
	epochs, _ := hp["epochs"].(float64)
	switch {
	case config == "":
		missingField(w, "config")
		return
	case dsName == "" || dsNS == "":
		missingField(w, "dataset")
		return
	case ft == "":
		missingField(w, "hyperparameters.finetuning_type")
		return
	case epochs < 1 || epochs != math.Trunc(epochs):
		detail(w, http.StatusUnprocessableEntity, "hyperparameters.epochs must be a positive integer")
		return
	}
	if ft == "lora" {
		lora, _ := hp["lora"].(map[string]any)
		if dim, _ := lora["adapter_dim"].(float64); dim <= 0 {
			detail(w, http.StatusUnprocessableEntity, "hyperparameters.lora.adapter_dim must be positive for LoRA")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.configs[config]; !ok {
		detail(w, http.StatusNotFound, "customization config %s not found", config)
		return
	}
	if _, ok := s.datasets[dsNS+"/"+dsName]; !ok {
		detail(w, http.StatusNotFound, "dataset %s/%s is not registered in the entity store", dsNS, dsName)
		return
	}
	rp := s.repos[dsNS+"/"+dsName]
	if rp == nil || rp.files["training/train_data.jsonl"] == nil {
		detail(w, http.StatusUnprocessableEntity, "dataset %s/%s has no training/train_data.jsonl", dsNS, dsName)
		return
	}
	now := s.opts.Now()
	if name != "" {
		for _, c := range s.custs {
			if c.name == name {
				s.duplicates[KindCustomization]++
				break
			}
		}
	}
	id := s.newID("cust")
	ns, _, _ := strings.Cut(config, "/")
	full := ""
	if output != "" {
		full = output + "@" + id
	}
	c := &customization{id: id, name: name, ns: ns, output: full, config: config, dataset: dsNS + "/" + dsName,
		body: body, epochs: int(epochs), created: now,
		stuck: s.opts.StuckCustomizations, ner: s.opts.NotEnoughResources, fail: s.opts.FailCustomizations}
	s.custs[id] = c
	s.created[KindCustomization]++
	writeJSON(w, http.StatusOK, c.jobJSON(now, s.opts))
}

// advance applies the effects of time: finished customizations publish
// their output model to the Entity Store and (after ModelSyncDelay) the
// NIM proxy; finished evaluations get their results.
func (s *Server) advance() {
	now := s.opts.Now()
	for _, c := range s.custs {
		if c.published || c.output == "" || c.status(now, s.opts) != "completed" {
			continue
		}
		c.published = true
		done := c.doneAt(s.opts)
		ns, name, _ := strings.Cut(c.output, "/")
		base := ""
		if cfg, ok := s.configs[c.config]; ok {
			if t, ok := cfg["target"].(map[string]any); ok {
				base, _ = t["name"].(string)
			}
		}
		s.models[c.output] = &modelEntity{Name: name, Namespace: ns, BaseModel: base, Created: done}
		s.published[c.output] = done.Add(s.opts.ModelSyncDelay)
		s.created[KindModel]++
	}
	for _, e := range s.evals {
		s.evalStatus(e, now)
	}
}

// served returns the ids the NIM proxy lists at now.
func (s *Server) served(now time.Time) []string {
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, m := range s.opts.Models {
		add(m)
	}
	keys := make([]string, 0, len(s.deployments))
	for k := range s.deployments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := s.deployments[k]
		if d.status(now, s.opts) == "ready" && !now.Before(d.created.Add(s.opts.DeploymentReadyAfter+s.opts.ModelSyncDelay)) {
			add(d.model)
		}
	}
	pub := make([]string, 0, len(s.published))
	for id, at := range s.published {
		if !now.Before(at) {
			pub = append(pub, id)
		}
	}
	sort.Strings(pub)
	for _, id := range pub {
		add(id)
	}
	return ids
}

func (s *Server) isServed(model string, now time.Time) bool {
	for _, id := range s.served(now) {
		if id == model {
			return true
		}
	}
	return false
}
