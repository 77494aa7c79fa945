# canaryd — every target does its own set-up on a fresh Debian machine.
GO        ?= go
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
PKGS      := ./...

.PHONY: all build run test deps vet staticcheck fmt-check unit fuzz bench clean

all: build

build:
	$(GO) build -o bin/canaryd ./cmd/canaryd

# The main job: the daemon on the embedded synthetic provider with a healthy and a
# regressing canary; pages and API on http://127.0.0.1:8080/ (LISTEN=host:port to change).
LISTEN ?= 127.0.0.1:8080
run: build
	./bin/canaryd demo --listen $(LISTEN)

# What CI runs (.ci/run calls this and nothing else).
test: deps vet staticcheck fmt-check unit fuzz

# System packages the tests need (Debian's), installed only when missing.
deps:
	@bash scripts/ensure-deps.sh

vet:
	$(GO) vet $(PKGS)

# The version is pinned by the tool directive in go.mod (honnef.co/go/tools), so a fresh
# machine builds the same staticcheck from the module proxy.
staticcheck:
	$(GO) tool staticcheck $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# cmd/canaryd's process tests (real daemons, Prometheus, PostgreSQL, InfluxDB 1.6 and 1.8,
# carbon, moto) take about 10 minutes under -race on 2 shared cores, which is go test's
# default per-package timeout: the timeout is raised so that a slow machine is not a failure.
unit:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	cd integrations/argo && $(GO) vet ./... && $(GO) test -count=1 ./...   # Argo Rollouts' own provider code vs canaryd (its own module)
	cd integrations/flagger && $(GO) vet ./... && $(GO) test -count=1 ./...   # Flagger's own webhook code vs canaryd (its own module)

# A short run of every fuzz target (the seed corpus always runs as part of unit).
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./judge/... ./benchmarks/...
	bash benchmarks/vs-r.sh

clean:
	rm -rf bin

# Judge quality on simulated canaries (issue 9): every configs/*.yml analysis, the runbook
# rule and golden-signals as it shipped before its tuning (v0), healthy and regressed, through the real
# scheduler and judge; counts and histogram metrics read the synthetic provider's per-step
# counts and buckets, so golden-signals (sequential judges) and golden-signals-mannwhitney
# are judged on the same runs. Prints the table (benchmarks/RESULTS.md) and writes the plot.
.PHONY: eval
eval: build
	./bin/canaryd eval --svg benchmarks/eval.svg \
		--variant 'golden-signals-v0=golden-signals-mannwhitney.golden-signals:error-rate.allowed_increase=1.1,error-rate.allowed_delta=0.001,error-rate.confidence=0.95,p50-latency.critical=false'

# The same measurement on data that went through a real Prometheus (issue 14): generated
# per-cohort counters and histograms, backfilled with promtool, served by Debian's
# prometheus, judged with the analyses' PromQL as written. Sized for a shared 2-core
# machine (a few minutes); the table is in benchmarks/RESULTS.md. The shipped preset (counts
# and histogram judges) next to the series-only one (Mann-Whitney) on the same runs.
.PHONY: eval-prometheus
eval-prometheus: build deps
	./bin/canaryd eval --backend prometheus --runs 200 --runs-ab 50 \
		--config configs/golden-signals.yml --config configs/golden-signals-mannwhitney.yml
