// Package promsim measures judges on data that went through a real Prometheus: it
// generates per-cohort request counters and latency histograms for eval scenarios (traffic
// that swings for both cohorts alike, overdispersed errors with shared bursts, latency
// drift, regressions from any minute), writes them as OpenMetrics, backfills them with
// promtool, serves them with Debian's prometheus and runs canaries on them through the
// daemon's scheduler, Prometheus provider and judge with the analyses' PromQL unchanged.
// It never changes how a canary is judged and never talks to anything but loopback.
package promsim
