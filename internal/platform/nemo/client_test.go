package nemo_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

// scripted answers each request with the next status of a script (the
// last one repeats) and counts requests.
func scripted(t *testing.T, delay time.Duration, statuses ...int) (*nemo.Platform, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		code := statuses[min(i, len(statuses)-1)]
		if delay > 0 && i == 0 {
			time.Sleep(delay)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"object":"list","data":[{"id":"m"}],"detail":"scripted"}`))
	}))
	t.Cleanup(srv.Close)
	p, err := nemo.New(nemo.Config{
		NeMo: nemo.Service{BaseURL: srv.URL}, NIM: nemo.Service{BaseURL: srv.URL}, DataStore: nemo.Service{BaseURL: srv.URL},
		Retry:          nemo.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
		AttemptTimeout: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	return p, &n
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		statuses  []int
		delay     time.Duration
		wantErr   bool
		permanent bool
		notFound  bool
		calls     int64
	}{
		{name: "TransientThenSuccess", statuses: []int{503, 502, 200}, calls: 3},
		{name: "TooManyRequestsRetried", statuses: []int{429, 200}, calls: 2},
		{name: "AttemptTimeoutRetried", statuses: []int{200}, delay: 300 * time.Millisecond, calls: 2},
		{name: "GivesUpAfterMaxAttempts", statuses: []int{500}, wantErr: true, calls: 4},
		{name: "BadRequestIsPermanent", statuses: []int{400}, wantErr: true, permanent: true, calls: 1},
		{name: "NotFoundIsPermanentAndNotFound", statuses: []int{404}, wantErr: true, permanent: true, notFound: true, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, n := scripted(t, tt.delay, tt.statuses...)
			ids, err := p.Proxy.Models(t.Context())
			require.Equal(t, tt.calls, n.Load())
			if !tt.wantErr {
				require.NoError(t, err)
				require.Equal(t, []string{"m"}, ids)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.permanent, errors.Is(err, flywheel.ErrPermanent))
			require.Equal(t, tt.notFound, errors.Is(err, flywheel.ErrNotFound))
			var he *nemo.HTTPError
			require.ErrorAs(t, err, &he)
			require.Equal(t, tt.statuses[len(tt.statuses)-1], he.StatusCode)
			require.Equal(t, http.MethodGet, he.Method)
			require.Contains(t, he.Body, "scripted")
		})
	}

	t.Run("ContextCancelStopsRetrying", func(t *testing.T) {
		t.Parallel()
		p, n := scripted(t, 0, 503)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := p.Proxy.Models(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.LessOrEqual(t, n.Load(), int64(1))
	})

	t.Run("DeploymentAlreadyExistsIsSuccess", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"detail":"model deployment already exists"}`))
		}))
		defer srv.Close()
		p, err := nemo.New(nemo.Config{NeMo: nemo.Service{BaseURL: srv.URL}, NIM: nemo.Service{BaseURL: srv.URL},
			DataStore: nemo.Service{BaseURL: srv.URL}})
		require.NoError(t, err)
		require.NoError(t, p.DMS.Create(t.Context(), nemo.CreateDeployment{Name: "m", Namespace: "dfwbp"}))
	})

	t.Run("MissingURLs", func(t *testing.T) {
		t.Parallel()
		_, err := nemo.New(nemo.Config{})
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
		require.ErrorContains(t, err, "nemo_base_url")
		require.ErrorContains(t, err, "nim_base_url")
		require.ErrorContains(t, err, "datastore_base_url")
	})
}

func TestEnsureConfigVersions(t *testing.T) {
	t.Parallel()
	fake := nemotest.New(nemotest.Options{})
	defer fake.Close()
	p := newPlatform(t, fake, nil)
	cfg := func(seq int) nemo.CustomizationConfig {
		return nemo.CustomizationConfig{Namespace: "dfwbp", Target: "meta/llama-3.2-1b-instruct@2.0",
			TrainingOptions: []nemo.TrainingOption{{TrainingType: "sft", FinetuningType: "lora", NumGPUs: 1, NumNodes: 1,
				TensorParallelSize: 1, DataParallelSize: 1, MicroBatchSize: 1}},
			TrainingPrecision: "bf16-mixed", MaxSeqLength: seq}
	}
	ctx := t.Context()
	tests := []struct {
		seq  int
		want string
	}{
		{8192, "llama-3.2-1b-instruct@v1.0.0+dfw"},
		{8192, "llama-3.2-1b-instruct@v1.0.0+dfw"}, // identical: reused
		{4096, "llama-3.2-1b-instruct@v1.0.1+dfw"}, // different: a new version
		{4096, "llama-3.2-1b-instruct@v1.0.1+dfw"},
		{2048, "llama-3.2-1b-instruct@v1.0.2+dfw"},
	}
	for _, tt := range tests {
		name, err := p.Customizer.EnsureConfig(ctx, "meta/llama-3.2-1b-instruct", cfg(tt.seq))
		require.NoError(t, err)
		require.Equal(t, tt.want, name, "max_seq_length %d", tt.seq)
	}
	require.Equal(t, 3, fake.Counts().Created[nemotest.KindConfig])
}

func TestDeploymentName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		model, key string
		shared     bool
		want       string
	}{
		{"meta/llama-3.2-1b-instruct", "k", true, "meta-llama-3.2-1b-instruct"},
		{"meta/llama-3.2-1b-instruct", "run/nim", false, ""},
		{"Org/Model_X", "", false, "org-model-x"},
	}
	for _, tt := range tests {
		got := nemo.DeploymentName(tt.model, tt.key, tt.shared)
		if tt.key != "" && !tt.shared {
			require.Regexp(t, `^meta-llama-3\.2-1b-instruct-[0-9a-f]{8}$`, got)
			require.NotEqual(t, got, nemo.DeploymentName(tt.model, tt.key+"x", false))
			continue
		}
		require.Equal(t, tt.want, got)
	}
	long := nemo.DeploymentName("org/a-very-long-model-name-that-goes-on-and-on-and-on-forever-and-ever", "key", false)
	require.LessOrEqual(t, len(long), 63)
}

func TestTokensFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NVIDIA_API_KEY": "nv", "NIM_API_KEY": "nim", "HF_TOKEN": "hf"}
	c := nemo.Config{NeMo: nemo.Service{Token: "set"}}.TokensFromEnv(func(k string) string { return env[k] })
	require.Equal(t, "set", c.NeMo.Token, "a token already set wins")
	require.Equal(t, "nim", c.NIM.Token)
	require.Equal(t, "hf", c.DataStore.Token)
	c = nemo.Config{}.TokensFromEnv(func(k string) string { return env[k] })
	require.Equal(t, "nv", c.NeMo.Token)
}
