// Package guard is the safety layer between the scheduler and the actuators: it plans a
// final canary's actions exactly once (intent persisted before firing, outcome after,
// idempotency key per canary, trigger and actuator), fires them off the scheduler's
// goroutine with bounded workers and retries, and applies the circuit breaker, the
// per-service cooldown, dry runs, approvals and PagerDuty resolves, keeping every step
// and every human override in a persisted audit log. It never judges a canary and never
// writes the analysis store: it reads canaries and keeps its state behind its own Store
// interface (NewBoltStore: guard_* buckets in the analysis store's bbolt file; pgguard:
// guard_* tables in its PostgreSQL database, shared by replicas), one transaction per
// step; with replicas, each action's owner resumes it, and another only once it is dead. Its time is the scheduler's analysis.Clock.
package guard
