package analysis

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// RunDue judges every queued interval due at or before the clock's now, with up to
// workers at once, through the same judge, store and actuation code as Start's loop and
// workers, and returns the earliest interval end still queued (pending is false when the
// queue is empty). It is a simulation's dispatcher (canaryd eval): with a clock that moves
// only when told, the caller alternates RunDue and setting the clock to next, so nothing
// waits on a timer and nothing sleeps. It refuses a started scheduler, whose loop would
// race it for the queue; the daemon never calls it.
func (s *Scheduler) RunDue(ctx context.Context, workers int) (next time.Time, pending bool, err error) {
	if workers <= 0 {
		workers = 1
	}
	for {
		s.mu.Lock()
		if s.started {
			s.mu.Unlock()
			return time.Time{}, false, errors.New("scheduler: RunDue on a started scheduler")
		}
		now := s.o.Clock.Now()
		var due []dueItem
		for s.queue.Len() > 0 && !s.queue[0].at.After(now) {
			due = append(due, heap.Pop(&s.queue).(dueItem))
		}
		if len(due) == 0 {
			if s.queue.Len() > 0 {
				next, pending = s.queue[0].at, true
			}
			s.mu.Unlock()
			// Drain the wake-up a schedule left for a loop that does not run here.
			select {
			case <-s.wake:
			default:
			}
			return next, pending, ctx.Err()
		}
		s.mu.Unlock()

		work := make(chan dueItem)
		var wg sync.WaitGroup
		for range min(workers, len(due)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for it := range work {
					s.m.Lag.Observe(s.o.Clock.Now().Sub(it.at).Seconds())
					s.judge(ctx, it)
				}
			}()
		}
		for i, it := range due {
			if ctx.Err() != nil {
				// Put back what was not handed out, as the loop does on Stop.
				s.mu.Lock()
				for _, r := range due[i:] {
					heap.Push(&s.queue, r)
				}
				s.mu.Unlock()
				break
			}
			work <- it
		}
		close(work)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return time.Time{}, false, err
		}
	}
}
