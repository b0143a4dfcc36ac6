package endpoint_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/endpoint"
)

func TestDeployChecksTheModelIsListed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/models", r.URL.Path)
		require.Equal(t, "Bearer k", r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"object":"list","data":[{"id":"served-model"}]}`))
	}))
	defer srv.Close()
	p := &endpoint.Platform{APIKey: "k"}
	ctx := context.Background()
	for _, tc := range []struct {
		model string
		want  flywheel.DeploymentStatus
	}{
		{model: "served-model", want: flywheel.DeploymentReady},
		{model: "other-model", want: flywheel.DeploymentPending},
	} {
		dep, err := p.Deploy(ctx, flywheel.DeployRequest{Model: flywheel.NIMConfig{ModelName: tc.model, Endpoint: srv.URL + "/v1"}})
		require.NoError(t, err)
		require.Equal(t, tc.want, dep.Status, tc.model)
		require.Equal(t, srv.URL, dep.Endpoint.BaseURL)
	}
	_, err := p.Deploy(ctx, flywheel.DeployRequest{Model: flywheel.NIMConfig{ModelName: "m"}})
	require.ErrorIs(t, err, flywheel.ErrPermanent)
	_, err = p.StartCustomization(ctx, flywheel.CustomizationRequest{})
	require.ErrorIs(t, err, flywheel.ErrPermanent)
}
