package flywheel

// Configured reports whether the config names an LLM judge: a local one,
// or a remote one with a URL. Without one, evaluations have no judge
// scores.
func (j JudgeConfig) Configured() bool {
	return j.DeploymentType == DeploymentTypeLocal || j.URL != ""
}

// ConfiguredJudge returns the run's judge, or nil when the run was created
// without one (its judge row then stands for no judge at all).
func (d *JobDetail) ConfiguredJudge() *LLMJudgeRun {
	if d.Judge == nil || d.Run == nil || !d.Run.Spec.Judge.Configured() {
		return nil
	}
	return d.Judge
}
