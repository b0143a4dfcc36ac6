package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheeltest"
)

// flywheelCmd runs the flywheel command in this process with env as its
// whole environment.
func flywheelCmd(ctx context.Context, env map[string]string, args ...string) (string, string, error) {
	var stdout, stderr flywheeltest.SyncBuffer
	root := newRoot(&stdout, &stderr, func(k string) string { return env[k] })
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return stdout.String(), stderr.String(), err
}

// authEnv is an environment with a fresh data directory (SQLite database).
func authEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"HOME": t.TempDir(), "FLYWHEEL_DATA_DIR": t.TempDir()}
}

// endpointConfig writes a config for the endpoint platform plus the server
// section given.
func endpointConfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	body := "platform: {name: endpoint}\nnims:\n  - {model_name: m, context_length: 8192, endpoint: 'http://127.0.0.1:1/v1'}\n" + server
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

type createdToken struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	Secret string `json:"secret"`
}

func createToken(t *testing.T, env map[string]string, name, scope string, extra ...string) createdToken {
	t.Helper()
	args := append([]string{"tokens", "create", "--name", name, "--scope", scope, "--json"}, extra...)
	out, errOut, err := flywheelCmd(context.Background(), env, args...)
	require.NoError(t, err, errOut)
	var tok createdToken
	require.NoError(t, json.Unmarshal([]byte(out), &tok), out)
	return tok
}

func TestTokensCommand(t *testing.T) {
	t.Parallel()
	env := authEnv(t)
	ctx := context.Background()

	tok := createToken(t, env, "ci", "write", "--expires", "1h")
	require.True(t, strings.HasPrefix(tok.Secret, "fw_"+tok.ID+"_"), tok.Secret)
	require.Equal(t, "write", tok.Scope)

	out, _, err := flywheelCmd(ctx, env, "tokens", "create", "--name", "app", "--scope", "ingest")
	require.NoError(t, err)
	require.Contains(t, out, "shown only now")
	require.Regexp(t, `\n  fw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n`, out)

	out, _, err = flywheelCmd(ctx, env, "tokens", "list")
	require.NoError(t, err)
	require.Contains(t, out, tok.ID)
	require.Contains(t, out, "ingest")
	require.NotContains(t, out, tok.Secret)
	require.NotContains(t, out, "revoked")

	out, _, err = flywheelCmd(ctx, env, "tokens", "revoke", tok.ID)
	require.NoError(t, err)
	require.Contains(t, out, "Revoked token "+tok.ID)
	out, _, err = flywheelCmd(ctx, env, "tokens", "list", "--json")
	require.NoError(t, err)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 2)
	require.NotNil(t, listed[0]["revoked_at"])
	require.Nil(t, listed[1]["revoked_at"])
	require.NotContains(t, out, "hash")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "revoke", "0123456789abcdef"}, "no token has the id"},
		{[]string{"tokens", "create", "--name", "x", "--scope", "root"}, "unknown scope"},
		{[]string{"tokens", "create", "--name", " ", "--scope", "read"}, "--name"},
		{[]string{"tokens", "create", "--scope", "read"}, "name"},
		{[]string{"tokens", "create", "--name", "x", "--scope", "read", "--expires", "-1h"}, "--expires"},
	} {
		_, _, err := flywheelCmd(ctx, env, tc.args...)
		require.Error(t, err, tc.args)
		require.Contains(t, err.Error(), tc.want, tc.args)
	}
}

func TestServeRefusesExposedWithoutAuth(t *testing.T) {
	t.Parallel()
	env := authEnv(t)
	cfg := endpointConfig(t, "server: {auth: {enabled: false}}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		_, _, err := flywheelCmd(ctx, env, "--config", cfg, "serve", "--addr", addr, "--workers", "1")
		require.Error(t, err, addr)
		require.Contains(t, err.Error(), "server.insecure_no_auth: true", addr)
		require.Contains(t, err.Error(), "server.auth.enabled", addr)
	}
}

func TestServeInsecureNoAuthWarns(t *testing.T) {
	t.Parallel()
	env := authEnv(t)
	cfg := endpointConfig(t, "server: {auth: {enabled: false}, insecure_no_auth: true}\n")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr flywheeltest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		root := newRoot(io.Discard, &stderr, func(k string) string { return env[k] })
		root.SetArgs([]string{"--config", cfg, "--log-format", "json", "serve", "--addr", "0.0.0.0:0", "--workers", "1"})
		done <- root.ExecuteContext(ctx)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "AUTHENTICATION IS OFF") }, 30*time.Second, 20*time.Millisecond)
	require.Contains(t, stderr.String(), `"level":"WARN"`)
	// Stop it once it serves: a cancel during start-up ends with the
	// start-up's context error, which is not what this test is about.
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "Flywheel started") }, 30*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeTestCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flywheel test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startServe runs serve in this process until the test ends and waits
// until it answers /healthz through client.
func startServe(t *testing.T, env map[string]string, cfg, base string, client *http.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr flywheeltest.SyncBuffer
	go func() {
		root := newRoot(io.Discard, &stderr, func(k string) string { return env[k] })
		root.SetArgs([]string{"--config", cfg, "serve", "--workers", "1"})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		default:
		}
		if resp, err := client.Get(base + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz within 30s\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestServeTLSWithAuth(t *testing.T) {
	t.Parallel()
	env := authEnv(t)
	certFile, keyFile, pool := writeTestCert(t)
	addr := freePort(t)
	cfg := endpointConfig(t, fmt.Sprintf("server: {addr: '%s', auth: {enabled: true}, tls_cert_file: '%s', tls_key_file: '%s'}\n"+
		"capture: {upstream_url: 'http://127.0.0.1:1/v1'}\n", addr, certFile, keyFile))
	env["FLYWHEEL_CONFIG"] = cfg
	tok := createToken(t, env, "reader", "read")

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		Timeout: 10 * time.Second}
	base := "https://" + addr
	startServe(t, env, cfg, base, client)

	require.Equal(t, http.StatusOK, get(t, client, base+"/readyz", ""))
	require.Equal(t, http.StatusUnauthorized, get(t, client, base+"/api/jobs", ""))
	require.Equal(t, http.StatusUnauthorized, get(t, client, base+"/ui/river/api/jobs", ""))
	require.Equal(t, http.StatusOK, get(t, client, base+"/api/jobs", tok.Secret))
	require.Equal(t, http.StatusForbidden, get(t, client, base+"/ui/river/api/jobs", tok.Secret))
	require.Equal(t, http.StatusUnauthorized, get(t, client, base+"/ui/", ""))
	require.Equal(t, http.StatusOK, get(t, client, base+"/ui/", tok.Secret))

	// The capture proxy: 401 without a token, 403 for a read token; an
	// ingest token gets through to the (unreachable) upstream.
	post := func(token string) int {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(""))
	require.Equal(t, http.StatusForbidden, post(tok.Secret))
	ingest := createToken(t, env, "app", "ingest")
	require.Equal(t, http.StatusBadGateway, post(ingest.Secret))

	// Plain HTTP on the TLS port gets no API answer.
	resp, err := http.Get("http://" + addr + "/api/jobs")
	if err == nil {
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
}

func TestJobsClientSendsToken(t *testing.T) {
	t.Parallel()
	env := authEnv(t)
	addr := freePort(t)
	cfg := endpointConfig(t, fmt.Sprintf("server: {addr: '%s', auth: {enabled: true}}\n", addr))
	env["FLYWHEEL_CONFIG"] = cfg
	writer := createToken(t, env, "writer", "write")
	ingest := createToken(t, env, "app", "ingest")
	startServe(t, env, cfg, "http://"+addr, http.DefaultClient)
	ctx := context.Background()
	server := "http://" + addr

	_, _, err := flywheelCmd(ctx, env, "--server", server, "jobs", "list")
	require.Error(t, err)
	require.Contains(t, err.Error(), "401")

	out, _, err := flywheelCmd(ctx, env, "--server", server, "--token", writer.Secret, "jobs", "list")
	require.NoError(t, err, out)

	withEnv := map[string]string{"FLYWHEEL_TOKEN": writer.Secret}
	for k, v := range env {
		withEnv[k] = v
	}
	_, _, err = flywheelCmd(ctx, withEnv, "--server", server, "jobs", "list")
	require.NoError(t, err)

	_, _, err = flywheelCmd(ctx, env, "--server", server, "--token", ingest.Secret, "jobs", "list")
	require.Error(t, err)
	require.Contains(t, err.Error(), "403")

	_, _, err = flywheelCmd(ctx, env, "tokens", "revoke", writer.ID)
	require.NoError(t, err)
	_, _, err = flywheelCmd(ctx, env, "--server", server, "--token", writer.Secret, "jobs", "list")
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "401") || errors.Is(err, context.Canceled), err.Error())
}
