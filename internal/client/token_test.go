package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/client"
)

func TestWithTokenSendsBearer(t *testing.T) {
	t.Parallel()
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jobs":[]}`))
	}))
	t.Cleanup(srv.Close)
	plain, err := client.New(srv.URL, nil)
	require.NoError(t, err)
	withToken := plain.WithToken("fw_0123456789abcdef_secret")

	_, err = withToken.ListJobs(context.Background(), client.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, "Bearer fw_0123456789abcdef_secret", <-got)
	// The original client is unchanged.
	_, err = plain.ListJobs(context.Background(), client.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, <-got)
}
