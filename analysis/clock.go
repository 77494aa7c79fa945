package analysis

import "time"

// Clock is the scheduler's only source of time, so that an evaluation tool can run it
// on a simulated clock. After must deliver once d has passed on this clock.
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
