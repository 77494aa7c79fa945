package synthetic

import (
	"sync"
	"time"
)

// Rollbacks models what a rollback does to the synthetic service: from the time a
// cohort of an app is rolled back, its points are drawn without its regressions (the
// old version is back), except for a regression with survives_rollback (its cause is
// not the deploy: the rollback does not help). The daemon shares one between its
// synthetic providers (a reload keeps it) and the synthetic_rollback actuators that
// write it; it lives in memory only, like the provider's series.
type Rollbacks struct {
	mu sync.Mutex
	at map[rollbackKey]int64 // Unix ms
}

type rollbackKey struct{ app, cohort string }

// NewRollbacks makes an empty record: nothing rolled back.
func NewRollbacks() *Rollbacks { return &Rollbacks{at: map[rollbackKey]int64{}} }

// RollBack records that cohort of app was rolled back at t. The first rollback counts:
// a repeat (a retried action) changes nothing.
func (r *Rollbacks) RollBack(app, cohort string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := rollbackKey{app, cohort}
	if _, ok := r.at[k]; !ok {
		r.at[k] = t.UnixMilli()
	}
}

// When is when cohort of app was rolled back, if it was.
func (r *Rollbacks) When(app, cohort string) (time.Time, bool) {
	ms, ok := r.lookup(app, cohort)
	return time.UnixMilli(ms), ok
}

func (r *Rollbacks) lookup(app, cohort string) (int64, bool) {
	if r == nil {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ms, ok := r.at[rollbackKey{app, cohort}]
	return ms, ok
}
