// Package e2e holds end-to-end tests of the whole flywheel: the real app
// (store, engine, stages, dataset builder, in-process evaluator, REST API)
// on SQLite and on Postgres, with the NeMo platform's real clients talking
// to the stateful NeMo fake (package nemotest). It has no code of its own.
package e2e
