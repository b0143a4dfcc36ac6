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
#               PyTorch, the trainer) from deploy/image/Containerfile.local;
#               needs buildah, podman or docker and a reachable registry
#
# Environment:
#   OUT         output directory (default dist/image): oci/ (OCI layout),
#               flywheel.tar (docker archive), flywheel (the binary)
#   TAG         image reference (default flywheel:<version>)
#   LICENSES    SPDX license label (default NOASSERTION)
#   GOARCH      target architecture (default: this machine's)
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
	echo "==> local-platform image"
	cp "$OUT/flywheel" deploy/image/flywheel
	trap 'rm -f deploy/image/flywheel' EXIT
	for tool in buildah podman docker; do
		if command -v "$tool" >/dev/null 2>&1; then
			if [ "$tool" = buildah ]; then
				buildah bud -f deploy/image/Containerfile.local -t "flywheel-local:$VERSION" .
			else
				"$tool" build -f deploy/image/Containerfile.local -t "flywheel-local:$VERSION" .
			fi
			exit 0
		fi
	done
	echo "no buildah, podman or docker here: build deploy/image/Containerfile.local where one runs" >&2
	exit 1
fi
