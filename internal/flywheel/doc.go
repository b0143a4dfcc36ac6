// Package flywheel holds the domain of the data flywheel: runs, candidate
// (NIM) runs, evaluations, customizations, datasets, their statuses, the
// coded errors the API shows, and the small interfaces the adapters implement.
//
// It imports nothing from the rest of the module; every other package points
// at it.
package flywheel
