package analysis

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// Env is what a config load gives the scheduler: the analyses new canaries may use and
// the providers every canary queries. It is replaced whole on reload.
type Env struct {
	Config    *config.Config
	Providers map[string]metrics.Provider
	// RateLimits bound the queries sent to each provider, by name; a provider without
	// one is not limited.
	RateLimits map[string]config.RateLimit
}

// Actuation is told when a canary reaches a final status (by its verdict, an abort or a
// promotion). The actuators layer implements it; until then NopActuation.
type Actuation interface {
	OnVerdict(ctx context.Context, c *Canary, a Action)
}

// StartActuation is an Actuation that is also told when a canary is registered, once
// it is stored (the analysis' on_start hook). Like OnVerdict, OnStart must not block.
type StartActuation interface {
	Actuation
	OnStart(ctx context.Context, c *Canary)
}

// NopActuation does nothing.
type NopActuation struct{}

// OnVerdict does nothing.
func (NopActuation) OnVerdict(context.Context, *Canary, Action) {}

// RegistrationCheck is asked by Register, once its own checks pass, whether the canary
// c (not yet stored, no id) of analysis a may be registered: the actuators' layer renders
// every action the canary could fire, so that a rollback cannot fail later on a missing
// variable. An *InputError refuses the registration with the field it names.
type RegistrationCheck func(a *config.Analysis, c *Canary) error

// Limits bound what a registration may ask for, so that one client cannot make the
// scheduler's work unbounded: the config's server block (LimitsOf), which a reload
// changes through SetLimits. A zero field is no limit.
type Limits struct {
	// MinInterval is the shortest interval (server.min_interval).
	MinInterval time.Duration
	// MaxLifetime caps a lifetime and how far back a start may be (server.max_lifetime).
	MaxLifetime time.Duration
	// MaxRunningPerAnalysis caps one analysis' running canaries
	// (server.max_running_per_analysis).
	MaxRunningPerAnalysis int
}

// LimitsOf reads the limits of a config's server block.
func LimitsOf(s config.Server) Limits {
	return Limits{MinInterval: time.Duration(s.MinInterval), MaxLifetime: time.Duration(s.MaxLifetime),
		MaxRunningPerAnalysis: s.MaxRunningPerAnalysis}
}

// Options configure a Scheduler. Store is required; the rest have defaults.
type Options struct {
	Store     Store
	Clock     Clock
	Logger    *zap.Logger
	Metrics   *Metrics
	Actuation Actuation
	// CheckRegistration, when set, can refuse a registration (see RegistrationCheck).
	CheckRegistration RegistrationCheck
	// Preflight, when set, runs the actuators' checks of a registration that passed
	// every other check, before it is stored (see PreflightCheck).
	Preflight PreflightCheck
	// Limits bound registrations until SetLimits replaces them (zero: no limits).
	Limits Limits
	// Snapshots caches the analysis snapshots canaries are judged by (default a cache
	// over Store); the daemon shares it with the safety layer.
	Snapshots *Snapshots
	// Workers bounds how many canaries are judged at once (default 32).
	Workers int
	// MaxConsecutiveErrors ends a canary as error after that many intervals in a row with
	// a metric in error (default 3).
	MaxConsecutiveErrors int
	// QueryTimeout bounds each provider query (default 30s).
	QueryTimeout time.Duration
	// CanaryRateLimit bounds each canary's queries; zero is no limit.
	CanaryRateLimit config.RateLimit
	// RetryDelay is how long to wait before retrying an interval whose result could not
	// be stored (default 5s).
	RetryDelay time.Duration
	// ShutdownGrace is how long Stop lets in-flight intervals finish before cancelling
	// them; a cancelled interval is not recorded and is judged again after a restart.
	ShutdownGrace time.Duration
	// Leases, when set, split the running canaries with the other replicas of a shared
	// store: this scheduler judges only those whose lease it holds (nil: all of them).
	// Leases run on real time whatever Clock is.
	Leases Leases
}

// Scheduler judges every running canary at each of its interval ends. Work is one
// canary's interval: its metrics are queried concurrently, each query bounded by
// QueryTimeout, and at most Workers canaries are judged at once, so a slow provider holds
// only the workers of its own canaries, for at most QueryTimeout.
type Scheduler struct {
	o   Options
	log *zap.Logger
	m   *Metrics
	env atomic.Pointer[Env]
	// limits are Options.Limits, then what SetLimits installed.
	limits atomic.Pointer[Limits]

	lim limiters

	mu    sync.Mutex
	queue dueHeap
	// judging are the canaries a worker is judging now (one at a time each), with the
	// item of the highest index that came meanwhile, queued again once it is done.
	judging map[string]*dueItem
	counts  map[Status]int
	// runningBy counts running canaries per analysis (registrations in flight included),
	// for the server's max_running_per_analysis.
	runningBy map[string]int
	wake      chan struct{}
	started   bool
	// keys serialises keyed registrations with one key in this process, so that a retry
	// racing its original waits for it instead of taking a second running slot.
	keys   keyLocks
	leases leaseState

	work     chan dueItem
	stop     context.CancelFunc
	hardStop context.CancelFunc
	done     sync.WaitGroup
}

type dueItem struct {
	id string
	// index is the interval to judge, or for a recovery step the checks made so far.
	index int
	at    time.Time
	// recovery: a step of the canary's recovery watch, not an interval.
	recovery bool
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// NewScheduler builds a scheduler; call SetEnv, then Start.
func NewScheduler(o Options) *Scheduler {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Snapshots == nil {
		o.Snapshots = NewSnapshots(o.Store)
	}
	if o.Actuation == nil {
		o.Actuation = NopActuation{}
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.MaxConsecutiveErrors <= 0 {
		o.MaxConsecutiveErrors = 3
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 5 * time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 5 * time.Second
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(prometheus.NewRegistry())
	}
	s := &Scheduler{
		o: o, log: o.Logger, m: m,
		lim:    limiters{canary: map[string]*rate.Limiter{}, provider: map[string]*rate.Limiter{}},
		counts: map[Status]int{}, runningBy: map[string]int{}, judging: map[string]*dueItem{},
		wake: make(chan struct{}, 1),
		work: make(chan dueItem),
	}
	s.SetLimits(o.Limits)
	return s
}

// SetLimits installs new registration limits (a reload's); running canaries keep what
// they were registered with.
func (s *Scheduler) SetLimits(l Limits) { s.limits.Store(&l) }

// SetEnv installs a config and its providers. Running canaries keep their analysis
// snapshot; they pick up the new providers at their next interval.
func (s *Scheduler) SetEnv(e *Env) { s.env.Store(e) }

// Env returns the current config and providers.
func (s *Scheduler) Env() *Env { return s.env.Load() }

// Start loads every running canary from the store and starts judging. It returns once
// they are queued; the work goes on until Stop.
func (s *Scheduler) Start(ctx context.Context) error {
	all, err := s.o.Store.List(ctx, "")
	if err != nil {
		return fmt.Errorf("scheduler: load canaries: %w", err)
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("scheduler: already started")
	}
	s.started = true
	for _, c := range all {
		s.counts[c.Status]++
		if r := c.Recovery; r != nil && !r.Outcome.Final() {
			// The watch resumes where the store has it (a check cut short is made again).
			s.pushLocked(dueItem{id: c.ID, index: r.Checks, at: r.NextAt, recovery: true})
		}
		if c.Status != StatusRunning {
			continue
		}
		s.runningBy[c.Analysis]++
		if s.o.Leases != nil {
			continue // queued once its lease is held (renewLeases)
		}
		if c.Score != nil {
			s.m.Score.WithLabelValues(c.ID, c.Name, c.Analysis).Set(*c.Score)
		}
		s.pushLocked(dueItem{id: c.ID, index: c.NextIndex, at: c.IntervalEnd(c.NextIndex)})
	}
	s.syncCountsLocked()
	s.mu.Unlock()

	// Work runs on its own context: Stop cancels dispatching at once, and in-flight work
	// only after the grace period.
	loopCtx, stop := context.WithCancel(context.Background())
	workCtx, hardStop := context.WithCancel(context.Background())
	s.stop, s.hardStop = stop, hardStop
	s.done.Add(1 + s.o.Workers)
	go s.loop(loopCtx)
	for i := 0; i < s.o.Workers; i++ {
		go s.worker(loopCtx, workCtx)
	}
	if s.o.Leases != nil {
		// The first renewal before Start returns, so the canaries this replica takes
		// are queued at once; a failure is retried by the loop.
		s.renewLeases(ctx)
		s.done.Add(1)
		go s.leaseLoop(loopCtx)
	}
	s.log.Info("scheduler started", zap.Int("running", s.counts[StatusRunning]), zap.Int("workers", s.o.Workers))
	return nil
}

// Stop stops dispatching, lets in-flight intervals finish for up to the grace period (or
// until ctx ends), then cancels them. Nothing half-judged is recorded.
func (s *Scheduler) Stop(ctx context.Context) {
	if s.stop == nil {
		return
	}
	s.stop()
	finished := make(chan struct{})
	go func() { s.done.Wait(); close(finished) }()
	grace := time.NewTimer(s.o.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-finished:
	case <-grace.C:
	case <-ctx.Done():
	}
	s.hardStop()
	<-finished
	if s.o.Leases != nil {
		// Nothing is judged any more: the other replicas may take every canary now.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := s.o.Leases.ReleaseAll(rctx); err != nil {
			s.log.Warn("release leases at shutdown; they expire after the lease", zap.Error(err))
		}
		cancel()
		s.m.LeasesHeld.Set(0)
	}
}

func (s *Scheduler) pushLocked(it dueItem) {
	heap.Push(&s.queue, it)
}

// schedule queues a canary's next interval and wakes the loop.
func (s *Scheduler) schedule(it dueItem) {
	s.mu.Lock()
	s.pushLocked(it)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the scheduler's one dispatch loop, for the daemon (loop) and for a simulation
// (RunDue): it takes the intervals due on the clock off the queue and hands them to
// dispatch, which returns how many it took; the rest go back on the queue, so that a stop
// leaves the queue whole, and run returns. When nothing is due, idle gets the earliest
// interval still queued (pending is false when the queue is empty) and, when wait is
// set, a timer on the clock for it, made under the queue's lock; idle says whether to go
// on.
func (s *Scheduler) run(dispatch func([]dueItem) int, wait bool, idle func(next time.Time, pending bool, timer <-chan time.Time) bool) {
	for {
		s.mu.Lock()
		now := s.o.Clock.Now()
		var due []dueItem
		for s.queue.Len() > 0 && !s.queue[0].at.After(now) {
			due = append(due, heap.Pop(&s.queue).(dueItem))
		}
		var next time.Time
		var timer <-chan time.Time
		pending := s.queue.Len() > 0
		if pending {
			next = s.queue[0].at
			if len(due) == 0 && wait {
				timer = s.o.Clock.After(next.Sub(now))
			}
		}
		s.mu.Unlock()
		if len(due) > 0 {
			if n := dispatch(due); n < len(due) {
				s.mu.Lock()
				for _, r := range due[n:] {
					heap.Push(&s.queue, r)
				}
				s.mu.Unlock()
				return
			}
			continue
		}
		if !idle(next, pending, timer) {
			return
		}
	}
}

// loop runs the daemon's dispatch: due intervals go to the workers, and between them it
// sleeps until the next is due or a new one is scheduled.
func (s *Scheduler) loop(ctx context.Context) {
	defer s.done.Done()
	s.run(func(due []dueItem) int {
		for i, it := range due {
			select {
			case s.work <- it:
			case <-ctx.Done():
				return i
			}
		}
		return len(due)
	}, true, func(_ time.Time, _ bool, timer <-chan time.Time) bool {
		select {
		case <-ctx.Done():
			return false
		case <-s.wake:
		case <-timer:
		}
		return true
	})
}

// handle judges one dispatched interval.
func (s *Scheduler) handle(ctx context.Context, it dueItem) {
	s.m.Lag.Observe(s.o.Clock.Now().Sub(it.at).Seconds())
	if it.recovery {
		s.watch(ctx, it)
		return
	}
	// One judge at a time per canary: an item queued twice (a lease lost and regained
	// while its next interval was still queued) would judge that interval twice at once,
	// one result dropped. One that comes meanwhile waits for the first, then follows the
	// store (the highest index kept: a lower one is stale).
	s.mu.Lock()
	if later, busy := s.judging[it.id]; busy {
		if later == nil || later.index < it.index {
			s.judging[it.id] = &it
		}
		s.mu.Unlock()
		return
	}
	s.judging[it.id] = nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		later := s.judging[it.id]
		delete(s.judging, it.id)
		s.mu.Unlock()
		if later != nil {
			s.schedule(*later)
		}
	}()
	s.judge(ctx, it)
}

func (s *Scheduler) worker(loopCtx, workCtx context.Context) {
	defer s.done.Done()
	for {
		select {
		case <-loopCtx.Done():
			return
		case it := <-s.work:
			s.handle(workCtx, it)
		}
	}
}

func (s *Scheduler) syncCountsLocked() {
	for _, st := range Statuses {
		s.m.Canaries.WithLabelValues(string(st)).Set(float64(s.counts[st]))
	}
}

// ended updates the counts and metrics of a canary that reached a final status, and
// tells the actuation layer.
func (s *Scheduler) ended(ctx context.Context, c *Canary, a Action) {
	s.mu.Lock()
	s.counts[StatusRunning]--
	s.counts[c.Status]++
	if s.runningBy[c.Analysis] > 0 { // another replica may have counted its registration
		s.runningBy[c.Analysis]--
	}
	s.syncCountsLocked()
	s.mu.Unlock()
	s.m.Score.DeleteLabelValues(c.ID, c.Name, c.Analysis)
	s.forgetCanary(c.ID)
	s.release(ctx, c.ID)
	s.m.Verdicts.WithLabelValues(c.Analysis, string(c.Status)).Inc()
	if c.EndedAt != nil {
		s.m.TimeToVerdict.WithLabelValues(c.Analysis, string(c.Status)).Observe(c.EndedAt.Sub(c.CreatedAt).Seconds())
	}
	s.log.Info("canary ended", zap.String("canary", c.ID), zap.String("name", c.Name),
		zap.String("analysis", c.Analysis), zap.String("status", string(c.Status)),
		zap.String("cause", string(a.Cause)), zap.String("reason", c.Reason))
	s.o.Actuation.OnVerdict(ctx, c, a)
	s.scheduleRecovery(c)
}

// Analysis returns the analysis snapshot a canary is judged by (the one it was registered
// with, whatever the config says now).
func (s *Scheduler) Analysis(ctx context.Context, c *Canary) (*config.Analysis, error) {
	return s.o.Snapshots.Analysis(ctx, c)
}
