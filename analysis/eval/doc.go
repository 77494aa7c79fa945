// Package eval measures judge quality: it runs many canaries (healthy A/A and injected
// regressions) through the daemon's own scheduler, store interface and judge, on the
// synthetic provider and a simulated clock, and reports false-alarm rates, detection rates
// and times to detect per analysis. It owns scenarios, the simulation driver and the report
// (table, JSON, SVG); it never sleeps, reads the wall clock only to time itself, and never
// changes how a canary is judged.
package eval
