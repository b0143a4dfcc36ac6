package nemo

import (
	"context"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.Provenancer = (*Platform)(nil)

// Versions returns nothing of its own: the NIM image tags of the
// candidates are in the run's settings, and the manifest lists them.
func (p *Platform) Versions(context.Context, []flywheel.NIMConfig) map[string]string {
	return map[string]string{}
}

// ModelDigest identifies a candidate by its model id and image tag: NeMo
// serves what the registry holds under them.
func (p *Platform) ModelDigest(_ context.Context, m flywheel.NIMConfig) (string, error) {
	if m.Tag == "" {
		return m.ModelName, nil
	}
	return m.ModelName + ":" + m.Tag, nil
}

// AdapterDigest identifies a customization's output by the model id the
// customizer registered it under (the job id when it named none).
func (p *Platform) AdapterDigest(_ context.Context, job flywheel.CustomizationJob) (string, error) {
	if job.OutputModel != "" {
		return job.OutputModel, nil
	}
	return job.ID, nil
}
