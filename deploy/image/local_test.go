package image_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/deploy/image"
)

// fakeRootFS writes a small root file system with what BuildLocal checks
// for, plus a symbolic link, a hard link, a setuid file and a pipe.
func fakeRootFS(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/bin", "data", "home/nonroot", "dev", "proc"} {
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
	require.NoError(t, os.Symlink("/proc/self/fd", filepath.Join(root, "dev/fd")))
	write("proc/version", "not a real proc\n", 0o644)
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(filepath.Join(root, "data"), image.UID, image.GID))
	}
	return root
}

func TestLocalImageBuild(t *testing.T) {
	t.Parallel()
	bin := helloBinary(t)
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

	img := buildValid(t, func() (v1.Image, error) { return image.BuildLocal(spec) })
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
	require.Equal(t, byte(tar.TypeDir), fs["dev"].h.Typeflag)
	require.Equal(t, byte(tar.TypeDir), fs["proc"].h.Typeflag)
	require.NotContains(t, fs, "dev/fd", "/dev is empty: the runtime mounts it")
	require.NotContains(t, fs, "proc/version", "/proc is empty")
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
	bin := helloBinary(t)
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

// TestLocalImageRunsInChroot unpacks the local-platform image that
// FLYWHEEL_LOCAL_IMAGE names (an OCI layout written by scripts/image.sh
// --local) and runs its programs in that root file system with chroot, as
// the image's user and with its environment, since a container cannot be
// started on every build machine: flywheel --version, llama-server
// --version, python3 importing torch, and flywheel doctor finding the local
// platform's llama-server and PyTorch with no problem, and serve answering
// /readyz. It needs root (chroot) and is not
// part of the regular tests: building the image takes minutes.
func TestLocalImageRunsInChroot(t *testing.T) {
	dir := os.Getenv("FLYWHEEL_LOCAL_IMAGE")
	if dir == "" {
		t.Skip("FLYWHEEL_LOCAL_IMAGE is not set: build the image with scripts/image.sh --local (minutes), which runs this test")
	}
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	img := readLayout(t, dir, validate.Fast)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	root := unpackAll(t, img)
	// What a container runtime provides: /proc (the dynamic loader reads
	// /proc/self/exe to resolve llama-server's $ORIGIN run path) and the
	// device nodes programs open.
	proc := filepath.Join(root, "proc")
	require.NoError(t, syscall.Mount("proc", proc, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""))
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(proc, syscall.MNT_DETACH)) })
	for _, d := range []struct {
		name  string
		minor uint32
	}{{"null", 3}, {"zero", 5}, {"urandom", 9}} {
		p := filepath.Join(root, "dev", d.name)
		_ = os.Remove(p)
		require.NoError(t, syscall.Mknod(p, syscall.S_IFCHR|0o666, int(1<<8|d.minor))) // major 1: memory devices
		require.NoError(t, os.Chmod(p, 0o666))
	}

	uid, gid := parseUser(t, cf.Config.User)
	run := func(wantOK bool, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = cf.Config.Env
		cmd.Dir = cf.Config.WorkingDir
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
		if wantOK {
			require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
		}
		return string(out)
	}

	entry := cf.Config.Entrypoint[0]
	out := run(true, entry, "--version")
	require.Contains(t, out, "flywheel version "+cf.Config.Labels["org.opencontainers.image.version"])

	out = run(true, image.LocalInstallDir+"/llama-server/llama-server", "--version")
	require.Contains(t, out, "version:")

	out = run(true, "/usr/bin/python3", "-c", "import numpy, torch; print('torch', torch.__version__, torch.ones(2, 2).sum().item())")
	require.Contains(t, out, "torch ")
	require.Contains(t, out, " 4.0")

	db := "sqlite:" + image.DataDir + "/flywheel.db"
	out = run(true, entry, "migrate", "--db", db)
	require.Contains(t, out, "applied")

	// The defaults: the local platform, whose model files are made in the
	// /data volume on first use.
	out = run(true, entry, "doctor", "--db", db)
	require.Contains(t, out, "Local platform:")
	require.Regexp(t, `(?m)^\s+ok\s+llama-server\s+`+image.LocalInstallDir+`/llama-server/llama-server \(version: `, out)
	require.Regexp(t, `(?m)^\s+ok\s+python3 \+ torch\s+/usr/bin/python3 \(torch `, out)
	require.NotContains(t, out, "PROBLEM")

	// The default command, serve, answers /readyz.
	addr := freeAddr(t)
	serve := exec.Command(entry, append(cf.Config.Cmd, "--addr", addr, "--db", db)...)
	serve.Env = cf.Config.Env
	serve.Dir = cf.Config.WorkingDir
	serve.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	serveUntilReady(t, serve, addr)
	t.Logf("$ %s %s --addr %s --db %s: /readyz 200, stopped on SIGTERM", entry, strings.Join(cf.Config.Cmd, " "), addr, db)
}

// readLayout reads the one image of the OCI layout at dir and checks its
// blobs against their digests (with opts, such as validate.Fast).
func readLayout(t *testing.T, dir string, opts ...validate.Option) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	require.NoError(t, err, "OCI layout %s", dir)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	img, err := p.Image(im.Manifests[0].Digest)
	require.NoError(t, err)
	require.NoError(t, validate.Image(img, opts...), "the layout's blobs match their digests")
	return img
}

func parseUser(t *testing.T, s string) (uint32, uint32) {
	t.Helper()
	u, g, ok := strings.Cut(s, ":")
	require.True(t, ok, "user %q", s)
	uid, err := strconv.ParseUint(u, 10, 32)
	require.NoError(t, err)
	gid, err := strconv.ParseUint(g, 10, 32)
	require.NoError(t, err)
	return uint32(uid), uint32(gid)
}

// unpackAll writes the image's flattened file system into a new directory
// with links, owners and modes.
func unpackAll(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	type dirMode struct {
		path string
		mode os.FileMode
	}
	var dirs []dirMode
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		mode := os.FileMode(h.Mode & 0o777)
		if h.Mode&0o4000 != 0 {
			mode |= os.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			mode |= os.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(p, 0o755))
			dirs = append(dirs, dirMode{p, mode})
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			require.NoError(t, err)
			_, err = io.Copy(f, tr)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		case tar.TypeSymlink:
			_ = os.Remove(p)
			require.NoError(t, os.Symlink(h.Linkname, p))
		case tar.TypeLink:
			_ = os.Remove(p)
			require.NoError(t, os.Link(filepath.Join(root, filepath.Clean("/"+h.Linkname)), p))
		default:
			t.Fatalf("unexpected entry %s of type %c in the image", h.Name, h.Typeflag)
		}
		require.NoError(t, os.Lchown(p, h.Uid, h.Gid))
		if h.Typeflag == tar.TypeReg {
			require.NoError(t, os.Chmod(p, mode)) // after chown, which clears setuid
		}
	}
	for _, d := range dirs {
		require.NoError(t, os.Chmod(d.path, d.mode))
	}
	return root
}
