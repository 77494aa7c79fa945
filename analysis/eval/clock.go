package eval

import (
	"time"

	"github.com/canaryd/canaryd/analysis/simclock"
)

// Clock is the simulated analysis.Clock the runs are driven by.
type Clock = simclock.Clock

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return simclock.New(t) }
