// Package newrelic is the metrics.Provider for New Relic: it runs one cohort's NRQL
// through NerdGraph (POST /graphql, the account and the NRQL as GraphQL variables, the
// User API key as API-Key), in the US or EU region, adding SINCE and UNTIL (the window's
// epoch milliseconds) and TIMESERIES (the step) itself. Each aggregate of the SELECT,
// and each FACET value, is a stream; a bucket's time is its beginTimeSeconds. It never
// judges, never caches, and never logs or returns the key.
//
// # Why plain HTTP
//
// New Relic's Go client (github.com/newrelic/newrelic-client-go) wraps NerdGraph, whose
// NRQL query is one documented GraphQL request; decoding its results (maps of aggregate
// names to numbers) needs the same code either way, and the client brings a dependency
// tree canaryd has no other use for. The tests use a loopback NerdGraph that answers as
// New Relic documents it (see newrelic_test.go).
package newrelic
