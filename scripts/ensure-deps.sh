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
# The InfluxDB provider's tests (metrics/influxdb) start a private influxd (1.x).
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
# The Graphite provider's tests (metrics/graphite) run a private carbon-cache and
# graphite-web (its Django application, under Debian's /usr/bin/python3).
command -v carbon-cache >/dev/null 2>&1 || need+=(graphite-carbon)
/usr/bin/python3 -c 'import graphite.wsgi' >/dev/null 2>&1 || [ -f /usr/lib/python3/dist-packages/graphite/wsgi.py ] || need+=(graphite-web)
# The CloudWatch provider's tests run moto's server (Python), installed with pip below.
python3 -c 'import moto.server' >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	echo "installing Debian packages: ${need[*]}"
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
	echo "installing moto[server] 5.2.1 with pip"
	# Debian's Python refuses pip installs outside a virtualenv (PEP 668) unless told.
	$sudo python3 -m pip install -q 'moto[server]==5.2.1' 2>/dev/null ||
		$sudo python3 -m pip install -q --break-system-packages 'moto[server]==5.2.1'
fi
# The InfluxDB provider's Flux tests start InfluxDB 1.8 with flux-enabled (it serves
# /api/v2/query as 2.x does; Debian's 1.6 has no Flux): built once from the module proxy
# into the user's cache, where metrics/influxdb/influxtest.FluxBinary looks (and builds it
# itself when missing). Keep the version in step with influxtest.FluxVersion.
influx_flux=v1.8.3
flux_dir="${XDG_CACHE_HOME:-$HOME/.cache}/canaryd/influxd-$influx_flux"
if [ ! -x "$flux_dir/influxd" ]; then
	echo "building influxd $influx_flux (Flux) from the module proxy into $flux_dir"
	mkdir -p "$flux_dir"
	tmp=$(mktemp -d "$flux_dir/build-XXXXXX")
	GOBIN="$tmp" GOFLAGS= CGO_ENABLED=1 go install "github.com/influxdata/influxdb/cmd/influxd@$influx_flux"
	mv "$tmp/influxd" "$flux_dir/influxd"
	rmdir "$tmp"
fi
