package stage_test

import (
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
)

var _ stage.Store = (*store.Queries)(nil)
