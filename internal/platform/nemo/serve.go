package nemo

import (
	"context"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.CandidateServer = (*Platform)(nil)

// ServeCandidate implements flywheel.CandidateServer for a promotion: the
// candidate's NIM is deployed under req.Key (through DMS, or found among
// the external deployments), and for a customized variant the deployment
// is ready once the NIM proxy lists the customized model, which its
// endpoint names. The ID is the NIM's deployment, so Undeploy stops what
// serves the promotion (and never the run's own deployments).
func (p *Platform) ServeCandidate(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	base := req
	base.Adapter = nil
	dep, err := p.Deploy(ctx, base)
	if err != nil || req.Adapter == nil || dep.Status != flywheel.DeploymentReady {
		return dep, err
	}
	cust, err := p.Deploy(ctx, req)
	if err != nil {
		return dep, err
	}
	cust.ID = dep.ID
	return cust, nil
}
