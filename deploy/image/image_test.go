package image_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/deploy/image"
)

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// goBuild builds the Go package pkg (run in dir) as a static binary.
func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, b)
	return out
}

// helloBinary builds a small static program.
func helloBinary(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644))
	return goBuild(t, src, ".")
}

// buildValid builds an image twice, checks that both have the same digest
// and that, written to an OCI layout and read back, digests, sizes and diff
// ids agree with the blobs, as a registry checks them; it returns the image.
func buildValid(t *testing.T, build func() (v1.Image, error)) v1.Image {
	t.Helper()
	img, err := build()
	require.NoError(t, err)
	again, err := build()
	require.NoError(t, err)
	d1, err := img.Digest()
	require.NoError(t, err)
	d2, err := again.Digest()
	require.NoError(t, err)
	require.Equal(t, d1, d2, "the same inputs give the same image")
	lp, err := layout.Write(t.TempDir(), empty.Index)
	require.NoError(t, err)
	require.NoError(t, lp.AppendImage(img))
	back, err := lp.Image(d1)
	require.NoError(t, err)
	require.NoError(t, validate.Image(back))
	return img
}

// serveUntilReady starts serve, waits until /readyz at addr answers 200,
// stops it with SIGTERM and checks that it stops cleanly; it returns the
// /readyz body.
func serveUntilReady(t *testing.T, serve *exec.Cmd, addr string) string {
	t.Helper()
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	require.NoError(t, serve.Start())
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() { _ = serve.Process.Kill() })

	deadline := time.After(90 * time.Second)
	var body string
	for ready := false; !ready; {
		select {
		case err := <-exited:
			t.Fatalf("serve exited before it was ready: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("/readyz did not answer 200 in 90 s\n%s", logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if ready = resp.StatusCode == http.StatusOK; ready {
			body = string(b)
		}
	}

	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "serve stops cleanly on SIGTERM\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop within 60 s of SIGTERM\n%s", logs.String())
	}
	return body
}

// freeAddr returns a local TCP address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func testCerts(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(p, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644))
	return p
}

// files reads the flattened file system of img: name → header and content.
func files(t *testing.T, img v1.Image) map[string]fsEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	m := map[string]fsEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		m[strings.TrimSuffix(h.Name, "/")] = fsEntry{h: h, data: b}
	}
}

type fsEntry struct {
	h    *tar.Header
	data []byte
}

func TestImageBuild(t *testing.T) {
	t.Parallel()
	bin := helloBinary(t)
	certs := testCerts(t)
	spec := image.Spec{Binary: bin, CACerts: certs, Version: "1.2.3", Source: "https://example.com/flywheel",
		Licenses: "Apache-2.0", Revision: "abc", Created: created}

	img := buildValid(t, func() (v1.Image, error) { return image.Build(spec) })
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 2)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, "65532:65532", cf.Config.User)
	require.Equal(t, []string{"/flywheel"}, cf.Config.Entrypoint)
	require.Equal(t, "linux", cf.OS)
	require.Contains(t, cf.Config.Env, "FLYWHEEL_DATA_DIR=/data")
	for k, v := range map[string]string{"version": "1.2.3", "source": "https://example.com/flywheel",
		"licenses": "Apache-2.0", "revision": "abc", "created": "2026-01-02T03:04:05Z"} {
		require.Equal(t, v, cf.Config.Labels["org.opencontainers.image."+k], k)
	}
	m, err := img.Manifest()
	require.NoError(t, err)
	require.Equal(t, "1.2.3", m.Annotations["org.opencontainers.image.version"])
	require.EqualValues(t, "application/vnd.oci.image.manifest.v1+json", m.MediaType)

	fs := files(t, img)
	require.Contains(t, string(fs["etc/passwd"].data), "nonroot:x:65532:65532:")
	want, err := os.ReadFile(certs)
	require.NoError(t, err)
	require.Equal(t, want, fs["etc/ssl/certs/ca-certificates.crt"].data)
	binData, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.True(t, bytes.Equal(binData, fs["flywheel"].data))
	require.EqualValues(t, 0o755, fs["flywheel"].h.Mode&0o7777)
	require.EqualValues(t, 0o1777, fs["tmp"].h.Mode&0o7777)
	require.Equal(t, 65532, fs["data"].h.Uid)
	for name := range fs {
		require.False(t, strings.HasPrefix(name, "bin") || strings.HasPrefix(name, "usr"), "no shell or tools: %s", name)
	}
}

func TestImageRefusesNonStaticBinaries(t *testing.T) {
	t.Parallel()
	certs := testCerts(t)
	text := filepath.Join(t.TempDir(), "flywheel")
	require.NoError(t, os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755))
	_, err := image.Build(image.Spec{Binary: text, CACerts: certs, Version: "1", Source: "s", Licenses: "l", Created: created})
	require.ErrorContains(t, err, "not an ELF executable")

	// Any dynamically linked program of the system: a Debian machine has ls.
	_, err = image.Build(image.Spec{Binary: "/bin/ls", CACerts: certs, Version: "1", Source: "s", Licenses: "l", Created: created})
	require.ErrorContains(t, err, "dynamically linked")
	_, err = image.Build(image.Spec{Binary: "/bin/ls", CACerts: certs, Created: created})
	require.ErrorContains(t, err, "required")
}

// TestImageRunsFromUnpackedRootFS unpacks flywheel's server image into a
// directory and runs its entrypoint from there, with the image's
// environment: --version, migrate, and serve answering /readyz on SQLite.
// The image is the OCI layout FLYWHEEL_IMAGE names (scripts/image.sh sets
// it); without it the test builds the image from this checkout.
func TestImageRunsFromUnpackedRootFS(t *testing.T) {
	t.Parallel()
	var img v1.Image
	if dir := os.Getenv("FLYWHEEL_IMAGE"); dir != "" {
		img = readLayout(t, dir)
	} else {
		bin := goBuild(t, "../..", "./cmd/flywheel")
		// The label is what the binary says, as scripts/image.sh does it.
		v, err := exec.Command(bin, "--version").Output()
		require.NoError(t, err)
		fields := strings.Fields(string(v))
		require.NotEmpty(t, fields)
		img, err = image.Build(image.Spec{Binary: bin, CACerts: testCerts(t), Version: fields[len(fields)-1],
			Source: "https://github.com/flywheel-go/flywheel", Licenses: "NOASSERTION", Created: created})
		require.NoError(t, err)
	}
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	root := unpack(t, img)
	require.NoError(t, image.CheckStatic(filepath.Join(root, "flywheel")), "the image's binary is static")
	_, err = os.Stat(filepath.Join(root, "bin", "sh"))
	require.ErrorIs(t, err, os.ErrNotExist, "no shell in the image")

	// The image's environment, its paths moved under the unpacked root.
	var env []string
	for _, kv := range cf.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(v, "/") {
			v = filepath.Join(root, v)
		}
		env = append(env, k+"="+v)
	}
	entry := filepath.Join(root, cf.Config.Entrypoint[0])
	run := func(args ...string) string {
		cmd := exec.Command(entry, args...)
		cmd.Env = env
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "flywheel %s: %s", strings.Join(args, " "), out)
		return string(out)
	}

	out := run("--version")
	require.Contains(t, out, "flywheel version "+cf.Config.Labels["org.opencontainers.image.version"])

	db := "sqlite:" + filepath.Join(root, "data", "flywheel.db")
	out = run("migrate", "--db", db)
	require.Contains(t, out, "applied")
	out = run("migrate", "--db", db)
	require.Contains(t, out, "up to date")

	addr := freeAddr(t)
	serve := exec.Command(entry, "serve", "--addr", addr, "--db", db)
	serve.Env = env
	serve.Dir = root
	require.Contains(t, serveUntilReady(t, serve, addr), `"ready"`)
}

// unpack writes the image's flattened file system into a new directory.
func unpack(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return root
		}
		require.NoError(t, err)
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(p, 0o755))
			require.NoError(t, os.Chmod(p, os.FileMode(h.Mode&0o777)|0o700))
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode&0o777))
			require.NoError(t, err)
			_, err = io.Copy(f, tr)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		default:
			t.Fatalf("unexpected entry %s of type %c in the image", h.Name, h.Typeflag)
		}
	}
}
