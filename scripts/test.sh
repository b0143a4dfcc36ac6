#!/usr/bin/env bash
# test.sh sets up everything the test suite needs on a fresh Debian machine
# and runs it: the local platform's llama-server and PyTorch, headless
# Chromium for the dashboard's browser tests, and a running PostgreSQL. Every
# step is idempotent. Then it runs the whole suite, real models included.
#
# Usage: scripts/test.sh [go test flags…]   (default: ./...)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> local platform (llama-server, PyTorch)"
bash scripts/install-local.sh
echo "==> headless browser"
bash scripts/browser-deps.sh

echo "==> PostgreSQL on 127.0.0.1:5432"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
	if command -v pg_ctlcluster >/dev/null 2>&1; then
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
	fi
	for _ in $(seq 1 30); do
		pg_isready -h 127.0.0.1 -p 5432 -q && break
		sleep 1
	done
fi
pg_isready -h 127.0.0.1 -p 5432

# The end-to-end tests of the local platform run real models; they fail,
# rather than skip, when something above is missing.
export FLYWHEEL_LOCAL_E2E=1
# The dashboard's browser tests keep their screenshots here.
export FLYWHEEL_SCREENSHOTS="${FLYWHEEL_SCREENSHOTS:-$PWD/test-artifacts/screenshots}"
mkdir -p "$FLYWHEEL_SCREENSHOTS"
if [ "$#" -eq 0 ]; then
	set -- ./...
fi
echo "==> go test $*"
go test -timeout 45m "$@"
