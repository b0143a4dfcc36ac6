package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGuardGatewayUploads checks the OpenAI gateway's rule: an SDK's file
// upload (multipart/form-data, no Origin, no Sec-Fetch-Site) passes under
// /v1/ with a bearer Authorization header, which a page cannot make a
// browser send cross-site; everything else stays refused.
func TestGuardGatewayUploads(t *testing.T) {
	t.Parallel()
	const multipart = "multipart/form-data; boundary=x"
	const form = "--x\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--x--\r\n"
	tests := []struct {
		name, method, target string
		header               []string
		status               int // 0: reaches the gateway
	}{
		{"SDKFileUpload", "POST", "/v1/files", []string{"Content-Type", multipart, "Authorization", "Bearer sk-anything"}, 0},
		{"SDKAudioUpload", "POST", "/v1/audio/transcriptions", []string{"Content-Type", multipart, "Authorization", "bearer fw_token"}, 0},
		{"SDKUploadPart", "POST", "/v1/uploads/up_1/parts", []string{"Content-Type", multipart, "Authorization", "Bearer k"}, 0},
		{"NoAuthorization", "POST", "/v1/files", []string{"Content-Type", multipart}, http.StatusUnsupportedMediaType},
		{"BasicAuthorizationABrowserMayAdd", "POST", "/v1/files", []string{"Content-Type", multipart, "Authorization", "Basic dTpw"}, http.StatusUnsupportedMediaType},
		{"TextPlainNoAuthorization", "POST", "/v1/chat/completions", []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"BearerButCrossSite", "POST", "/v1/files", []string{"Content-Type", multipart, "Authorization", "Bearer k", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"BearerButForeignOrigin", "POST", "/v1/files", []string{"Content-Type", multipart, "Authorization", "Bearer k", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"BearerOutsideGateway", "POST", "/api/logs", []string{"Content-Type", multipart, "Authorization", "Bearer k"}, http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := setupGuard(t)
			resp := do(t, g.handler, tt.method, tt.target, form, tt.header...)
			if tt.status == 0 {
				require.Equal(t, http.StatusOK, resp.status, string(resp.body))
				require.Equal(t, int64(1), g.capture.n.Load())
				return
			}
			require.Equal(t, tt.status, resp.status, string(resp.body))
			require.NotEmpty(t, resp.detail(t))
			require.Zero(t, g.effects(), "a refused request reaches no handler")
		})
	}
}
