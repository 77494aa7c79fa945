package analysis

import "time"

// Clock is canaryd's one source of scheduled time: the scheduler's, the safety layer's
// (records, breaker, cooldown, approval windows) and the API's (the audit log's relative
// times), so that an evaluation tool or a test runs all of them on one simulated clock
// (package simclock). After must deliver once d has passed on this clock. Durations of
// I/O (a query, an attempt) are measured on real time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// After is time.After.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
