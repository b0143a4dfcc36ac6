#!/usr/bin/env bash
# test.sh sets up everything the test suite needs on a fresh Debian machine
# and runs it: the local platform's llama-server and PyTorch, headless
# Chromium for the dashboard's browser tests, and a running PostgreSQL
# (installed from Debian when none answers on 127.0.0.1:5432). Every step is
# idempotent. Then it runs the whole suite with -count=1 (never from Go's test
# cache), real models included.
#
# Usage: scripts/test.sh [go test flags…] [packages…]   (packages default to ./...)
#
# The suite needs nothing outside the repository. Extra corpora add tests on
# top when named: FLYWHEEL_BFCL_DIR (BFCL-derived logs and answers, the
# layout of internal/testcorpus) and FLYWHEEL_BLUEPRINT_DIR (the blueprint's
# config.yaml and openapi.json). When a folder named shared sits beside the
# checkout, its data/bfcl and reference/nvidia-data-flywheel are used for them.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		echo "test.sh: need root (or sudo) for: $*" >&2
		return 1
	fi
}

echo "==> local platform (llama-server, PyTorch)"
bash scripts/install-local.sh
echo "==> headless browser"
bash scripts/browser-deps.sh
echo "==> python3 and python3-requests (the blueprint's client flows)"
if ! python3 -c 'import requests' >/dev/null 2>&1; then
	as_root apt-get install -y -q python3 python3-requests </dev/null ||
		{ as_root apt-get update -q </dev/null && as_root apt-get install -y -q python3 python3-requests </dev/null; }
fi

echo "==> PostgreSQL on 127.0.0.1:5432"
export DEBIAN_FRONTEND=noninteractive
if ! command -v pg_isready >/dev/null 2>&1 || ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
	if ! command -v pg_ctlcluster >/dev/null 2>&1; then
		if ! apt-cache show postgresql >/dev/null 2>&1; then
			as_root apt-get update -q </dev/null
		fi
		as_root apt-get install -y -q postgresql </dev/null
	fi
	version="$(ls /etc/postgresql | sort -n | tail -n 1)"
	if [ -z "$(ls /etc/postgresql/"$version" 2>/dev/null)" ]; then
		as_root pg_createcluster "$version" main
	fi
	as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
	for _ in $(seq 1 30); do
		pg_isready -h 127.0.0.1 -p 5432 -q && break
		sleep 1
	done
fi
pg_isready -h 127.0.0.1 -p 5432

# The tests connect with FLYWHEEL_TEST_POSTGRES (default: the postgres user
# with trust auth). When that does not work and this machine runs the server,
# give the postgres user a known password and use it.
pg_url="${FLYWHEEL_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
if command -v psql >/dev/null 2>&1 && ! psql "$pg_url" -Atqc 'select 1' </dev/null >/dev/null 2>&1; then
	if [ -n "${FLYWHEEL_TEST_POSTGRES:-}" ]; then
		echo "test.sh: cannot connect with FLYWHEEL_TEST_POSTGRES" >&2
		exit 1
	fi
	echo "postgres@127.0.0.1 needs a password: setting one for the tests"
	as_root runuser -u postgres -- psql -Atqc "ALTER USER postgres PASSWORD 'flywheel-test'" </dev/null
	pg_url="postgres://postgres:flywheel-test@127.0.0.1:5432/postgres?sslmode=disable"
	psql "$pg_url" -Atqc 'select 1' </dev/null >/dev/null
fi
export FLYWHEEL_TEST_POSTGRES="$pg_url"
if command -v psql >/dev/null 2>&1 &&
	[ -z "$(psql "$pg_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" </dev/null)" ]; then
	psql "$pg_url" -Atqc 'CREATE DATABASE test' </dev/null
fi

# Extra corpora, when a shared folder sits beside the checkout.
shared="$(cd .. && pwd)/shared"
if [ -z "${FLYWHEEL_BFCL_DIR:-}" ] && [ -d "$shared/data/bfcl" ]; then
	export FLYWHEEL_BFCL_DIR="$shared/data/bfcl"
fi
if [ -z "${FLYWHEEL_BLUEPRINT_DIR:-}" ] && [ -d "$shared/reference/nvidia-data-flywheel" ]; then
	export FLYWHEEL_BLUEPRINT_DIR="$shared/reference/nvidia-data-flywheel"
fi
echo "extra corpora: FLYWHEEL_BFCL_DIR=${FLYWHEEL_BFCL_DIR:-(none)} FLYWHEEL_BLUEPRINT_DIR=${FLYWHEEL_BLUEPRINT_DIR:-(none)}"

# The end-to-end tests of the local platform run real models; they fail,
# rather than skip, when something above is missing.
export FLYWHEEL_LOCAL_E2E=1
# The dashboard's browser tests keep their screenshots here.
export FLYWHEEL_SCREENSHOTS="${FLYWHEEL_SCREENSHOTS:-$PWD/test-artifacts/screenshots}"
mkdir -p "$FLYWHEEL_SCREENSHOTS"

# Packages default to ./... when only flags are given.
has_packages=0
prev=""
for a in "$@"; do
	case "$prev" in
	-run | -skip | -bench | -timeout | -count | -parallel | -cpu | -benchtime | -tags | -p | -coverprofile | -o | -exec)
		prev=""
		continue
		;;
	esac
	case "$a" in
	-*) ;;
	*) has_packages=1 ;;
	esac
	prev="$a"
done
if [ "$has_packages" -eq 0 ]; then
	# The whole suite also covers deploy/ (its own Go module, so that the Helm
	# SDK stays out of the binary's): the server image is built without a
	# daemon and its binary run from the unpacked image (--version, migrate,
	# serve answering /readyz on SQLite), and the Helm chart is rendered for
	# each value set and decoded strictly into the Kubernetes API types.
	echo "==> server image"
	bash scripts/image.sh --no-check
	echo "==> deploy: image run from its unpacked root file system, Helm chart"
	(cd deploy && FLYWHEEL_IMAGE="$PWD/../dist/image/oci" go test -count=1 -timeout 10m ./...)
	set -- "$@" ./...
fi
echo "==> go test -count=1 -timeout 45m $*"
go test -count=1 -timeout 45m "$@"
