// Command flywheel-image writes flywheel's server image, without a
// container daemon and without pulling a base image, as an OCI image layout
// directory and/or a docker-archive tar ("docker load", "podman load",
// "skopeo copy oci:DIR docker://REGISTRY/flywheel:TAG").
//
// With --rootfs it writes the local-platform image instead: the given
// Debian root file system (made with mmdebstrap), the directories given by
// --add SRC=DEST (the llama-server build), then the binary.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/flywheel-go/flywheel/deploy/image"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flywheel-image:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("flywheel-image", flag.ContinueOnError)
	var (
		spec    image.Spec
		created string
		ociDir  string
		archive string
		tag     string
		rootfs  string
		adds    dirsFlag
		tmpDir  string
	)
	fs.StringVar(&spec.Binary, "binary", "", "static flywheel binary (CGO_ENABLED=0)")
	fs.StringVar(&spec.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates")
	fs.StringVar(&spec.Version, "version", "", "image version label (flywheel --version)")
	fs.StringVar(&spec.Source, "source", "https://github.com/flywheel-go/flywheel", "source label")
	fs.StringVar(&spec.Licenses, "licenses", "NOASSERTION", "SPDX license expression label")
	fs.StringVar(&spec.Revision, "revision", "", "source revision label (git commit)")
	fs.StringVar(&spec.Arch, "arch", "amd64", "GOARCH of the binary")
	fs.StringVar(&created, "created", "", "creation time: RFC 3339 or Unix seconds (default: SOURCE_DATE_EPOCH, else now)")
	fs.StringVar(&ociDir, "oci-layout", "", "write an OCI image layout to this directory (replaced)")
	fs.StringVar(&archive, "docker-archive", "", "write a docker-archive tar to this file")
	fs.StringVar(&tag, "tag", "", "image reference (default flywheel:VERSION, flywheel-local:VERSION with --rootfs)")
	fs.StringVar(&rootfs, "rootfs", "", "build the local-platform image on this Debian root file system (first layer)")
	fs.Var(&adds, "add", "with --rootfs: copy directory SRC to DEST in the image, one layer (SRC=DEST, repeatable)")
	fs.StringVar(&tmpDir, "tmp", "", "with --rootfs: directory for the compressed layers while writing (default: the system's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if spec.Binary == "" || spec.Version == "" {
		return errors.New("--binary and --version are required")
	}
	if ociDir == "" && archive == "" {
		return errors.New("give --oci-layout DIR and/or --docker-archive FILE")
	}
	if created == "" {
		created = os.Getenv("SOURCE_DATE_EPOCH")
	}
	t, err := parseTime(created)
	if err != nil {
		return err
	}
	spec.Created = t
	if len(adds) > 0 && rootfs == "" {
		return errors.New("--add needs --rootfs")
	}
	if tag == "" {
		tag = "flywheel:" + spec.Version
		if rootfs != "" {
			tag = "flywheel-local:" + spec.Version
		}
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	var img v1.Image
	if rootfs == "" {
		img, err = image.Build(spec)
	} else {
		// The layers are files in a temporary directory until written.
		tmp, terr := os.MkdirTemp(tmpDir, "flywheel-image-")
		if terr != nil {
			return terr
		}
		defer os.RemoveAll(tmp)
		img, err = image.BuildLocal(image.LocalSpec{Spec: spec, RootFS: rootfs, Dirs: adds, TempDir: tmp})
	}
	if err != nil {
		return err
	}
	if ociDir != "" {
		if err := os.RemoveAll(ociDir); err != nil {
			return fmt.Errorf("replace %s: %w", ociDir, err)
		}
		p, err := layout.Write(ociDir, empty.Index)
		if err != nil {
			return fmt.Errorf("write OCI layout: %w", err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref.TagStr(),
			"io.containerd.image.name":          ref.Name(),
		}), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: spec.Arch})); err != nil {
			return fmt.Errorf("write OCI layout: %w", err)
		}
	}
	if archive != "" {
		if err := tarball.WriteToFile(archive, ref, img); err != nil {
			return fmt.Errorf("write docker archive: %w", err)
		}
	}
	return summary(stdout, img, ref.Name(), ociDir, archive)
}

// dirsFlag is the repeatable --add SRC=DEST.
type dirsFlag []image.Dir

func (d *dirsFlag) String() string { return fmt.Sprint(*d) }

func (d *dirsFlag) Set(v string) error {
	src, dest, ok := strings.Cut(v, "=")
	if !ok || src == "" || !strings.HasPrefix(dest, "/") {
		return fmt.Errorf("%q: want SRC=DEST with an absolute DEST", v)
	}
	*d = append(*d, image.Dir{Src: src, Dest: dest})
	return nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--created %q: want RFC 3339 or Unix seconds", s)
	}
	return t.UTC(), nil
}

// summary prints the image's digest, its layers and their sizes.
func summary(w io.Writer, img v1.Image, ref, ociDir, archive string) error {
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "image %s@%s\n", ref, digest)
	var comp, uncomp int64
	for i, l := range layers {
		c, err := l.Size()
		if err != nil {
			return err
		}
		u, err := uncompressedSize(l)
		if err != nil {
			return err
		}
		comp += c
		uncomp += u
		fmt.Fprintf(w, "  layer %d: %s compressed, %s unpacked  (%s)\n", i+1, mb(c), mb(u), cf.History[i].CreatedBy)
	}
	fmt.Fprintf(w, "  total: %d layers, %s compressed, %s unpacked\n", len(layers), mb(comp), mb(uncomp))
	if ociDir != "" {
		fmt.Fprintf(w, "  OCI layout: %s\n", ociDir)
	}
	if archive != "" {
		fmt.Fprintf(w, "  docker archive: %s\n", archive)
	}
	return nil
}

func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
