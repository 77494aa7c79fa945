// Package datadog is the metrics.Provider for Datadog: it runs one cohort's rendered query
// through the official client (github.com/DataDog/datadog-api-client-go/v2) and turns the
// answer into metrics.Series. It owns the HTTP retries and the rate-limit waits for those
// calls; it never judges, never caches, and never logs or returns the API keys.
//
// # Why the V1 query endpoint
//
// Queries go to GET /api/v1/query?from=&to=&query= (datadogV1.MetricsApi.QueryMetrics):
// it is a range query that returns every matching series in one request, each with its
// pointlist of [timestamp_ms, value] pairs and its own scope and tag_set, which become
// the stream's labels. The V2 timeseries endpoint (POST /api/v2/query/timeseries) would
// give the same points but lives in the datadogV2 package, whose compile alone costs
// about two more minutes and ~7 GB of memory on a 2-core machine with a cold cache
// (datadogV1 alone: ~66 s, 1.3 GB). Every developer and CI run would pay that, so this
// package must not import datadogV2.
//
// The V2 endpoint is still available, per metric: a query written as a JSON object
// ({"queries": [...], "formulas": [...]}, the request's attributes as Datadog documents
// them), or every query of a provider with query_api: v2, is POSTed to
// /api/v2/query/timeseries through the client's common layer (APIClient.PrepareRequest
// and CallAPI: its server templates, keys and transport), with the request and answer
// shaped in internal/v2query. There the step is the request's interval, and nothing is
// written into the query.
//
// # Step and rollup
//
// The V1 endpoint has no step parameter: Datadog picks a rollup interval from the time
// range, and the query is sent as written. With rollup: <method> in the config, a single
// metric query (aggr:metric{scope} [by {tags}] [.modifiers()]) gets
// ".rollup(<method>,<step seconds>)" appended, unless it already contains ".rollup(";
// expressions (a / b, functions, several queries) are then sent as they are, with a
// warning in Series.Warnings: write .rollup() on each term to control their resolution.
// Datadog may still coarsen a rollup that would exceed its per-series point limit
// (about 1500 points).
//
// # Retries
//
// The client's own retry (Configuration.RetryConfiguration.EnableRetry) stays off, so
// every attempt is one HTTP request and retries are never doubled. This package retries
// instead, because it also retries network errors, bounds the rate-limit wait, honours
// ctx during every wait, logs through zap, and lets tests inject the sleeper:
//   - 429: wait X-RateLimit-Reset seconds, in the pacer (below), then retry; a reset
//     longer than max_rate_limit_wait, or than what is left of ctx, fails the query at once;
//   - 5xx and network errors: exponential backoff with jitter;
//   - other 4xx: no retry; 401/403 say which environment variables hold the keys.
//
// # Pacing
//
// Every answer's X-RateLimit-* headers (Datadog's rate-limit budget, per organisation)
// feed one pacer per Provider (pace.go), which every attempt of every canary's query
// waits on: the requests left are spread evenly until the reset, and none is sent while
// none is left. Pace (metrics.Pacer) lets the scheduler do that wait before a query's
// timeout starts, so an exhausted budget delays intervals rather than failing them.
//
// # Batches
//
// The scheduler sends the queries of one canary's interval through QueryBatch
// (metrics.Batcher) at once. With cohort_tag, two queries that differ only in that tag's
// value (the two cohorts of a metric) become one, on both values and grouped by the tag
// (v1query.Cohorted), its series split back by the tag's value: half the requests.
// Whatever cannot be merged without changing what it selects is sent as rendered.
// With queries_per_request (V2), the interval's queries over one window then share
// requests, named q0, q1, … with one formula each, and are split back by query_index; a
// request refused as bad (400) is sent again query by query.
//
// # Keys
//
// From environment variables (api_key_env, app_key_env) or files (api_key_file,
// app_key_file), a file read again whenever its modification time or size changes. The
// keys go into each call's context and never into a log, an error or a metric; Ping
// checks the API key with GET /api/v1/validate, a refused key a *KeyRefusedError (the
// daemon does not start on one).
package datadog
