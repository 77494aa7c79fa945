#!/usr/bin/env bash
# Records healthy (A/A) and regressed canaries from real processes through Debian's real
# Prometheus (scripts/liverec: 16 apps × 2 cohort processes, a shared downstream, Poisson
# load; scraped every 1s, read back with the shipped PromQL at a 5s step), for the replay
# test judge/liveaa_test.go. Takes the duration plus a minute; uses about a third of a core.
#   scripts/record-live.sh [out.json.gz] [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-judge/testdata/live/live-1.json.gz}
dur=${2:-36m}
bin=$(mktemp -d)/liverec
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./scripts/liverec
"$bin" record -duration "$dur" -out "$out"
ls -l "$out"
