package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8000": true, "127.5.6.7:1": true, "[::1]:8000": true, "localhost:8000": true, "LOCALHOST:80": true,
		"0.0.0.0:8000": false, ":8000": false, "[::]:8000": false, "10.0.0.5:8000": false, "flywheel.example:8000": false,
		"nonsense": false,
	} {
		require.Equal(t, want, LoopbackAddr(addr), addr)
	}
}

func TestServerAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		yaml     string
		auth     bool
		problems []string
		message  string
	}{
		{name: "LoopbackDefaultsOff", yaml: "server: {addr: 127.0.0.1:8000}", auth: false},
		{name: "ExposedDefaultsOn", yaml: "server: {addr: 0.0.0.0:8000}", auth: true},
		{name: "LoopbackOnWhenAsked", yaml: "server: {addr: 127.0.0.1:8000, auth: {enabled: true}}", auth: true},
		{name: "ExposedOffRefused", yaml: "server: {addr: 0.0.0.0:8000, auth: {enabled: false}}",
			problems: []string{"server.auth.enabled"}, message: "server.insecure_no_auth: true"},
		{name: "ExposedOffWithOptOut", yaml: "server: {addr: ':8000', insecure_no_auth: true, auth: {enabled: false}}", auth: false},
		{name: "TLSHalf", yaml: "server: {tls_cert_file: cert.pem}", problems: []string{"server.tls_key_file"}},
		{name: "TLSOtherHalf", yaml: "server: {tls_key_file: key.pem}", problems: []string{"server.tls_cert_file"}},
		{name: "ShortSession", yaml: "server: {auth: {session_ttl: 5s}}", problems: []string{"server.auth.session_ttl"}},
		{name: "TokensFile", yaml: "server: {addr: 0.0.0.0:8000, auth: {tokens_file: /etc/flywheel/tokens}}", auth: true},
		{name: "TokensFileAuthOff", yaml: "server: {addr: 127.0.0.1:8000, auth: {tokens_file: /etc/flywheel/tokens}}",
			problems: []string{"server.auth.tokens_file"}, message: "set server.auth.enabled: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tc.yaml), testEnv())
			if err == nil {
				err = c.Validate()
			}
			if tc.problems != nil {
				require.Equal(t, tc.problems, fieldsOf(err))
				require.True(t, strings.Contains(err.Error(), tc.message), err.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.auth, c.Server.AuthEnabled())
		})
	}

	c := Default()
	require.Equal(t, 12*time.Hour, c.Server.Auth.SessionTTL)
	require.False(t, c.Server.Auth.MetricsPublic)
	require.False(t, c.Server.TLS())
}

func TestTokensFileEnv(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("server: {addr: 0.0.0.0:8000, auth: {tokens_file: /from/file}}"),
		envOf(map[string]string{"HOME": "/home/test", EnvTokensFile: "/from/env"}))
	require.NoError(t, err)
	require.Equal(t, "/from/env", c.Server.Auth.TokensFile)
	c, err = Parse([]byte("server: {addr: 0.0.0.0:8000, auth: {tokens_file: /from/file}}"), testEnv())
	require.NoError(t, err)
	require.Equal(t, "/from/file", c.Server.Auth.TokensFile)
}
