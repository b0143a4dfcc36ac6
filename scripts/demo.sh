#!/usr/bin/env bash
# demo.sh runs a complete flywheel job on this machine with real local models:
# it installs what the local platform needs (idempotently, with progress),
# builds the flywheel, and runs `flywheel demo`, which loads a tool-calling
# workload, builds datasets, deploys two tiny candidate models with
# llama-server, evaluates them (base, few-shot, fine-tuned), fine-tunes them
# with PyTorch on the CPU, shuts everything down and prints the results.
#
# Usage: scripts/demo.sh [flywheel demo flags…]   (see: flywheel demo --help)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-local.sh
echo "==> building flywheel"
mkdir -p bin
go build -o bin/flywheel ./cmd/flywheel
exec bin/flywheel demo "$@"
