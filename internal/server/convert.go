package server

import (
	"math"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// This file turns domain values into the API's shapes: every blueprint
// field present (null rather than absent), timestamps in UTC as api.Time writes them (RFC 3339, microseconds, "+00:00"), missing
// statuses shown as "pending" as the blueprint does, and no NaN or
// infinity (JSON cannot carry them).

func listItem(run *flywheel.Run) api.JobListItem {
	clientID := run.ClientID
	return api.JobListItem{
		ID:           run.ID,
		WorkloadID:   run.WorkloadID,
		ClientID:     &clientID,
		Status:       string(orStatus(run.Status, flywheel.RunPending)),
		StartedAt:    api.NewTime(run.StartedAt),
		FinishedAt:   api.NewTimePtr(run.FinishedAt),
		Datasets:     datasets(run.Datasets),
		Error:        strPtr(run.Error),
		NumRecords:   max(run.NumRecords, 0),
		WorkloadType: string(run.WorkloadType),
	}
}

func jobDetail(d *flywheel.JobDetail) api.JobDetailResponse {
	run := d.Run
	out := api.JobDetailResponse{
		ID:             run.ID,
		WorkloadID:     run.WorkloadID,
		ClientID:       run.ClientID,
		Status:         string(orStatus(run.Status, flywheel.RunPending)),
		StartedAt:      api.NewTime(run.StartedAt),
		FinishedAt:     api.NewTimePtr(run.FinishedAt),
		NumRecords:     max(run.NumRecords, 0),
		NIMs:           make([]api.NIMResponse, 0, len(d.NIMs)),
		Datasets:       datasets(run.Datasets),
		Error:          strPtr(run.Error),
		WorkloadType:   string(run.WorkloadType),
		DataStats:      run.Stats,
		Recommendation: recommendation(run.Recommendation),
		Stages:         []api.Stage{},
		Warnings:       d.Warnings(),
	}
	if out.Warnings == nil {
		out.Warnings = []flywheel.Warning{}
	}
	// A run without a judge has a null llm_judge, not an empty "ready" one.
	if j := d.ConfiguredJudge(); j != nil {
		out.LLMJudge = &api.LLMJudgeResponse{
			ModelName:        j.ModelName,
			Type:             j.DeploymentType,
			DeploymentStatus: string(orStatus(j.DeploymentStatus, flywheel.DeploymentPending)),
			Error:            strPtr(j.Error),
		}
	}
	byCandidate := map[string][]api.Stage{}
	for _, st := range d.Stages {
		if st.Candidate == "" {
			out.Stages = append(out.Stages, stage(st))
			continue
		}
		byCandidate[st.Candidate] = append(byCandidate[st.Candidate], stage(st))
	}
	for _, n := range d.NIMs {
		nim := api.NIMResponse{
			ModelName:        n.ModelName,
			Status:           string(orStatus(n.Status, flywheel.NIMPending)),
			DeploymentStatus: string(orStatus(n.DeploymentStatus, flywheel.DeploymentPending)),
			RuntimeSeconds:   nonNegative(n.RuntimeSeconds),
			Evaluations:      make([]api.Evaluation, 0, len(n.Evaluations)),
			Customizations:   make([]api.Customization, 0, len(n.Customizations)),
			Error:            strPtr(n.Error),
			ID:               n.ID,
			StartedAt:        api.NewTimePtr(n.StartedAt),
			FinishedAt:       api.NewTimePtr(n.FinishedAt),
			Stages:           byCandidate[n.ID],
		}
		if nim.Stages == nil {
			nim.Stages = []api.Stage{}
		}
		for _, e := range n.Evaluations {
			nim.Evaluations = append(nim.Evaluations, evaluation(e))
		}
		for _, c := range n.Customizations {
			nim.Customizations = append(nim.Customizations, customization(c))
		}
		out.NIMs = append(out.NIMs, nim)
	}
	return out
}

func evaluation(e flywheel.Evaluation) api.Evaluation {
	out := api.Evaluation{
		EvalType:       string(e.EvalType),
		Scores:         finiteMap(e.Scores),
		StartedAt:      api.NewTime(e.StartedAt),
		FinishedAt:     api.NewTimePtr(e.FinishedAt),
		RuntimeSeconds: nonNegative(e.RuntimeSeconds),
		Progress:       percent(e.Progress),
		NMPURI:         e.NMPURI,
		MLflowURI:      e.MLflowURI,
		Error:          strPtr(e.Error),
		ID:             e.ID,
		ScoreDetails:   map[string]flywheel.ScoreDetail{},
	}
	for k, v := range e.Details {
		out.ScoreDetails[k] = scoreDetail(v)
	}
	if e.Summary != nil {
		s := *e.Summary
		s.LatencyP50MS = finitePtr(s.LatencyP50MS)
		s.LatencyP95MS = finitePtr(s.LatencyP95MS)
		s.TTFTP50MS = finite(s.TTFTP50MS)
		s.PromptTokens = finitePtr(s.PromptTokens)
		s.CompletionTokens = finitePtr(s.CompletionTokens)
		s.CostPer1KReq = finite(s.CostPer1KReq)
		s.CPUSecondsPerRequest = finitePtr(s.CPUSecondsPerRequest)
		if p := s.Production; p != nil {
			c := *p
			c.PromptTokens, c.CompletionTokens, c.CostPer1KReq = finite(c.PromptTokens), finite(c.CompletionTokens), finite(c.CostPer1KReq)
			s.Production = &c
		}
		if s.PerTool != nil {
			pt := make(map[string]flywheel.ScoreDetail, len(s.PerTool))
			for k, v := range s.PerTool {
				pt[k] = scoreDetail(v)
			}
			s.PerTool = pt
		}
		out.Summary = &s
	}
	return out
}

func customization(c flywheel.Customization) api.Customization {
	losses := make([]float64, 0, len(c.Losses))
	for _, l := range c.Losses {
		losses = append(losses, finite(l))
	}
	return api.Customization{
		StartedAt:       api.NewTime(c.StartedAt),
		FinishedAt:      api.NewTimePtr(c.FinishedAt),
		RuntimeSeconds:  nonNegative(c.RuntimeSeconds),
		Progress:        percent(c.Progress),
		EpochsCompleted: max(c.EpochsCompleted, 0),
		StepsCompleted:  max(c.StepsCompleted, 0),
		NMPURI:          c.NMPURI,
		CustomizedModel: c.CustomizedModel,
		Error:           strPtr(c.Error),
		ID:              c.ID,
		BaseModel:       c.BaseModel,
		Losses:          losses,
	}
}

func stage(st flywheel.Stage) api.Stage {
	return api.Stage{
		Name:             string(st.Name),
		Status:           string(st.Status),
		Attempts:         st.Attempts,
		Progress:         percent(st.Progress),
		StartedAt:        api.NewTimePtr(st.StartedAt),
		FinishedAt:       api.NewTimePtr(st.FinishedAt),
		TimeLimitSeconds: nonNegative(st.TimeLimitSeconds),
		Error:            strPtr(st.Error),
	}
}

func recommendation(r *flywheel.Recommendation) *flywheel.Recommendation {
	if r == nil {
		return nil
	}
	c := *r
	c.Margin = finite(c.Margin)
	c.CostPerRequest = finitePtr(c.CostPerRequest)
	c.ProductionCostPerRequest = finitePtr(c.ProductionCostPerRequest)
	return &c
}

func datasets(ds []flywheel.Dataset) []api.Dataset {
	out := make([]api.Dataset, 0, len(ds))
	for _, d := range ds {
		out = append(out, api.Dataset{
			Name:       d.Name,
			NumRecords: max(d.NumRecords, 0),
			NMPURI:     d.NMPURI,
			Type:       string(d.Type),
		})
	}
	return out
}

func scoreDetail(d flywheel.ScoreDetail) flywheel.ScoreDetail {
	d.Mean = finite(d.Mean)
	d.StdErr = finite(d.StdErr)
	d.CILow = finite(d.CILow)
	d.CIHigh = finite(d.CIHigh)
	return d
}

func orStatus[S ~string](s, def S) S {
	if s == "" {
		return def
	}
	return s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// finitePtr is finite for an optional value: nil stays nil, NaN or
// infinity becomes nil.
func finitePtr(f *float64) *float64 {
	if f == nil || math.IsNaN(*f) || math.IsInf(*f, 0) {
		return nil
	}
	return f
}

func nonNegative(f float64) float64 {
	return max(finite(f), 0)
}

func percent(f float64) float64 {
	return min(nonNegative(f), 100)
}

// finiteMap copies m without NaN or infinite values; nil becomes {}.
func finiteMap(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}
