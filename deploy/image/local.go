package image

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fixed facts of the local-platform image.
const (
	// LocalBinaryPath is where the flywheel binary lives in the local image;
	// it is the entrypoint.
	LocalBinaryPath = "/usr/local/bin/flywheel"
	// LocalInstallDir is the local platform's install directory
	// (platform.local.install_dir, FLYWHEEL_LOCAL_DIR): llama-server/ and
	// its shared libraries are below it.
	LocalInstallDir = "/usr/local/lib/flywheel"
)

// Dir is a directory of the build machine copied into the image at Dest.
type Dir struct {
	Src  string
	Dest string
}

// LocalSpec describes one build of the local-platform image: a Debian root
// file system (made with mmdebstrap: python3, python3-torch, the C++
// runtime, the nonroot user and /data), the llama-server build and the
// static flywheel binary, whose embedded trainer runs with the root file
// system's python3.
type LocalSpec struct {
	// Spec gives the binary, the labels, the creation time and the
	// architecture; its CACerts is not used (the root file system has
	// Debian's ca-certificates).
	Spec
	// RootFS is the Debian root file system, the first layer.
	RootFS string
	// Dirs are copied, one layer each, in order, after the root file
	// system (the llama-server build goes to LocalInstallDir/llama-server).
	Dirs []Dir
	// TempDir holds the compressed layers while the image is written
	// (default: the system's); remove it after the image is written.
	TempDir string
}

// Labels returns the OCI labels of the local-platform image.
func (s LocalSpec) Labels() map[string]string {
	l := s.Spec.Labels()
	l["org.opencontainers.image.title"] = "flywheel-local"
	l["org.opencontainers.image.description"] = "Data flywheel with the local platform (llama-server, Debian's PyTorch, the trainer) for a single host"
	return l
}

// BuildLocal returns the local-platform image. Its layers are the root
// file system, then each of Dirs, then the binary, so that a new version of
// flywheel changes only the last, small layer. Every layer is a gzip file in
// TempDir, compressed once; files keep their owners and modes, times are
// Created, so the same inputs give the same digest.
func BuildLocal(s LocalSpec) (v1.Image, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	for _, need := range []string{"etc/passwd", "usr/bin/python3"} {
		if _, err := os.Lstat(filepath.Join(s.RootFS, need)); err != nil {
			return nil, fmt.Errorf("root file system %s: no /%s: %w", s.RootFS, need, err)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(s.RootFS, "etc/passwd"))
	if err != nil {
		return nil, fmt.Errorf("root file system: %w", err)
	}
	if !strings.Contains(string(passwd), fmt.Sprintf(":x:%d:%d:", UID, GID)) {
		return nil, fmt.Errorf("root file system %s: /etc/passwd has no user %d:%d", s.RootFS, UID, GID)
	}
	mtime := s.Created.UTC()

	type part struct {
		src, dest, by string
	}
	parts := []part{{s.RootFS, "/", "mmdebstrap: Debian root file system"}}
	for _, d := range s.Dirs {
		if !path.IsAbs(d.Dest) || path.Clean(d.Dest) == "/" {
			return nil, fmt.Errorf("directory %s: destination %q must be an absolute path below /", d.Src, d.Dest)
		}
		parts = append(parts, part{d.Src, path.Clean(d.Dest), "flywheel-image: " + path.Clean(d.Dest)})
	}
	var layers []v1.Layer
	var history []v1.History
	for _, p := range parts {
		l, err := dirLayer(p.src, p.dest, mtime, s.TempDir)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
		history = append(history, v1.History{Created: v1.Time{Time: mtime}, CreatedBy: p.by})
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	binLayer, err := layer(withParents(LocalBinaryPath, file(strings.TrimPrefix(LocalBinaryPath, "/"), 0o755, 0, bin)), mtime)
	if err != nil {
		return nil, err
	}
	layers = append(layers, binLayer)
	history = append(history, v1.History{Created: v1.Time{Time: mtime}, CreatedBy: "flywheel-image: " + LocalBinaryPath})

	return assemble(s.Spec, s.Labels(), layers, history, LocalBinaryPath, []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + HomeDir,
		"FLYWHEEL_DATA_DIR=" + DataDir,
		"FLYWHEEL_LOCAL_DIR=" + LocalInstallDir,
		"SSL_CERT_FILE=" + CACertsPath,
		"LANG=C.UTF-8",
	})
}

// withParents returns e preceded by the directories above p (root-owned,
// 0755), as a layer needs them.
func withParents(p string, e entry) []entry {
	var es []entry
	for d := path.Dir(strings.TrimPrefix(p, "/")); d != "." && d != ""; d = path.Dir(d) {
		es = append(es, dir(d, 0o755, 0))
	}
	return append(es, e)
}

// dirLayer writes the tree at src, placed at dest in the image, into a
// gzip-compressed layer file in tmpDir and returns the layer. Directories,
// regular files, symbolic links and hard links are kept with their owners
// and permission bits (setuid included); device nodes, sockets and pipes
// are left out, and src's dev, proc and sys are empty (a container runtime
// mounts them). A dest other than /
// gets its parent directories, root-owned.
func dirLayer(src, dest string, mtime time.Time, tmpDir string) (v1.Layer, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", src, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("layer %s: not a directory", src)
	}
	f, err := os.CreateTemp(tmpDir, "flywheel-layer-*.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", src, err)
	}
	name := f.Name()
	fail := func(err error) (v1.Layer, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return nil, fmt.Errorf("layer %s: %w", src, err)
	}
	zw, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return fail(err)
	}
	tw := tar.NewWriter(zw)
	prefix := strings.TrimPrefix(dest, "/")
	if prefix != "" {
		var parents []string
		for d := path.Dir(prefix); d != "." && d != ""; d = path.Dir(d) {
			parents = append(parents, d)
		}
		sort.Strings(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return fail(err)
			}
		}
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if prefix == "" && p != src && d.IsDir() && filepath.Dir(p) == src {
			switch d.Name() {
			case "dev", "proc", "sys":
				// Empty in the image: a runtime mounts them.
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path.Join(prefix, d.Name()) + "/",
					Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
					return err
				}
				return filepath.SkipDir
			}
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if name == "." || name == "" {
			return nil // the root itself
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: mtime, Format: tar.FormatPAX}
		if info.Mode()&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		var ino inode
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(sys.Uid), int(sys.Gid)
			ino = inode{uint64(sys.Dev), sys.Ino} //nolint:unconvert // Dev's type differs by platform
			if info.Mode().IsRegular() && sys.Nlink > 1 {
				if first, ok := seen[ino]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					return tw.WriteHeader(h)
				}
				seen[ino] = name
			}
		}
		switch {
		case info.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
			return tw.WriteHeader(h)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
			return tw.WriteHeader(h)
		case info.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, info.Size()
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			r, err := os.Open(p)
			if err != nil {
				return err
			}
			defer r.Close()
			n, err := io.Copy(tw, r)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if n != info.Size() {
				return fmt.Errorf("%s changed while it was read", p)
			}
			return nil
		default:
			return nil // device, socket or pipe
		}
	})
	if err != nil {
		return fail(err)
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	l, err := tarball.LayerFromFile(name, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		_ = os.Remove(name)
		return nil, fmt.Errorf("layer %s: %w", src, err)
	}
	return l, nil
}
