// Package analysis runs canaries: registration, the scheduler that judges each running
// canary every interval, and the Store interface that persists canaries, their interval
// results and actions (boltstore implements it). It owns lifecycle and I/O ordering; it
// never computes statistics itself (that is package judge), never talks to a metrics
// backend except through metrics.Provider, and reads time only through its Clock.
package analysis
