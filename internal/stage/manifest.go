package stage

import (
	"context"
	"log/slog"
	"maps"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// writeManifest stores the manifest of a run whose datasets were just
// built: their records, the settings, the seed, the candidates with what
// the platform knows of their models, and the versions involved.
func (r *Runner) writeManifest(ctx context.Context, run *flywheel.Run, res flywheel.BuildResult) error {
	spec := run.Spec
	m := &flywheel.Manifest{
		Version: flywheel.ManifestVersion, RunID: run.ID, WorkloadID: run.WorkloadID, ClientID: run.ClientID,
		CreatedAt: r.now().UTC(), WorkloadType: res.WorkloadType, Seed: res.Seed, Datasets: res.Manifest,
		Leakage: res.Stats.Leakage, Versions: r.versions(ctx, spec),
	}
	if spec.Replay != nil {
		m.ReproducesRunID = spec.Replay.RunID
		spec.Replay = nil // the records are in Datasets already
	}
	m.Config = spec
	prov, _ := r.Platform.(flywheel.Provenancer)
	for _, c := range spec.Candidates {
		mm := flywheel.ManifestModel{Name: c.ModelName}
		if prov != nil {
			d, err := prov.ModelDigest(ctx, c)
			if err != nil {
				r.logger().WarnContext(ctx, "Model digest unknown", slog.String("run_id", run.ID), slog.String("model", c.ModelName), slog.Any("error", err))
			}
			mm.Digest = d
		}
		m.Models = append(m.Models, mm)
	}
	return r.Store.SetRunManifest(ctx, m)
}

// versions returns the versions of what a run uses: Flywheel's, the
// platform's software and the candidates' image tags.
func (r *Runner) versions(ctx context.Context, spec flywheel.RunSpec) map[string]string {
	out := map[string]string{}
	if r.Settings.Version != "" {
		out["flywheel"] = r.Settings.Version
	}
	if prov, ok := r.Platform.(flywheel.Provenancer); ok {
		maps.Copy(out, prov.Versions(ctx, spec.Candidates))
	}
	for _, c := range spec.Candidates {
		if c.Tag != "" {
			out["image:"+c.ModelName] = c.Tag
		}
	}
	return out
}

// noteModel adds to a run's manifest what became known of a candidate's
// model once deployed (its digest) or customized (the adapter). It never
// fails the stage: a manifest without a digest is still a manifest.
func (r *Runner) noteModel(ctx context.Context, c Call, cfg flywheel.NIMConfig, job *flywheel.CustomizationJob) {
	mm := flywheel.ManifestModel{Name: c.NIM.ModelName}
	prov, _ := r.Platform.(flywheel.Provenancer)
	var err error
	switch {
	case job != nil:
		mm.AdapterID = job.OutputModel
		if mm.AdapterID == "" {
			mm.AdapterID = job.ID
		}
		if prov != nil {
			mm.AdapterDigest, err = prov.AdapterDigest(ctx, *job)
		}
	case prov != nil:
		mm.Digest, err = prov.ModelDigest(ctx, cfg)
	}
	if err != nil {
		r.logger().WarnContext(ctx, "Model digest unknown", slog.String("run_id", c.Run.ID), slog.String("model", c.NIM.ModelName), slog.Any("error", err))
	}
	if err := r.Store.SetManifestModel(ctx, c.Run.ID, c.NIM.Position, mm); err != nil {
		r.logger().WarnContext(ctx, "Manifest not updated", slog.String("run_id", c.Run.ID), slog.String("model", c.NIM.ModelName), slog.Any("error", err))
	}
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}
