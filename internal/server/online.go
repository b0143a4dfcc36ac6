package server

import (
	"net/http"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// workloadOnline answers GET /api/workloads/{workload_id}/online[?client_id=C]:
// the rolling online agreement of the workload's active promotions, then
// of its recent ones.
func (s *Server) workloadOnline(w http.ResponseWriter, r *http.Request) {
	if s.opts.Online == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Online evaluation is not available")
		return
	}
	q := &query{r: r}
	workloadID := q.pathID("workload_id")
	clientID := q.text("client_id", flywheel.MaxIDBytes)
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	stats, err := s.opts.Online.OnlineReport(r.Context(), workloadID, clientID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := make([]api.OnlineStats, 0, len(stats))
	for _, st := range stats {
		resp = append(resp, api.NewOnlineStats(st))
	}
	writeJSON(w, http.StatusOK, resp)
}
