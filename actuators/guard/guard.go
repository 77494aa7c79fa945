package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
)

// Canaries is what the guard reads of the analysis store; analysis.Store (the bbolt
// store) satisfies it. The guard reads the store rather than the scheduler so that it can
// be built before the scheduler it is given to.
type Canaries interface {
	Get(ctx context.Context, id string) (*analysis.Canary, error)
	List(ctx context.Context, status analysis.Status) ([]*analysis.Canary, error)
	Intervals(ctx context.Context, id string) ([]analysis.IntervalResult, error)
	Actions(ctx context.Context, id string) ([]analysis.Action, error)
	Analysis(ctx context.Context, hash string) ([]byte, error)
}

// Analyses gives the analysis snapshot a canary is judged by; *analysis.Snapshots is one.
type Analyses interface {
	Analysis(ctx context.Context, c *analysis.Canary) (*config.Analysis, error)
}

// BuildFunc builds an actuator from its config entry.
type BuildFunc func(a *config.Actuator, o actuators.Options) (actuators.Actuator, error)

// Options configure a Guard. DB, Canaries and Config are required.
type Options struct {
	// Store keeps the guard's state (NewBoltStore: in the analysis store's bbolt file).
	Store    Store
	Canaries Canaries
	// Config gives the actuators and the actuation block; Configure replaces it.
	Config  *config.Config
	Logger  *zap.Logger
	Metrics *Metrics
	// Clock is the clock of records, the breaker and the cooldown: the scheduler's
	// (default analysis.RealClock). Waits between attempts run on real time.
	Clock analysis.Clock
	// StateDir is where actuators keep files that must survive a restart (exec's
	// completion markers); default <bbolt file>.exec for a BoltStore.
	StateDir string
	// Analyses gives a canary's analysis snapshot: the scheduler's cache
	// (analysis.Snapshots), shared (default a cache of the guard's own over Canaries).
	Analyses Analyses
	// Build builds actuators (default (*config.Actuator).Build).
	Build BuildFunc
	// SweepEvery is how often approvals are expired and the audit log pruned (1m).
	SweepEvery time.Duration
	// StoreErrors, when set, also counts the guard's failed store writes (the daemon
	// passes canaryd_store_errors_total, so one alert covers every write).
	StoreErrors prometheus.Counter

	// Replica names this process among the replicas of a shared store (unique to the
	// process: a restart is a new replica); empty with one process.
	Replica string
	// Alive, with a shared store, reports whether a replica is alive (it renewed its
	// leases lately, by the database's clock). Recover then resumes only the unfinished
	// actions of replicas that are not, and a loop adopts them every AdoptEvery, so an
	// action a dead replica left is fired by another; nil: every unfinished action is
	// this process' own, resumed at Start only.
	Alive func(ctx context.Context, replica string) (bool, error)
	// AdoptEvery is how often the adoption loop runs (default 15s, with Alive).
	AdoptEvery time.Duration
}

// Guard is the safety layer. It implements analysis.Actuation.
type Guard struct {
	o     Options
	store Store
	cs    Canaries
	log   *zap.Logger
	m     *Metrics
	now   func() time.Time

	setup    atomic.Pointer[setup]
	stateDir string // actuators.Options.StateDir

	plans   queue[planJob]
	fires   queue[string]
	work    atomic.Int64 // jobs queued or running, timers armed: Idle waits for 0
	timerMu sync.Mutex
	timers  map[*time.Timer]struct{}

	// pending holds the keys of attempts whose outcome is not yet written (the store
	// refused the write); writeOutcome retries until it is.
	pendingMu sync.Mutex
	pending   map[string]struct{}
	// failWrite, when set (tests), fails a write transaction before it starts.
	failWrite func() error

	started  atomic.Bool
	stopping atomic.Bool
	stop     context.CancelFunc // ends the loops
	hardStop context.CancelFunc // cancels attempts in flight
	done     sync.WaitGroup
}

// setup is one config's actuators, replaced whole on reload.
type setup struct {
	cfg  *config.Config
	acts map[string]built
	link string
}

type built struct {
	entry *config.Actuator
	act   actuators.Actuator
}

var _ analysis.StartActuation = (*Guard)(nil)

// New builds a guard and its actuators and creates its buckets; it starts nothing.
func New(o Options) (*Guard, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("guard: no Store")
	case o.Canaries == nil:
		return nil, errors.New("guard: no Canaries")
	case o.Config == nil:
		return nil, errors.New("guard: no Config")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Clock == nil {
		o.Clock = analysis.RealClock{}
	}
	if o.Build == nil {
		o.Build = (*config.Actuator).Build
	}
	if o.Analyses == nil {
		o.Analyses = analysis.NewSnapshots(o.Canaries)
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	if o.AdoptEvery <= 0 {
		o.AdoptEvery = 15 * time.Second
	}
	if p, ok := o.Store.(interface{ Path() string }); ok && o.StateDir == "" {
		// Next to the store: exec's completion markers and run files survive restarts
		// with it (<storage>.exec/).
		o.StateDir = p.Path() + ".exec"
	}
	g := &Guard{
		stateDir: o.StateDir,
		o:        o, store: o.Store, cs: o.Canaries, log: o.Logger.Named("guard"), m: o.Metrics, now: o.Clock.Now,
		timers:  map[*time.Timer]struct{}{},
		pending: map[string]struct{}{},
		plans:   newQueue[planJob](),
		fires:   newQueue[string](),
	}
	s, err := g.build(o.Config, nil)
	if err != nil {
		return nil, err
	}
	g.setup.Store(s)
	return g, nil
}

// build makes a setup from cfg, keeping the actuators of old whose entry is unchanged.
func (g *Guard) build(cfg *config.Config, old *setup) (*setup, error) {
	s := &setup{cfg: cfg, acts: make(map[string]built, len(cfg.Actuators))}
	var errs []string
	for name, entry := range cfg.Actuators {
		if old != nil {
			if b, ok := old.acts[name]; ok && b.entry.Unchanged(entry) {
				s.acts[name] = built{entry: entry, act: b.act}
				continue
			}
		}
		act, err := g.o.Build(entry, actuators.Options{Name: name, OutputLimit: cfg.Actuation.OutputLimit, StateDir: g.stateDir})
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		s.acts[name] = built{entry: entry, act: act}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("guard: %s", strings.Join(errs, "; "))
	}
	base := cfg.Actuation.ExternalURL
	if base == "" {
		base = "http://" + cfg.Server.Listen
	}
	s.link = strings.TrimRight(base, "/") + "/api/v1/canaries/"
	return s, nil
}

// Configure builds the actuators of a new config and, when all build, makes it current;
// otherwise the old config stays and the error says which actuator failed. Actions
// already planned keep their snapshotted event and use the actuator of the same name.
func (g *Guard) Configure(cfg *config.Config) error {
	s, err := g.build(cfg, g.setup.Load())
	if err != nil {
		return err
	}
	g.setup.Store(s)
	return nil
}

// RecordReload writes a config reload to the audit log: hash is the new file's, err the
// reason it was refused (nil when it was installed). The actor comes from ctx.
func (g *Guard) RecordReload(ctx context.Context, hash string, err error) error {
	who := identity.From(ctx, "canaryd")
	e := &Entry{Time: g.now(), Kind: KindReload, Who: who.Name, Remote: who.Remote, Outcome: "ok", Reason: "config " + hash}
	if err != nil {
		e.Outcome, e.Error = "error", err.Error()
	}
	return g.update(func(tx Tx) error { return tx.AppendAudit(e) })
}

// Event is what a deploy tool reported about a canary, for the audit log: the canary
// (ID "" when canaryd holds none for it), what happened (Outcome, a word such as the
// tool's event type) and its message (Reason).
type Event struct {
	Canary, CanaryName, Analysis string
	Outcome, Reason              string
}

// RecordEvent writes a deploy tool's event to the audit log (kind event). The actor
// comes from ctx.
func (g *Guard) RecordEvent(ctx context.Context, ev Event) error {
	who := identity.From(ctx, "canaryd")
	e := &Entry{Time: g.now(), Kind: KindEvent, Who: who.Name, Remote: who.Remote, Canary: ev.Canary,
		CanaryName: ev.CanaryName, Analysis: ev.Analysis, Outcome: ev.Outcome, Reason: ev.Reason}
	return g.update(func(tx Tx) error { return tx.AppendAudit(e) })
}

// update runs fn in a write transaction, counting a failure as a store error. It is not
// cancelled with a request: what the guard writes (an outcome above all) must land.
func (g *Guard) update(fn func(Tx) error) error {
	var err error
	if g.failWrite != nil {
		err = g.failWrite()
	}
	if err == nil {
		err = g.store.Update(context.Background(), fn)
	}
	if err != nil {
		g.m.StoreErrors.Inc()
		if g.o.StoreErrors != nil {
			g.o.StoreErrors.Inc()
		}
	}
	return err
}

// PendingOutcomes is how many attempts have happened whose outcome the store has not
// yet accepted (they are being retried); canaryd is not ready while it is above 0.
func (g *Guard) PendingOutcomes() int {
	g.pendingMu.Lock()
	defer g.pendingMu.Unlock()
	return len(g.pending)
}

// Start runs the planner, the firing workers and the sweeper until Stop.
func (g *Guard) Start() error {
	if !g.started.CompareAndSwap(false, true) {
		return errors.New("guard: already started")
	}
	loopCtx, stop := context.WithCancel(context.Background())
	workCtx, hardStop := context.WithCancel(context.Background())
	g.stop, g.hardStop = stop, hardStop
	workers := g.setup.Load().cfg.Actuation.Workers
	g.done.Add(2 + workers)
	go g.planLoop(loopCtx, workCtx)
	go g.sweepLoop(loopCtx)
	if g.o.Alive != nil {
		g.done.Add(1)
		go g.adoptLoop(loopCtx)
	}
	for range workers {
		go g.fireLoop(loopCtx, workCtx)
	}
	return nil
}

// Stop stops taking work, lets attempts in flight finish until ctx ends, then cancels
// them. Whatever is left (queued, retrying, interrupted) is persisted as pending or
// firing, and Recover picks it up at the next start.
func (g *Guard) Stop(ctx context.Context) {
	if !g.started.Load() || !g.stopping.CompareAndSwap(false, true) {
		return
	}
	g.timerMu.Lock()
	for t := range g.timers {
		if t.Stop() {
			g.work.Add(-1)
		}
	}
	g.timers = map[*time.Timer]struct{}{}
	g.timerMu.Unlock()
	g.stop()
	finished := make(chan struct{})
	go func() { g.done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		g.hardStop()
		<-finished
	}
	g.hardStop()
}

// Idle waits until nothing is queued, running or waiting to be retried: for tests and
// for a graceful drain.
func (g *Guard) Idle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for g.work.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("guard: %d jobs still busy: %w", g.work.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// planJob is a canary that reached a final status, or one just registered (trigger
// on_start), to plan.
type planJob struct {
	canary *analysis.Canary
	action analysis.Action
	actor  Actor
	// trigger is the hook to plan when it is not the canary's end (TriggerStart); empty
	// for the end, whose hook follows from the final status.
	trigger string
	tries   int
}

// OnStart queues a just-registered canary's on_start actions and returns at once, like
// OnVerdict; the scheduler calls it once the canary is stored. If canaryd dies before
// the plan is persisted, Recover plans it (within actuation.recover_window).
func (g *Guard) OnStart(ctx context.Context, c *analysis.Canary) {
	if g.stopping.Load() {
		g.log.Warn("stopping: canary's start left for Recover", zap.String("canary", c.ID))
		return
	}
	cc := *c
	g.enqueuePlan(planJob{canary: &cc, action: startAction(&cc), actor: identity.From(ctx, "api"), trigger: TriggerStart})
}

// OnVerdict queues the canary's actions for planning and returns at once: the
// scheduler's worker is never held by an actuator. If canaryd dies before the plan is
// persisted, Recover finds the canary ended and unplanned, and plans it then.
func (g *Guard) OnVerdict(ctx context.Context, c *analysis.Canary, a analysis.Action) {
	if g.stopping.Load() {
		g.log.Warn("stopping: canary left for Recover", zap.String("canary", c.ID))
		return
	}
	def := "scheduler"
	if a.Kind != analysis.ActionVerdict {
		def = "api"
	}
	cc := *c
	g.enqueuePlan(planJob{canary: &cc, action: a, actor: identity.From(ctx, def)})
}

func (g *Guard) enqueuePlan(j planJob) {
	g.work.Add(1)
	g.m.Queued.Inc()
	g.plans.push(j)
}

func (g *Guard) enqueueFire(key string) {
	g.work.Add(1)
	g.m.Queued.Inc()
	g.fires.push(key)
}

// fireAt queues key for firing after d (at once when d <= 0).
func (g *Guard) fireAt(key string, d time.Duration) {
	if d <= 0 {
		g.enqueueFire(key)
		return
	}
	g.timerMu.Lock()
	defer g.timerMu.Unlock()
	if g.stopping.Load() {
		return
	}
	g.work.Add(1)
	g.m.Queued.Inc()
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		g.timerMu.Lock()
		_, live := g.timers[t]
		delete(g.timers, t)
		g.timerMu.Unlock()
		if !live {
			return
		}
		g.fires.push(key) // the timer's work unit carries over to the firing
	})
	g.timers[t] = struct{}{}
}

func (g *Guard) done1() {
	g.work.Add(-1)
	g.m.Queued.Dec()
}

func (g *Guard) planLoop(loopCtx, workCtx context.Context) {
	defer g.done.Done()
	for {
		j, ok := g.plans.pop(loopCtx)
		if !ok {
			return
		}
		if err := g.plan(workCtx, j); err != nil {
			j.tries++
			if workCtx.Err() == nil && j.tries < 5 {
				g.log.Warn("planning failed; retrying", zap.String("canary", j.canary.ID), zap.Int("try", j.tries), zap.Error(err))
				g.work.Add(1)
				g.m.Queued.Inc()
				time.AfterFunc(time.Duration(j.tries)*time.Second, func() {
					if g.stopping.Load() {
						g.done1()
						return
					}
					g.plans.push(j) // the delay's work unit carries over
				})
			} else {
				g.log.Error("planning failed; Recover will plan it at the next start", zap.String("canary", j.canary.ID), zap.Error(err))
			}
		}
		g.done1()
	}
}

func (g *Guard) fireLoop(loopCtx, workCtx context.Context) {
	defer g.done.Done()
	for {
		key, ok := g.fires.pop(loopCtx)
		if !ok {
			return
		}
		g.fire(workCtx, key)
		g.done1()
	}
}

func (g *Guard) sweepLoop(ctx context.Context) {
	defer g.done.Done()
	t := time.NewTicker(g.o.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.Sweep(ctx); err != nil && ctx.Err() == nil {
				g.log.Error("sweep", zap.Error(err))
			}
		}
	}
}

// adoptLoop, with a shared store, resumes the unfinished actions of replicas that died
// and plans the canaries they ended without planning (every fourth pass: that one reads
// every canary), until ctx ends.
func (g *Guard) adoptLoop(ctx context.Context) {
	defer g.done.Done()
	t := time.NewTicker(g.o.AdoptEvery)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := g.setup.Load()
		now := g.now()
		rep, err := g.resumeActions(ctx, s, now)
		if err == nil && n%4 == 0 {
			var all []*analysis.Canary
			if all, err = g.cs.List(ctx, ""); err == nil {
				if err = g.planLostStarts(ctx, all, s, now, &rep); err == nil {
					err = g.planLost(ctx, all, s, now, &rep)
				}
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				g.log.Error("adopt the actions of dead replicas", zap.Error(err))
			}
			continue
		}
		if rep.Resumed+rep.Abandoned+rep.Planned+rep.Stale+rep.Started+rep.StaleStarts > 0 {
			g.log.Info("adopted the actions of dead replicas", zap.Int("resumed", rep.Resumed), zap.Int("abandoned", rep.Abandoned),
				zap.Int("planned", rep.Planned), zap.Int("stale", rep.Stale), zap.Int("started", rep.Started))
		}
	}
}

// queue is an unbounded FIFO: pushing never blocks (OnVerdict must not), and the
// entries are small.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
}

func newQueue[T any]() queue[T] { return queue[T]{signal: make(chan struct{}, 1)} }

func (q *queue[T]) push(x T) {
	q.mu.Lock()
	q.items = append(q.items, x)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue[T]) pop(ctx context.Context) (T, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			x := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				// Wake another consumer for the rest.
				select {
				case q.signal <- struct{}{}:
				default:
				}
			}
			return x, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			var zero T
			return zero, false
		case <-q.signal:
		}
	}
}
