package flywheel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// ManifestVersion is the format version of a Manifest this build writes and reads.
const ManifestVersion = 1

// Manifest dataset kinds, the Kind of a ManifestDataset.
const (
	ManifestEval  = "eval"
	ManifestTrain = "train"
	ManifestVal   = "val"
	ManifestICL   = "icl"
)

// Manifest is what a run was made of, enough to build the same datasets
// again and to tell whether two runs saw the same data: the ordered record
// ids and content hashes of every dataset, the effective settings, the
// seed, the candidates with the digests of their model files and adapters,
// and the versions of the software involved. create_datasets writes it;
// later stages add what they learn (a model's digest once deployed, an
// adapter's once trained).
type Manifest struct {
	Version    int       `json:"manifest_version"`
	RunID      string    `json:"run_id"`
	WorkloadID string    `json:"workload_id"`
	ClientID   string    `json:"client_id"`
	CreatedAt  time.Time `json:"created_at"`
	// ReproducesRunID names the run whose manifest this run was built from.
	ReproducesRunID string `json:"reproduces_run_id,omitempty"`
	// WorkloadType is what create_datasets classified the records as.
	WorkloadType WorkloadType `json:"workload_type"`
	// Seed is the seed that sampled and split the records (the configured
	// random_seed, or the one drawn from the clock when none was set).
	Seed int64 `json:"seed"`
	// Config is the run's effective settings (secrets are never part of them).
	Config RunSpec `json:"config"`
	// Datasets are eval, train, val and icl, in that order.
	Datasets []ManifestDataset `json:"datasets"`
	// Leakage says which records the leakage guard removed.
	Leakage *LeakageStats `json:"leakage,omitempty"`
	// Models has one entry per candidate, in the run's order.
	Models []ManifestModel `json:"models"`
	// Versions maps a component ("flywheel", "llama-server", "torch", a
	// NIM image) to its version.
	Versions map[string]string `json:"versions"`
}

// ManifestDataset is one dataset of a manifest.
type ManifestDataset struct {
	// Kind is eval, train, val or icl.
	Kind string `json:"kind"`
	// Name is the dataset's name as published (empty for val, which is
	// part of the train dataset, and for icl's examples).
	Name string `json:"name,omitempty"`
	// RecordIDs are the stored records, in the dataset's order. For icl
	// they are the training records shown as examples, in order of first
	// use.
	RecordIDs []int64 `json:"record_ids"`
	// RecordHashes are SHA-256 digests of each record's canonical content
	// (RecordHash), parallel to RecordIDs.
	RecordHashes []string `json:"record_hashes"`
	// Examples, for icl only, lists per evaluation record (in the eval
	// set's order) the ids of the examples injected into its prompt.
	Examples [][]int64 `json:"examples,omitempty"`
	// Hash is the SHA-256 of the whole list (DatasetHash).
	Hash string `json:"hash"`
}

// ManifestModel is one candidate of a manifest.
type ManifestModel struct {
	Name string `json:"name"`
	// Digest identifies the model the platform served: "sha256:…" of the
	// model file on the local platform, the model id on NeMo; empty until
	// the platform knows it.
	Digest string `json:"digest,omitempty"`
	// AdapterID and AdapterDigest identify the customization's output
	// once it exists (a LoRA adapter or a fine-tuned model).
	AdapterID     string `json:"adapter_id,omitempty"`
	AdapterDigest string `json:"adapter_digest,omitempty"`
}

// LeakageStats are the leakage guard's counts: training and validation
// records (and thereby few-shot examples) removed because they repeat an
// evaluation record, exactly or nearly. The evaluation set is never changed.
type LeakageStats struct {
	// Exact counts records with the same last user message and reference
	// tool calls as an evaluation record.
	Exact int `json:"exact"`
	// Near counts records equal to an evaluation record only once
	// normalised (case, whitespace and punctuation ignored).
	Near int `json:"near"`
	// Train and Val count the removed records per set.
	Train int `json:"train"`
	Val   int `json:"val"`
	// RecordIDs are the removed records (at most MaxLeakageIDs).
	RecordIDs []int64 `json:"record_ids,omitempty"`
}

// MaxLeakageIDs caps LeakageStats.RecordIDs.
const MaxLeakageIDs = 100

// Removed is the number of records the guard removed.
func (l *LeakageStats) Removed() int {
	if l == nil {
		return 0
	}
	return l.Exact + l.Near
}

// Dataset returns the manifest's dataset of a kind, or nil.
func (m *Manifest) Dataset(kind string) *ManifestDataset {
	for i := range m.Datasets {
		if m.Datasets[i].Kind == kind {
			return &m.Datasets[i]
		}
	}
	return nil
}

// DatasetHash is the hash of a dataset's list: SHA-256 over the record
// hashes in order, one per line, and for icl the examples of each
// evaluation record as one more line each. Record ids are not part of it,
// so it identifies the content.
func DatasetHash(recordHashes []string, examples [][]int64, hashOf map[int64]string) string {
	h := sha256.New()
	for _, rh := range recordHashes {
		h.Write([]byte(rh))
		h.Write([]byte{'\n'})
	}
	for _, ex := range examples {
		h.Write([]byte{'['})
		for i, id := range ex {
			if i > 0 {
				h.Write([]byte{','})
			}
			h.Write([]byte(hashOf[id]))
		}
		h.Write([]byte("]\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Replay pins a run's datasets to a manifest's: the run uses exactly these
// records, in this order, instead of sampling.
type Replay struct {
	// RunID is the run the manifest came from.
	RunID string `json:"run_id"`
	// Seed and WorkloadType are the manifest's.
	Seed         int64        `json:"seed"`
	WorkloadType WorkloadType `json:"workload_type"`
	// Datasets are the manifest's (eval, train, val, icl).
	Datasets []ManifestDataset `json:"datasets"`
	// Leakage is what the guard removed when the datasets were first built.
	Leakage *LeakageStats `json:"leakage,omitempty"`
}

// Check validates a manifest given to create a run from, returning the
// first problem with the field it is in (for example
// "manifest.datasets[1].record_hashes").
func (m *Manifest) Check() []FieldError {
	var out []FieldError
	bad := func(msg string, loc ...string) {
		out = append(out, FieldError{Loc: append([]string{"body", "manifest"}, loc...), Msg: msg, Type: "value_error"})
	}
	if m.Version != ManifestVersion {
		bad(fmt.Sprintf("manifest_version %d is not supported (want %d)", m.Version, ManifestVersion), "manifest_version")
	}
	if strings.TrimSpace(m.WorkloadID) == "" {
		bad("Field required", "workload_id")
	}
	if strings.TrimSpace(m.ClientID) == "" {
		bad("Field required", "client_id")
	}
	if len(m.Config.Candidates) == 0 {
		bad("the manifest's config names no candidate models", "config", "candidates")
	}
	seen := map[string]bool{}
	for i, d := range m.Datasets {
		loc := fmt.Sprintf("datasets[%d]", i)
		switch d.Kind {
		case ManifestEval, ManifestTrain, ManifestVal, ManifestICL:
		default:
			bad(fmt.Sprintf("unknown dataset kind %q (want eval, train, val or icl)", d.Kind), loc, "kind")
			continue
		}
		if seen[d.Kind] {
			bad(fmt.Sprintf("dataset kind %q appears twice", d.Kind), loc, "kind")
		}
		seen[d.Kind] = true
		if len(d.RecordHashes) != len(d.RecordIDs) {
			bad(fmt.Sprintf("%d record_hashes for %d record_ids", len(d.RecordHashes), len(d.RecordIDs)), loc, "record_hashes")
		}
		if d.Kind != ManifestICL && len(d.Examples) > 0 {
			bad("only the icl dataset has examples", loc, "examples")
		}
	}
	for _, k := range []string{ManifestEval, ManifestTrain} {
		if d := m.Dataset(k); d == nil || len(d.RecordIDs) == 0 {
			bad(fmt.Sprintf("the %s dataset is missing or empty", k), "datasets")
		}
	}
	if d := m.Dataset(ManifestICL); d != nil && len(d.Examples) > 0 {
		if e := m.Dataset(ManifestEval); e != nil && len(d.Examples) != len(e.RecordIDs) {
			bad(fmt.Sprintf("icl examples list %d evaluation records, the eval dataset has %d", len(d.Examples), len(e.RecordIDs)),
				"datasets", "icl", "examples")
		}
	}
	return out
}

// Replay returns the pin a run made from this manifest carries.
func (m *Manifest) Replay() *Replay {
	return &Replay{RunID: m.RunID, Seed: m.Seed, WorkloadType: m.WorkloadType, Datasets: m.Datasets, Leakage: m.Leakage}
}

// MissingRecordsError says which records of a manifest are gone (deleted
// by retention or on demand), so its datasets cannot be built again.
type MissingRecordsError struct {
	IDs []int64
}

// Error names the first ten missing ids and how many there are.
func (e *MissingRecordsError) Error() string {
	const show = 10
	parts := make([]string, 0, min(len(e.IDs), show))
	for i, id := range e.IDs {
		if i == show {
			break
		}
		parts = append(parts, fmt.Sprint(id))
	}
	more := ""
	if len(e.IDs) > show {
		more = fmt.Sprintf(" and %d more", len(e.IDs)-show)
	}
	return fmt.Sprintf("%d records of the manifest are no longer stored (deleted by retention or on demand): ids %s%s",
		len(e.IDs), strings.Join(parts, ", "), more)
}

// RecordLookup is implemented by record sources that can read records by
// id (the database; not Elasticsearch).
type RecordLookup interface {
	// RecordsByID returns the stored records among ids, in any order;
	// ids that are gone are simply absent.
	RecordsByID(ctx context.Context, ids []int64) ([]LogRecord, error)
}

// Provenancer is implemented by platforms that can say exactly what they
// run, for a run's manifest.
type Provenancer interface {
	// Versions returns the versions of the platform's software, by
	// component name; what cannot be found is left out.
	Versions(ctx context.Context, candidates []NIMConfig) map[string]string
	// ModelDigest identifies a candidate's model ("" when not known yet,
	// for example a model file created at deployment).
	ModelDigest(ctx context.Context, m NIMConfig) (string, error)
	// AdapterDigest identifies a finished customization's output.
	AdapterDigest(ctx context.Context, job CustomizationJob) (string, error)
}

// ManifestReader serves GET /api/jobs/{id}/manifest.
type ManifestReader interface {
	// GetManifest returns a run's manifest: ENOTFOUND when the run does
	// not exist or has not built its datasets yet.
	GetManifest(ctx context.Context, runID string) (*Manifest, error)
}
