#!/usr/bin/env bash
# Installs the Debian packages canaryd's tests use, only when missing. Needs root (CI and
# the dev machines run as root); prints what it does.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The report pages' browser test (web/ui) drives a headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The PostgreSQL store's tests (analysis/pgstore, cmd/canaryd) start a private cluster
# with the server binaries, which Debian keeps out of PATH.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
