#!/usr/bin/env bash
# Runs every `func FuzzXxx` in the module for a short time each.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r target; do
		for try in 1 2; do
			echo "fuzz $pkg $target for $fuzztime"
			if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$log"; then
				break
			fi
			# Go's fuzzing coordinator sometimes gives up on a worker that a loaded machine
			# left slow ("context deadline exceeded", no failing input): that says nothing
			# about the code, so it gets one more run. A real finding fails at once.
			if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input' "$log"; then
				echo "fuzz $pkg $target: the fuzzing engine timed out a worker; running once more"
				continue
			fi
			exit 1
		done
	done
done
