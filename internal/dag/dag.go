// Package dag builds the graph of stages of one flywheel run and decides,
// from the stages' states, which stages are ready to run and which must be
// skipped. It is pure: the engine stores the graph and acts on the answers.
//
// The graph, for candidates c1…cn with a deployment budget k:
//
//	initialize ─► create_datasets ─► wait_for_judge ─► per candidate:
//	  spin_up_nim ─► ┬─ run_base_eval ──────────────────────────┬─► shutdown_deployment
//	                 ├─ run_icl_eval ───────────────────────────┤
//	                 └─ start_customization ─► run_customization_eval ┘
//	─► finalize
//
// Candidate i's spin_up_nim also waits for candidate i-k's
// shutdown_deployment, so at most k candidates are deployed at once.
package dag

import (
	"fmt"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Candidate is a candidate's id (its NIMRun id) in configuration order.
type Candidate struct {
	ID                   string
	CustomizationEnabled bool
}

// Build returns the stages of a run, all pending, in display order. budget
// is how many candidates may be deployed at once (at least 1).
func Build(runID string, candidates []Candidate, budget int) []flywheel.Stage {
	if budget < 1 {
		budget = 1
	}
	var out []flywheel.Stage
	add := func(candidate string, name flywheel.StageName, deps ...flywheel.StageDep) {
		out = append(out, flywheel.Stage{RunID: runID, Candidate: candidate, Name: name, Status: flywheel.StagePending,
			Position: len(out), Deps: deps})
	}
	hard := func(candidate string, name flywheel.StageName) flywheel.StageDep {
		return flywheel.StageDep{Candidate: candidate, Name: name, Hard: true}
	}
	soft := func(candidate string, name flywheel.StageName) flywheel.StageDep {
		return flywheel.StageDep{Candidate: candidate, Name: name}
	}
	add("", flywheel.StageInitialize)
	add("", flywheel.StageCreateDatasets, hard("", flywheel.StageInitialize))
	add("", flywheel.StageWaitForJudge, hard("", flywheel.StageCreateDatasets))
	finalDeps := []flywheel.StageDep{soft("", flywheel.StageWaitForJudge)}
	for i, c := range candidates {
		deps := []flywheel.StageDep{hard("", flywheel.StageWaitForJudge)}
		if i >= budget {
			deps = append(deps, soft(candidates[i-budget].ID, flywheel.StageShutdownDeployment))
		}
		add(c.ID, flywheel.StageSpinUpNIM, deps...)
		add(c.ID, flywheel.StageRunBaseEval, hard(c.ID, flywheel.StageSpinUpNIM))
		add(c.ID, flywheel.StageRunICLEval, hard(c.ID, flywheel.StageSpinUpNIM))
		add(c.ID, flywheel.StageStartCustomization, hard(c.ID, flywheel.StageSpinUpNIM))
		add(c.ID, flywheel.StageRunCustomizationEval, hard(c.ID, flywheel.StageStartCustomization))
		add(c.ID, flywheel.StageShutdownDeployment,
			soft(c.ID, flywheel.StageSpinUpNIM), soft(c.ID, flywheel.StageRunBaseEval), soft(c.ID, flywheel.StageRunICLEval),
			soft(c.ID, flywheel.StageRunCustomizationEval))
		finalDeps = append(finalDeps, soft(c.ID, flywheel.StageShutdownDeployment))
	}
	add("", flywheel.StageFinalize, finalDeps...)
	return out
}

// AlwaysRuns reports whether a stage runs even when a dependency failed:
// the stages that release resources and settle statuses.
func AlwaysRuns(name flywheel.StageName) bool {
	return name == flywheel.StageShutdownDeployment || name == flywheel.StageFinalize || name == flywheel.StageCleanup
}

// RunLevel reports whether a failure of the stage fails the whole run.
func RunLevel(name flywheel.StageName) bool {
	return name == flywheel.StageInitialize || name == flywheel.StageCreateDatasets || name == flywheel.StageWaitForJudge
}

// Key identifies a stage within a run.
type Key struct {
	Candidate string
	Name      flywheel.StageName
}

// KeyOf returns a stage's key.
func KeyOf(s flywheel.Stage) Key { return Key{Candidate: s.Candidate, Name: s.Name} }

// Decision says what to do with one pending stage.
type Decision struct {
	Key Key
	// Skip is true when the stage must not run; Reason says why.
	Skip   bool
	Reason string
}

// Frontier returns the pending stages whose dependencies are all done, each
// either to run or to skip. Applying the skips can make more stages ready:
// callers apply the decisions and call Frontier again until it returns none.
func Frontier(stages []flywheel.Stage) []Decision {
	byKey := make(map[Key]flywheel.Stage, len(stages))
	for _, s := range stages {
		byKey[KeyOf(s)] = s
	}
	var out []Decision
	for _, s := range stages {
		if s.Status != flywheel.StagePending {
			continue
		}
		ready, skip, reason := true, false, ""
		for _, d := range s.Deps {
			dep, ok := byKey[Key{Candidate: d.Candidate, Name: d.Name}]
			if !ok {
				continue
			}
			if !dep.Status.Done() {
				ready = false
				break
			}
			if d.Hard && dep.Status != flywheel.StageSucceeded && !skip {
				skip = true
				reason = fmt.Sprintf("skipped: %s %s", d.Name, dep.Status)
			}
		}
		if !ready {
			continue
		}
		if AlwaysRuns(s.Name) {
			skip, reason = false, ""
		}
		out = append(out, Decision{Key: KeyOf(s), Skip: skip, Reason: reason})
	}
	return out
}
