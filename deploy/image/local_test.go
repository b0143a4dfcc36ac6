package image_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/deploy/image"
)

// fakeRootFS writes a small root file system with what BuildLocal checks
// for, plus a symbolic link, a hard link, a setuid file and a pipe.
func fakeRootFS(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/bin", "data", "home/nonroot"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	write := func(name, data string, mode os.FileMode) {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(data), mode))
		require.NoError(t, os.Chmod(filepath.Join(root, name), mode))
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nnonroot:x:65532:65532::/home/nonroot:/usr/sbin/nologin\n", 0o644)
	write("usr/bin/python3.11", "#!python\n", 0o755)
	require.NoError(t, os.Symlink("python3.11", filepath.Join(root, "usr/bin/python3")))
	write("usr/bin/su", "setuid\n", 0o755|os.ModeSetuid)
	require.NoError(t, os.Link(filepath.Join(root, "usr/bin/python3.11"), filepath.Join(root, "usr/bin/python3.11-hard")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "data/fifo"), 0o600))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(filepath.Join(root, "data"), image.UID, image.GID))
	}
	return root
}

func TestLocalImageBuild(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644))
	bin := goBuild(t, src, ".")
	root := fakeRootFS(t)
	llama := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(llama, "llama-server"), []byte("\x7fELF"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(llama, "libggml-base.so"), []byte("lib"), 0o644))
	spec := image.LocalSpec{
		Spec: image.Spec{Binary: bin, Version: "1.2.3", Source: "https://example.com/flywheel",
			Licenses: "Apache-2.0", Created: created},
		RootFS:  root,
		Dirs:    []image.Dir{{Src: llama, Dest: image.LocalInstallDir + "/llama-server"}},
		TempDir: t.TempDir(),
	}

	img, err := image.BuildLocal(spec)
	require.NoError(t, err)
	again, err := image.BuildLocal(spec)
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

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3, "root file system, llama-server, binary")
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, []string{image.LocalBinaryPath}, cf.Config.Entrypoint)
	require.Equal(t, "65532:65532", cf.Config.User)
	require.Contains(t, cf.Config.Env, "FLYWHEEL_LOCAL_DIR="+image.LocalInstallDir)
	require.Contains(t, cf.Config.Env, "FLYWHEEL_DATA_DIR=/data")
	require.Equal(t, "flywheel-local", cf.Config.Labels["org.opencontainers.image.title"])
	require.Equal(t, "1.2.3", cf.Config.Labels["org.opencontainers.image.version"])
	require.Len(t, cf.History, 3)

	fs := files(t, img)
	require.Equal(t, byte(tar.TypeSymlink), fs["usr/bin/python3"].h.Typeflag)
	require.Equal(t, "python3.11", fs["usr/bin/python3"].h.Linkname)
	require.Equal(t, byte(tar.TypeLink), fs["usr/bin/python3.11-hard"].h.Typeflag, "a hard link is stored once")
	require.Equal(t, "usr/bin/python3.11", fs["usr/bin/python3.11-hard"].h.Linkname)
	require.EqualValues(t, 0o4755, fs["usr/bin/su"].h.Mode&0o7777, "setuid kept")
	require.NotContains(t, fs, "data/fifo", "pipes and devices are left out")
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(root, "data"), &st))
	require.EqualValues(t, st.Uid, fs["data"].h.Uid, "owners kept")
	require.Equal(t, []byte("lib"), fs["usr/local/lib/flywheel/llama-server/libggml-base.so"].data)
	require.EqualValues(t, 0o755, fs["usr/local/lib/flywheel/llama-server/llama-server"].h.Mode&0o7777)
	require.Equal(t, byte(tar.TypeDir), fs["usr/local/lib/flywheel"].h.Typeflag, "parents of an added directory are in its layer")
	binData, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.Equal(t, binData, fs["usr/local/bin/flywheel"].data)
	require.Equal(t, created, fs["usr/local/bin/flywheel"].h.ModTime.UTC())
}

func TestLocalImageRefusesBadInput(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	bin := goBuild(t, src, ".")
	base := image.Spec{Binary: bin, Version: "1", Source: "s", Licenses: "l", Created: created}

	_, err := image.BuildLocal(image.LocalSpec{Spec: base, RootFS: t.TempDir()})
	require.ErrorContains(t, err, "no /etc/passwd")

	root := fakeRootFS(t)
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644))
	_, err = image.BuildLocal(image.LocalSpec{Spec: base, RootFS: root})
	require.ErrorContains(t, err, "no user 65532:65532")

	_, err = image.BuildLocal(image.LocalSpec{Spec: base, RootFS: fakeRootFS(t), Dirs: []image.Dir{{Src: t.TempDir(), Dest: "relative"}}})
	require.ErrorContains(t, err, "must be an absolute path")

	_, err = image.BuildLocal(image.LocalSpec{Spec: base, RootFS: fakeRootFS(t), Dirs: []image.Dir{{Src: "/nonexistent-dir", Dest: "/opt/x"}}})
	require.ErrorContains(t, err, "/nonexistent-dir")

	_, err = image.BuildLocal(image.LocalSpec{Spec: image.Spec{Binary: "/bin/ls", Version: "1", Source: "s", Licenses: "l"}, RootFS: fakeRootFS(t)})
	require.ErrorContains(t, err, "dynamically linked")
}
