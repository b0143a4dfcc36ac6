#!/usr/bin/env bash
# image.sh builds flywheel's server image without a container daemon and
# without pulling a base image: a static binary (CGO_ENABLED=0; the SQLite
# driver is pure Go) on an empty base with a non-root user (65532), CA
# certificates and OCI labels, written by deploy/cmd/flywheel-image as an OCI
# image layout and a docker-archive tar. Then it checks the image: it unpacks
# its layers into a temporary root file system and runs the binary from there
# (--version, migrate and serve answering /readyz on SQLite), as a container
# cannot be started on every build machine.
#
# Usage: scripts/image.sh [--no-check] [--local]
#   --local     also build the local-platform image (llama-server, Debian's
#               PyTorch, the trainer): a Debian root file system made with
#               mmdebstrap from the apt mirror (no registry, no daemon; needs
#               root), the llama-server of scripts/install-local.sh (built
#               when missing) and the binary; then it runs them in the
#               unpacked image with chroot. Takes minutes (see README)
#
# Environment:
#   OUT         output directory (default dist/image): oci/ (OCI layout),
#               flywheel.tar (docker archive), flywheel (the binary)
#   TAG         image reference (default flywheel:<version>)
#   LICENSES    SPDX license label (default NOASSERTION)
#   GOARCH      target architecture (default: this machine's)
#   With --local (written to OUT: local-oci/, flywheel-local.tar):
#   FLYWHEEL_LOCAL_DIR  where llama-server is installed (default
#               /usr/local/lib/flywheel)
#   LOCAL_ROOTFS  keep the Debian root file system here and reuse it when
#               it exists (default: made in OUT and removed afterwards)
#   LOCAL_TAG   image reference (default flywheel-local:<version>)
#   SUITE, MIRROR  Debian suite and mirror (default bookworm,
#               http://deb.debian.org/debian); llama-server must have been
#               built on a system no newer than SUITE (its C++ runtime)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK=1
LOCAL=0
for a in "$@"; do
	case "$a" in
	--no-check) CHECK=0 ;;
	--local) LOCAL=1 ;;
	*) echo "usage: scripts/image.sh [--no-check] [--local]" >&2; exit 2 ;;
	esac
done

OUT="${OUT:-dist/image}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
ARCH="${GOARCH:-$(go env GOARCH)}"
REV="$(git rev-parse HEAD 2>/dev/null || true)"
# Reproducible: the image's times are the commit's.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

echo "==> static binary ($ARCH)"
start=$SECONDS
CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" go build -trimpath -ldflags='-s -w' -o "$OUT/flywheel" ./cmd/flywheel
VERSION="$("$OUT/flywheel" --version | awk '{print $NF}')"
echo "    flywheel $VERSION in $((SECONDS - start)) s"

echo "==> image"
(cd deploy && go run ./cmd/flywheel-image \
	--binary "$OUT/flywheel" --version "$VERSION" --revision "$REV" --arch "$ARCH" \
	--licenses "${LICENSES:-NOASSERTION}" --tag "${TAG:-flywheel:$VERSION}" \
	--oci-layout "$OUT/oci" --docker-archive "$OUT/flywheel.tar")

if [ "$CHECK" -eq 1 ]; then
	echo "==> run the binary from the unpacked image"
	(cd deploy && FLYWHEEL_IMAGE="$OUT/oci" go test -count=1 -run 'TestImage' ./image)
fi

if [ "$LOCAL" -eq 1 ]; then
	# The local-platform image: a Debian root file system made by mmdebstrap
	# from the apt mirror (no registry, no daemon; root, as in CI), the
	# llama-server build of scripts/install-local.sh, then the binary.
	echo "==> local-platform image"
	if [ "$(id -u)" -ne 0 ] || ! command -v mmdebstrap >/dev/null 2>&1; then
		echo "the local image needs root and mmdebstrap (apt-get install mmdebstrap)" >&2
		exit 1
	fi
	LOCAL_DIR="${FLYWHEEL_LOCAL_DIR:-/usr/local/lib/flywheel}"
	if [ ! -x "$LOCAL_DIR/llama-server/llama-server" ]; then
		echo "    no llama-server in $LOCAL_DIR: scripts/install-local.sh builds it"
		FLYWHEEL_LOCAL_DIR="$LOCAL_DIR" scripts/install-local.sh
	fi
	lstart=$SECONDS
	ROOTFS="${LOCAL_ROOTFS:-}"
	if [ -z "$ROOTFS" ] || [ ! -e "$ROOTFS/usr/bin/python3" ]; then
		ROOTFS="${ROOTFS:-$OUT/local-rootfs}"
		rm -rf "$ROOTFS"
		echo "    mmdebstrap ${SUITE:-bookworm} → $ROOTFS"
		# Run-time needs only: llama-server links libstdc++ and libgcc_s
		# (ldd); the trainer imports torch and numpy. No docs, man pages or
		# locales, nor libtorch's test programs; mmdebstrap removes apt's lists and caches afterwards.
		mmdebstrap --variant=minbase --mode=root \
			--include=ca-certificates,python3,python3-torch,python3-numpy,libopenblas0-pthread,libgomp1,libstdc++6,libgcc-s1 \
			--aptopt='APT::Install-Recommends "false"' \
			--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/lib/libtorch-test/*' \
			--customize-hook='chroot "$1" groupadd --gid 65532 nonroot' \
			--customize-hook='chroot "$1" useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot' \
			--customize-hook='install -d -o 65532 -g 65532 -m 0750 "$1/data"' \
			--customize-hook='chroot "$1" apt-get clean' \
			--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/debconf/*-old "$1"/var/log/*.log' \
			"${SUITE:-bookworm}" "$ROOTFS" "${MIRROR:-http://deb.debian.org/debian}"
		[ -n "${LOCAL_ROOTFS:-}" ] || trap 'rm -rf "$ROOTFS"' EXIT
		echo "    root file system in $((SECONDS - lstart)) s ($(du -sh "$ROOTFS" | cut -f1))"
	fi
	(cd deploy && go run ./cmd/flywheel-image \
		--rootfs "$ROOTFS" --add "$LOCAL_DIR/llama-server=/usr/local/lib/flywheel/llama-server" \
		--binary "$OUT/flywheel" --version "$VERSION" --revision "$REV" --arch "$ARCH" \
		--licenses "${LICENSES:-NOASSERTION}" --tag "${LOCAL_TAG:-flywheel-local:$VERSION}" --tmp "$OUT" \
		--oci-layout "$OUT/local-oci" --docker-archive "$OUT/flywheel-local.tar")
	echo "    local image in $((SECONDS - lstart)) s"
	if [ "$CHECK" -eq 1 ]; then
		echo "==> run the local image's programs in its unpacked root file system (chroot)"
		(cd deploy && FLYWHEEL_LOCAL_IMAGE="$OUT/local-oci" go test -count=1 -v -timeout 30m -run 'TestLocalImageRunsInChroot' ./image)
	fi
fi
