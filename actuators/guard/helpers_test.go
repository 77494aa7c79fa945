package guard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/analysis/simclock"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// testConfig has a rollback webhook (breaker and cooldown from the block), a
// notification webhook and a PagerDuty actuator; @HOOK@ and @PD@ are replaced with
// the loopback receivers' URLs.
const testConfig = `
server: {listen: "127.0.0.1:8080"}
providers:
  p: {type: prometheus, address: "http://127.0.0.1:1"}
actuation:
  backoff: 5ms
  approval_timeout: 30m
  external_url: "http://canaryd.test"
@EXTRA@
actuators:
  rollback: {type: webhook, url: "@HOOK@/rollback/{{ .Vars.app }}", attempts: 3}
  notify:   {type: webhook, url: "@HOOK@/notify", notification: true}
  page:     {type: pagerduty, url: "@PD@/v2/enqueue", routing_key_env: GUARD_TEST_PD_KEY}
  mark:     {type: webhook, url: "@HOOK@/mark/{{ .Trigger }}"}
  escalate: {type: webhook, url: "@HOOK@/escalate", notification: true}
@ACTUATORS@
analyses:
  golden:
    provider: p
    lifetime: 30m
    on_fail: [rollback, notify, page]
    on_pass: [notify]
    on_error: [notify]
    metrics:
      - {name: errors, query: 'e{t="{{ .Cohort.track }}"}'}
  announced:
    provider: p
    lifetime: 30m
    on_start: [notify, mark, notify]
    on_fail: [rollback, mark]
    metrics:
      - {name: errors, query: 'e{t="{{ .Cohort.track }}"}'}
  watched:
    provider: p
    lifetime: 30m
    on_fail: [rollback, notify]
    on_not_recovered: [escalate]
    recovery: {within: 5m, metrics: [errors]}
    metrics:
      - {name: errors, query: 'e{t="{{ .Cohort.track }}"}'}
  gated:
    provider: p
    lifetime: 30m
    require_approval: true
    on_fail: [rollback, notify]
    metrics:
      - {name: errors, query: 'e{t="{{ .Cohort.track }}"}'}
`

// delivery is one request a receiver got.
type delivery struct {
	path string
	key  string
	body string
}

// receiver is a loopback HTTP receiver for webhooks and PagerDuty events. It applies a
// request at most once per idempotency key, as receivers should, and answers with the
// statuses queued for a path (200, or 202 for /v2/enqueue, once they run out).
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []delivery
	// applied counts the effects per idempotency key: what "exactly once" is about.
	applied map[string]int
	codes   map[string][]int
	dups    map[string]int
	// hold, when set, makes the next request (every request with holdAll) wait until it
	// is closed; held is closed when the first one arrives.
	hold      chan struct{}
	held      chan struct{}
	holdAll   bool
	signalled bool
	// delay is how long each answer takes (a receiver across a network).
	delay time.Duration
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{applied: map[string]int{}, dups: map[string]int{}, codes: map[string][]int{}}
	rc.srv = httptest.NewServer(rc)
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	key := r.Header.Get(actuators.HeaderIdempotencyKey)
	rc.mu.Lock()
	rc.got = append(rc.got, delivery{path: r.URL.Path, key: key, body: string(b)})
	hold, held := rc.hold, rc.held
	rc.hold = nil
	code := http.StatusOK
	if r.URL.Path == "/v2/enqueue" {
		code = http.StatusAccepted
	}
	if q := rc.codes[r.URL.Path]; len(q) > 0 {
		code, rc.codes[r.URL.Path] = q[0], q[1:]
	}
	if code < 300 {
		if rc.applied[key] == 0 {
			rc.applied[key] = 1
		} else {
			rc.dups[key]++ // a redelivery, dropped as a receiver should
		}
	}
	if rc.holdAll {
		rc.hold = hold
	}
	if hold != nil && !rc.signalled {
		rc.signalled = true
		close(held)
	}
	delay := rc.delay
	rc.mu.Unlock()
	if hold != nil {
		<-hold
	}
	time.Sleep(delay)
	w.WriteHeader(code)
	io.WriteString(w, `{"status":"success"}`)
}

func (rc *receiver) deliveries(path string) []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []delivery
	for _, d := range rc.got {
		if strings.HasPrefix(d.path, path) {
			out = append(out, d)
		}
	}
	return out
}

// appliedTimes is how many times the effect of key was applied: 1 once it arrived,
// whatever the redeliveries.
func (rc *receiver) appliedTimes(key string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.applied[key]
}

func (rc *receiver) queue(path string, codes ...int) {
	rc.mu.Lock()
	rc.codes[path] = append(rc.codes[path], codes...)
	rc.mu.Unlock()
}

type env struct {
	t     testing.TB
	path  string
	src   string
	cfg   *config.Config
	st    *boltstore.Store
	g     *Guard
	reg   *prometheus.Registry
	clock *simclock.Clock
	// wrap, when set, wraps the guard's store at the next open.
	wrap func(Store) Store
	// replica and alive are the guard's Options.Replica and Options.Alive.
	replica string
	alive   func(ctx context.Context, replica string) (bool, error)
	rc      *receiver
	n       int
	// build, when set, is the guard's Options.Build.
	build BuildFunc
}

type envOpts struct {
	extra     string // lines for the actuation block
	actuators string // more actuator entries
	log       *zap.Logger
}

func configFor(rc *receiver, o envOpts) string {
	extra := o.extra
	if !strings.Contains(extra, "cooldown") {
		// Tests end many canaries of one service in a row; only TestCooldown wants one.
		extra += "\n  cooldown: 0s"
	}
	s := strings.NewReplacer("@EXTRA@", extra, "@ACTUATORS@", o.actuators).Replace(testConfig)
	return strings.NewReplacer("@HOOK@", rc.srv.URL, "@PD@", rc.srv.URL).Replace(s)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	rc := newReceiver(t)
	return envAt(t, filepath.Join(t.TempDir(), "canaryd.db"), configFor(rc, o), rc, o.log)
}

// envAt opens a guard on the store at path with the config src, as canaryd serve does.
func envAt(t testing.TB, path, src string, rc *receiver, log *zap.Logger) *env {
	t.Helper()
	return envAtWith(t, &env{t: t, path: path, src: src, rc: rc}, log)
}

// envAtWith opens e, whose t, src and rc are set (path defaults to a new file).
func envAtWith(t testing.TB, e *env, log ...*zap.Logger) *env {
	t.Helper()
	t.Setenv("GUARD_TEST_PD_KEY", "pd-routing-key")
	if e.path == "" {
		e.path = filepath.Join(t.TempDir(), "canaryd.db")
	}
	e.clock = simclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg, err := config.Parse([]byte(e.src), testKinds())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e.cfg = cfg
	var l *zap.Logger
	if len(log) > 0 {
		l = log[0]
	}
	e.open(l)
	return e
}

// open opens the store and starts a guard on it, as canaryd serve does at start.
func (e *env) open(log *zap.Logger) {
	e.t.Helper()
	st, err := boltstore.Open(e.path, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	if log == nil {
		log = zaptest.NewLogger(e.t)
	}
	e.reg = prometheus.NewRegistry()
	bs, err := NewBoltStore(st.DB())
	if err != nil {
		e.t.Fatal(err)
	}
	var gs Store = bs
	if e.wrap != nil {
		gs = e.wrap(bs)
	}
	g, err := New(Options{Store: gs, Canaries: st, Config: e.cfg, Logger: log, Metrics: NewMetrics(e.reg), Clock: e.clock,
		Replica: e.replica, Alive: e.alive, AdoptEvery: time.Hour, Build: e.build})
	if err != nil {
		e.t.Fatal(err)
	}
	e.g = g
	if err := g.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.close)
}

// close stops the guard and closes the store (a clean shutdown).
func (e *env) close() {
	if e.g != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.g.Stop(ctx)
		cancel()
		e.g = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *env) idle() {
	e.t.Helper()
	if err := e.g.Idle(e.ctx()); err != nil {
		e.t.Fatal(err)
	}
}

type canaryOpts struct {
	analysis string
	app      string
	status   analysis.Status
	kind     analysis.ActionKind // verdict (default), abort, promote
	dryRun   bool
	actuate  *bool
}

// end stores a canary that ended as o says, with one judged interval whose critical
// metric failed, as the scheduler records it, and returns it with its final action.
func (e *env) end(o canaryOpts) (*analysis.Canary, analysis.Action) {
	e.t.Helper()
	if o.analysis == "" {
		o.analysis = "golden"
	}
	if o.kind == "" {
		o.kind = analysis.ActionVerdict
	}
	e.n++
	a := e.cfg.Analyses[o.analysis]
	now := e.clock.Now()
	c := &analysis.Canary{
		ID: fmt.Sprintf("canary%c%c", 'a'+e.n/26, 'a'+e.n%26), Name: fmt.Sprintf("%s v%d", o.app, e.n),
		Analysis: a.Name, AnalysisHash: a.Hash, Baseline: map[string]string{"track": "baseline"},
		Canary: map[string]string{"track": "canary"}, Vars: map[string]string{"app": o.app}, DryRun: o.dryRun,
		Start: now.Add(-30 * time.Minute), Lifetime: 30 * time.Minute, Interval: 30 * time.Minute, Intervals: 1, NextIndex: 1,
		Status: analysis.StatusRunning, CreatedAt: now.Add(-30 * time.Minute), UpdatedAt: now,
	}
	if err := e.st.Create(e.ctx(), c, a.Source); err != nil {
		e.t.Fatal(err)
	}
	r := &analysis.IntervalResult{CanaryID: c.ID, Index: 1, JudgedAt: now, Metrics: []judge.MetricResult{
		{Name: "latency", Classification: judge.ClassPass, Reason: "same"},
		{Name: "saturation", Classification: judge.ClassError, Reason: "query failed"},
		{Name: "errors", Classification: judge.ClassHigh, Critical: true, Reason: "error rate up 60%"},
	}}
	var act analysis.Action
	c, err := e.st.RecordInterval(e.ctx(), r, func(c *analysis.Canary) ([]analysis.Action, error) {
		c.Status, c.Reason, c.EndedAt, c.UpdatedAt = o.status, "critical metric errors failed", &now, now
		actuate := !c.DryRun
		if o.actuate != nil {
			actuate = *o.actuate && actuate
		}
		act = analysis.Action{CanaryID: c.ID, Time: now, Kind: o.kind, Status: o.status, Cause: analysis.CauseCritical, Reason: c.Reason, Actuate: actuate}
		return []analysis.Action{act}, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c, act
}

// register stores a running canary of the analysis, as the scheduler's Register does,
// without telling the guard.
func (e *env) register(an, app string) *analysis.Canary {
	e.t.Helper()
	e.n++
	a := e.cfg.Analyses[an]
	now := e.clock.Now()
	c := &analysis.Canary{
		ID: fmt.Sprintf("canary%c%c", 'a'+e.n/26, 'a'+e.n%26), Name: fmt.Sprintf("%s v%d", app, e.n),
		Analysis: a.Name, AnalysisHash: a.Hash, Baseline: map[string]string{"track": "baseline"},
		Canary: map[string]string{"track": "canary"}, Vars: map[string]string{"app": app},
		Start: now.Add(-time.Minute), Lifetime: 30 * time.Minute, Interval: 30 * time.Minute, Intervals: 1, NextIndex: 1,
		Status: analysis.StatusRunning, CreatedAt: now, UpdatedAt: now,
	}
	if err := e.st.Create(e.ctx(), c, a.Source); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// endRegistered ends a canary register stored, as the scheduler records its verdict.
func (e *env) endRegistered(c *analysis.Canary, status analysis.Status) (*analysis.Canary, analysis.Action) {
	e.t.Helper()
	now := e.clock.Now()
	r := &analysis.IntervalResult{CanaryID: c.ID, Index: 1, JudgedAt: now, Metrics: []judge.MetricResult{
		{Name: "errors", Classification: judge.ClassHigh, Critical: true, Reason: "error rate up 60%"},
	}}
	var act analysis.Action
	c, err := e.st.RecordInterval(e.ctx(), r, func(c *analysis.Canary) ([]analysis.Action, error) {
		c.Status, c.Reason, c.EndedAt, c.UpdatedAt = status, "critical metric errors failed", &now, now
		act = analysis.Action{CanaryID: c.ID, Time: now, Kind: analysis.ActionVerdict, Status: status, Cause: analysis.CauseCritical, Reason: c.Reason, Actuate: true}
		return []analysis.Action{act}, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c, act
}

// verdict ends a canary and tells the guard, as the scheduler does.
func (e *env) verdict(o canaryOpts) *analysis.Canary {
	e.t.Helper()
	c, act := e.end(o)
	e.g.OnVerdict(context.Background(), c, act)
	e.idle()
	return c
}

func (e *env) actuations(id string) map[string]*Actuation {
	e.t.Helper()
	as, err := e.g.Actuations(e.ctx(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*Actuation{}
	for _, a := range as {
		out[a.Actuator] = a
	}
	return out
}

// value reads a counter's or gauge's value, or a histogram's sample count.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	t.Fatalf("unsupported metric %v", d.String())
	return 0
}

func (e *env) audit(q Query) []Entry {
	e.t.Helper()
	es, err := e.g.Audit(e.ctx(), q)
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

func parseConfig(src string) (*config.Config, error) { return config.Parse([]byte(src), testKinds()) }
