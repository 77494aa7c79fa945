// Package graphite is the metrics.Provider for Graphite: it sends one cohort's rendered
// target to graphite-web's render API (POST /render with target, from, until,
// format=json and maxDataPoints) and turns every returned series into a stream labelled
// with its tags and its target. It owns the HTTP retries for those calls; it never
// judges, never caches, and never logs or returns a credential.
//
// # Why plain HTTP
//
// Graphite has no official Go client; the render API is one documented form post whose
// JSON answer is [{"target", "tags", "datapoints": [[value|null, unix seconds], …]}].
//
// # The window
//
// from and until are the window's unix seconds; maxDataPoints is the number of steps in
// it, so data finer than the step is consolidated by graphite-web (consolidateBy,
// average by default) to about a point a step. A null value is no point; points outside
// the window are dropped and counted in a warning. The tests run Debian's carbon-cache
// and graphite-web (metrics/graphite/graphitetest).
package graphite
