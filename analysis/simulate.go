package analysis

import (
	"context"
	"errors"
	"sync"
	"time"
)

// RunDue judges every queued interval due at or before the clock's now, with up to
// workers at once, through the same dispatch loop, judge, store and actuation code as
// Start's loop and workers, and returns the earliest interval end still queued (pending
// is false when the queue is empty). It is a simulation's dispatcher (canaryd eval): with
// a clock that moves only when told, the caller alternates RunDue and setting the clock
// to next, so nothing waits on a timer and nothing sleeps. It refuses a started
// scheduler, whose loop would race it for the queue; the daemon never calls it.
func (s *Scheduler) RunDue(ctx context.Context, workers int) (next time.Time, pending bool, err error) {
	if workers <= 0 {
		workers = 1
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		return time.Time{}, false, errors.New("scheduler: RunDue on a started scheduler")
	}
	s.run(func(due []dueItem) int {
		return s.judgeAll(ctx, due, workers)
	}, false, func(n time.Time, p bool, _ <-chan time.Time) bool {
		next, pending = n, p
		// Drain the wake-up a schedule left for a loop that does not run here.
		select {
		case <-s.wake:
		default:
		}
		return false
	})
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	return next, pending, nil
}

// judgeAll judges due with up to workers at once and returns how many it handed out
// (fewer once ctx ends), after they are all judged.
func (s *Scheduler) judgeAll(ctx context.Context, due []dueItem, workers int) int {
	work := make(chan dueItem)
	var wg sync.WaitGroup
	for range min(workers, len(due)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				s.handle(ctx, it)
			}
		}()
	}
	handed := len(due)
	for i, it := range due {
		if ctx.Err() != nil {
			handed = i
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
	return handed
}
