#!/usr/bin/env bash
# demo.sh runs a complete flywheel job on this machine with real local models:
# it installs what the local platform needs (idempotently, with progress),
# builds the flywheel, pre-trains the candidates' base models once (cached),
# and runs `flywheel demo`, which loads a tool-calling
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
# The candidates start from bases Flywheel pre-trains once (cached: a second
# run finds them and skips this step; the first takes minutes).
echo "==> pre-trained bases (once)"
bin/flywheel bases build --size tiny-s,tiny-m
exec bin/flywheel demo "$@"
