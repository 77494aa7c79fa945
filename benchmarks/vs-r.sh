#!/usr/bin/env bash
# Times R's wilcox.test(x, y, conf.int=TRUE, tol.root=1e-12) and `canaryd judge mannwhitney`
# on the same 200k/200k samples, in one run, prints the ratio and the largest difference of
# the answers. R runs to convergence (tol.root=1e-12), as canaryd's answers do: R's default
# absolute tolerance, 1e-4, is larger than the range of latency differences in seconds.
# Installs r-base-core when missing.
# Usage: bash benchmarks/vs-r.sh [N]     (from the repository root; N defaults to 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
if ! command -v Rscript >/dev/null 2>&1; then
	echo "installing r-base-core"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq r-base-core >/dev/null
fi
go build -o bin/canaryd ./cmd/canaryd # always the tree being measured, never a stale binary
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
Rscript -e "set.seed(1); writeLines(sprintf('%.17g', rlnorm($n, log(0.100), 0.25)), '$work/baseline.txt'); writeLines(sprintf('%.17g', rlnorm($n, log(0.103), 0.25)), '$work/canary.txt')"

now() { date +%s.%N; }
best=""
for _ in 1 2 3; do
	t0=$(now)
	./bin/canaryd judge mannwhitney --baseline "$work/baseline.txt" --canary "$work/canary.txt" >"$work/go.json"
	t1=$(now)
	t=$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')
	best=$(awk -v a="$t" -v b="$best" 'BEGIN{print (b=="" || a<b) ? a : b}')
done
t0=$(now)
Rscript -e "x <- scan('$work/canary.txt', quiet=TRUE); y <- scan('$work/baseline.txt', quiet=TRUE); r <- wilcox.test(x, y, conf.int=TRUE, tol.root=1e-12); cat(sprintf('{\"u\":%.17g,\"p_value\":%.17g,\"estimate\":%.17g,\"ci_low\":%.17g,\"ci_high\":%.17g}\n', r\$statistic, r\$p.value, r\$estimate, r\$conf.int[1], r\$conf.int[2]))" >"$work/r.json"
t1=$(now)
rt=$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')
echo "n = m = $n"
echo "canaryd: $(cat "$work/go.json")"
echo "R:       $(cat "$work/r.json")"
printf 'canaryd judge mannwhitney (whole process, best of 3): %.3f s\n' "$best"
printf 'Rscript wilcox.test(x, y, conf.int=TRUE, tol.root=1e-12) (whole process): %.3f s\n' "$rt"
printf 'ratio R / canaryd: %.0fx\n' "$(awk -v a="$rt" -v b="$best" 'BEGIN{print a/b}')"
# The largest |canaryd − R| of the estimate and the interval bounds.
field() { sed -E "s/.*\"$1\":([^,}]*).*/\1/" "$2"; }
dev=0
for k in estimate ci_low ci_high; do
	dev=$(awk -v a="$(field "$k" "$work/go.json")" -v b="$(field "$k" "$work/r.json")" -v d="$dev" \
		'BEGIN{x=a-b; if (x<0) x=-x; print (x>d) ? x : d}')
done
echo "largest difference of estimate and bounds, canaryd vs R: $dev"
