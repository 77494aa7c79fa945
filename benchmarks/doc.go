// Package benchmarks holds end-to-end benchmarks of the judge and the daemon, and the
// scripts that compare canaryd with R. Results, with the commands that produced them, are
// in RESULTS.md. Nothing here is imported by the daemon.
package benchmarks
