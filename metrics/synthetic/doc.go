// Package synthetic is the embedded metrics.Provider: it generates baseline and canary
// golden signals from a seed, with regressions injected per cohort, for demos, tests and
// simulations. Every point is a pure function of (seed, signal, cohort, stream, time), so
// it never does I/O, never reads the clock and never keeps state between queries.
package synthetic
