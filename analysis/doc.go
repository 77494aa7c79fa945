// Package analysis runs canaries: the scheduler that judges each running canary every
// interval, the store that persists canaries, their interval results and actions, and the
// config schema. It owns lifecycle and I/O ordering; it never computes statistics itself
// (that is package judge) and never talks to a metrics backend directly (that is a
// metrics.Provider).
package analysis
