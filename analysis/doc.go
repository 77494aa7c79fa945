// Package analysis runs canaries: registration (within the Limits it is given), the
// scheduler that judges each running canary every interval, the one cache of analysis
// snapshots (Snapshots), and the Store interface that persists canaries, their interval
// results and actions (boltstore and pgstore implement it), with the Leases that split
// running canaries between replicas of a shared store. It owns lifecycle and I/O
// ordering; it never computes statistics itself (that is package judge), never talks to
// a metrics backend except through metrics.Provider, never reads the config's server
// block, and reads time only through its Clock, the one clock the daemon shares (leases
// aside: how long one is still held is measured on the monotonic clock, since the
// database's clock, not the schedule's, bounds it).
package analysis
