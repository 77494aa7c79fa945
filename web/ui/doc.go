// Package ui serves canaryd's HTML report pages: the list of canaries (GET /) and one
// canary's report (GET /canaries/{id}), with charts drawn as inline SVG on the server.
// It only reads, through the small Source interface; it never changes a canary, never
// loads anything from another origin, and never computes a verdict or a statistic itself.
package ui
