#!/usr/bin/env bash
# browser-deps.sh installs the headless browser the dashboard's end-to-end
# tests drive (Debian's chromium). It is idempotent: when chromium is already
# installed it does nothing. It needs root (or sudo) and never reads stdin.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	echo "chromium is installed: $(chromium --version 2>/dev/null || echo unknown version)"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive

# Update the package lists only when they are missing or chromium is unknown.
if ! apt-cache show chromium >/dev/null 2>&1; then
	$SUDO apt-get update </dev/null
fi
$SUDO apt-get install -y chromium </dev/null
echo "installed: $(chromium --version)"
