// Package nemo is the NVIDIA NeMo microservices platform (the v1 API): it
// deploys candidate NIMs through Deployment Management, fine-tunes them
// with the Customizer, serves them through the NIM proxy, publishes
// datasets to the Data Store (its Hugging Face Hub-compatible API) and the
// Entity Store, and can run evaluations on the NeMo Evaluator for parity
// with the blueprint.
//
// Platform implements flywheel.Platform, flywheel.DatasetPublisher,
// flywheel.ResourceReleaser and flywheel.Evaluator. Its methods return
// quickly: Deploy and StartCustomization launch remote work and the engine
// polls Deployment and Customization. Only Evaluate blocks, polling its
// job until done or until ctx ends, when it cancels the job remotely.
//
// Every call has a per-attempt timeout; transient failures (5xx, 429,
// timeouts, broken connections) are retried with backoff and jitter; a 4xx
// answer fails at once with an *HTTPError wrapped in flywheel.Permanent (a
// 404 also matches flywheel.ErrNotFound). Creating calls that are not
// idempotent (customization and evaluation jobs) look for the job created
// by an earlier attempt before trying again, so a lost answer never starts
// a second job.
//
// Where the blueprint is wrong this package is not: a "failed" deployment
// is reported at once instead of after an hour, a customization is
// cancelled on the documented path /v1/customization/jobs/{id}/cancel,
// evaluation jobs are cancelled when their run is, "pending" evaluations
// are waited for, a customization config is reused only when it matches,
// and the LLM-judge similarity parser reads "10" as 10.
//
// Package nemotest holds a stateful fake of all six services for tests and
// offline development.
package nemo
