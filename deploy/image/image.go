// Package image builds flywheel's server image: an OCI image of the static
// flywheel binary on an empty base (no shell, no package manager), with a
// non-root user, CA certificates and OCI labels. It needs no container
// daemon and pulls nothing: every layer is written here from files on disk.
package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fixed facts of the image.
const (
	// UID and GID of the user the image runs as (distroless's "nonroot").
	UID = 65532
	GID = 65532
	// BinaryPath is where the flywheel binary lives; it is the entrypoint.
	BinaryPath = "/flywheel"
	// DataDir is the data directory (FLYWHEEL_DATA_DIR): mount a volume here.
	DataDir = "/data"
	// HomeDir is the user's home directory.
	HomeDir = "/home/nonroot"
	// CACertsPath is the CA bundle's path, where Go's crypto/x509 looks first.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// Port is the API's port in the image.
	Port = 8000
)

// Spec describes one build.
type Spec struct {
	// Binary is the path of the flywheel binary; it must be a static ELF.
	Binary string
	// CACerts is the path of a PEM bundle of CA certificates.
	CACerts string
	// Version, Source, Licenses and Revision become OCI labels.
	Version  string
	Source   string
	Licenses string
	Revision string
	// Created is the image's creation time (use the commit's time for
	// reproducible builds).
	Created time.Time
	// Arch is the GOARCH of the binary (default amd64).
	Arch string
}

// Labels returns the OCI labels (annotations) of the image.
func (s Spec) Labels() map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "flywheel",
		"org.opencontainers.image.description": "Data flywheel: API, workers, migrations and capture proxy (one binary)",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.source":      s.Source,
		"org.opencontainers.image.licenses":    s.Licenses,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
	}
	if s.Revision != "" {
		l["org.opencontainers.image.revision"] = s.Revision
	}
	return l
}

// CheckStatic returns an error unless the file at path is an ELF executable
// with no dynamic loader and no shared libraries.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("binary %s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked (it has a program interpreter); build it with CGO_ENABLED=0", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("binary %s: read dynamic section: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("binary %s needs shared libraries %v; build it with CGO_ENABLED=0", path, libs)
	}
	return nil
}

// Build returns the image. Its layers are: the base file system (users,
// CA certificates, writable /tmp and /data), then the binary, so that a
// new version changes only the second layer.
func Build(s Spec) (v1.Image, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(s.CACerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	if !bytes.Contains(certs, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate in it", s.CACerts)
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	mtime := s.Created.UTC()

	base := []entry{
		dir("etc", 0o755, 0), dir("etc/ssl", 0o755, 0), dir("etc/ssl/certs", 0o755, 0),
		file("etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/sbin/nologin\n"+
			fmt.Sprintf("nonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, GID, HomeDir))),
		file("etc/group", 0o644, 0, []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID))),
		file("etc/nsswitch.conf", 0o644, 0, []byte("hosts: files dns\n")),
		file(strings.TrimPrefix(CACertsPath, "/"), 0o644, 0, certs),
		dir("home", 0o755, 0), dir(strings.TrimPrefix(HomeDir, "/"), 0o700, UID),
		dir("root", 0o700, 0),
		dir("tmp", 0o1777, 0),
		dir(strings.TrimPrefix(DataDir, "/"), 0o750, UID),
	}
	top := []entry{file(strings.TrimPrefix(BinaryPath, "/"), 0o755, 0, bin)}

	var layers []v1.Layer
	for _, es := range [][]entry{base, top} {
		l, err := layer(es, mtime)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	history := []v1.History{
		{Created: v1.Time{Time: mtime}, CreatedBy: "flywheel-image: base (users, CA certificates, /tmp, /data)"},
		{Created: v1.Time{Time: mtime}, CreatedBy: "flywheel-image: " + BinaryPath},
	}
	return assemble(s, s.Labels(), layers, history, BinaryPath, []string{
		"PATH=/",
		"HOME=" + HomeDir,
		"FLYWHEEL_DATA_DIR=" + DataDir,
		"SSL_CERT_FILE=" + CACertsPath,
	})
}

// check returns an error unless the spec names a version, source and
// licenses and its binary is static; it defaults Arch to amd64.
func (s *Spec) check() error {
	if s.Version == "" || s.Source == "" || s.Licenses == "" {
		return errors.New("image spec: version, source and licenses are required")
	}
	if s.Arch == "" {
		s.Arch = "amd64"
	}
	return CheckStatic(s.Binary)
}

// assemble returns the OCI image of the layers with its configuration: the
// nonroot user, the entrypoint with "serve", the data directory as working
// directory and volume, the API's port, env, the labels (also as manifest
// annotations) and one history entry a layer.
func assemble(s Spec, labels map[string]string, layers []v1.Layer, history []v1.History, entrypoint string, env []string) (v1.Image, error) {
	mtime := s.Created.UTC()
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = s.Arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: mtime}
	cf.Author = s.Source
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, GID),
		Entrypoint:   []string{entrypoint},
		Cmd:          []string{"serve"},
		WorkingDir:   DataDir,
		Env:          env,
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}},
		Volumes:      map[string]struct{}{DataDir: {}},
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
	cf.History = history
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return mutate.Annotations(img, maps.Clone(labels)).(v1.Image), nil
}

type entry struct {
	name string
	mode int64
	uid  int
	dir  bool
	data []byte
}

func dir(name string, mode int64, uid int) entry {
	return entry{name: name, mode: mode, uid: uid, dir: true}
}

func file(name string, mode int64, uid int, data []byte) entry {
	return entry{name: name, mode: mode, uid: uid, data: data}
}

// layer writes the entries into a gzip-compressed OCI layer with fixed
// times and owners, so that the same inputs give the same digest.
func layer(es []entry, mtime time.Time) (v1.Layer, error) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].name < es[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
			h.Name = path.Clean(e.name) + "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}
