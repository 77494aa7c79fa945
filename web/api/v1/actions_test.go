package v1

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/analysis/simclock"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/web/auth"
)

const actionsConfig = `
providers:
  p: {type: prometheus, address: "http://127.0.0.1:1"}
actuation: {backoff: 5ms, cooldown: 0s}
actuators:
  rollback: {type: webhook, url: "HOOK/rollback"}
  notify: {type: webhook, url: "HOOK/notify", notification: true}
analyses:
  gated:
    provider: p
    interval: 1m
    lifetime: 30m
    require_approval: true
    on_fail: [rollback, notify]
    metrics:
      - name: errors
        query: 'errors{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}'
`

type hooks struct {
	mu   sync.Mutex
	hits map[string]int
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hits[r.URL.Path]++
	h.mu.Unlock()
}

func (h *hooks) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

type actionsEnv struct {
	t     *testing.T
	srv   http.Handler
	st    *boltstore.Store
	sched *analysis.Scheduler
	g     *guard.Guard
	hooks *hooks
}

// newActionsAPI wires the API with the guard as canaryd serve does: the guard reads the
// store, the scheduler tells it of final canaries, the API serves its endpoints.
func newActionsAPI(t *testing.T, withGuard bool) *actionsEnv {
	t.Helper()
	return newActionsAPIOn(t, withGuard, nil)
}

// newActionsAPIOn is newActionsAPI with the scheduler, the guard and the API on clk
// (real time when nil).
func newActionsAPIOn(t *testing.T, withGuard bool, clk analysis.Clock) *actionsEnv {
	t.Helper()
	h := &hooks{hits: map[string]int{}}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	cfg, err := config.Parse([]byte(strings.ReplaceAll(actionsConfig, "HOOK", hs.URL)), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "c.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t)
	e := &actionsEnv{t: t, st: st, hooks: h}
	o := analysis.Options{Store: st, Clock: clk, Logger: log, Metrics: analysis.NewMetrics(reg), Limits: analysis.LimitsOf(cfg.Server)}
	var acts Actuations
	if withGuard {
		gs, err := guard.NewBoltStore(st.DB())
		if err != nil {
			t.Fatal(err)
		}
		e.g, err = guard.New(guard.Options{Store: gs, Canaries: st, Config: cfg, Logger: log, Metrics: guard.NewMetrics(reg), Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.g.Start(); err != nil {
			t.Fatal(err)
		}
		o.Actuation, acts = e.g, e.g
	}
	e.sched = analysis.NewScheduler(o)
	e.sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"p": constProvider{}}})
	if err := e.sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.srv = New(Options{Reader: e.sched, Registrar: e.sched, Operator: e.sched, Gatherer: reg, Logger: log, Actuations: acts, Clock: clk})
	t.Cleanup(func() {
		e.sched.Stop(context.Background())
		if e.g != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e.g.Stop(ctx)
			cancel()
		}
		st.Close()
	})
	return e
}

func (e *actionsEnv) idle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.g.Idle(ctx); err != nil {
		e.t.Fatal(err)
	}
}

const gatedBody = `{"name":"web v2","analysis":"gated","baseline":{"track":"baseline"},"canary":{"track":"canary"},"vars":{"app":"web"}}`

// failed registers a canary and ends it as the scheduler does on a failed verdict.
func (e *actionsEnv) failed() string {
	e.t.Helper()
	code, c := do(e.t, e.srv, "POST", "/api/v1/canaries", gatedBody)
	if code != 201 {
		e.t.Fatalf("register: %d %v", code, c)
	}
	id := c["id"].(string)
	now := time.Now()
	var act analysis.Action
	ended, err := e.st.Update(context.Background(), id, func(c *analysis.Canary) ([]analysis.Action, error) {
		c.Status, c.Reason, c.EndedAt = analysis.StatusFail, "critical metric errors failed", &now
		act = analysis.Action{CanaryID: id, Time: now, Kind: "verdict", Status: analysis.StatusFail, Cause: analysis.CauseCritical, Actuate: true}
		return []analysis.Action{act}, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.g.OnVerdict(context.Background(), ended, act)
	e.idle()
	return id
}

func doAs(t *testing.T, srv http.Handler, user, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set(auth.HeaderUser, user)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	code := rec.Code
	var out map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
	}
	return code, out
}

func states(out map[string]any) map[string]string {
	m := map[string]string{}
	acts, _ := out["actuations"].([]any)
	for _, a := range acts {
		am := a.(map[string]any)
		m[am["actuator"].(string)] = am["state"].(string)
	}
	return m
}

func TestApproveAndReject(t *testing.T) {
	e := newActionsAPI(t, true)
	id := e.failed()
	code, out := do(t, e.srv, "GET", "/api/v1/canaries/"+id+"/actuations", "")
	if s := states(out); code != 200 || s["rollback"] != "awaiting_approval" || s["notify"] != "succeeded" {
		t.Fatalf("before: %d %v", code, out)
	}
	for _, tc := range []struct {
		path, body string
		code       int
		field      string
	}{
		{"/api/v1/canaries/" + id + "/approve", `{"actuators":[""]}`, 400, "actuators[0]"},
		{"/api/v1/canaries/" + id + "/approve", `{"why":"x"}`, 400, "why"},
		{"/api/v1/canaries/" + id + "/approve?force=1", ``, 400, ""},
		{"/api/v1/canaries/" + id + "/approve", `{"actuators":["notify"]}`, 409, ""},
		{"/api/v1/canaries/nosuchcanary/approve", ``, 404, ""},
		{"/api/v1/canaries/NOT_AN_ID/reject", ``, 404, ""},
	} {
		code, out := do(t, e.srv, "POST", tc.path, tc.body)
		if f, _ := out["field"].(string); code != tc.code || f != tc.field {
			t.Errorf("%s %s: %d %v", tc.path, tc.body, code, out)
		}
	}
	code, out = doAs(t, e.srv, "alice", "POST", "/api/v1/canaries/"+id+"/approve", `{"reason":"real regression"}`)
	if code != 200 || out["canary_id"] != id {
		t.Fatalf("approve: %d %v", code, out)
	}
	e.idle()
	if n := e.hooks.count("/rollback"); n != 1 {
		t.Errorf("rollback fired %d times", n)
	}
	if code, _ := do(t, e.srv, "POST", "/api/v1/canaries/"+id+"/approve", ""); code != 409 {
		t.Errorf("second approve: %d", code)
	}
	_, out = do(t, e.srv, "GET", "/api/v1/audit?kind=approve", "")
	es := out["entries"].([]any)
	if len(es) != 1 || es[0].(map[string]any)["who"] != "api:alice" || es[0].(map[string]any)["reason"] != "real regression" {
		t.Errorf("audit: %v", out)
	}

	other := e.failed()
	code, out = do(t, e.srv, "POST", "/api/v1/canaries/"+other+"/reject", `{"reason":"known flake"}`)
	if code != 200 || states(out)["rollback"] != "rejected" {
		t.Errorf("reject: %d %v", code, out)
	}
	e.idle()
	if n := e.hooks.count("/rollback"); n != 1 {
		t.Errorf("a rejected rollback fired")
	}
}

// An abort through the API fires the fail actuators at once (a human decided) and is
// recorded as done by the client.
func TestAbortRecordedWithClient(t *testing.T) {
	e := newActionsAPI(t, true)
	_, c := do(t, e.srv, "POST", "/api/v1/canaries", gatedBody)
	id := c["id"].(string)
	if code, out := doAs(t, e.srv, "bob", "POST", "/api/v1/canaries/"+id+"/abort", `{"reason":"pager"}`); code != 200 {
		t.Fatalf("abort: %d %v", code, out)
	}
	e.idle()
	if n := e.hooks.count("/rollback"); n != 1 {
		t.Errorf("rollback fired %d times", n)
	}
	_, out := do(t, e.srv, "GET", "/api/v1/audit?canary="+id+"&kind=abort", "")
	es := out["entries"].([]any)
	if len(es) != 1 || es[0].(map[string]any)["who"] != "api:bob" || es[0].(map[string]any)["outcome"] != "aborted" {
		t.Errorf("audit: %v", out)
	}
}

// The audit log's relative times count from the clock the guard records on, not from the
// wall clock: on a clock of March, since=1h finds March's entries.
func TestAuditSinceOnTheSchedulersClock(t *testing.T) {
	clk := simclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := newActionsAPIOn(t, true, clk)
	e.failed()
	for _, tc := range []struct {
		name, query string
		n           int
	}{
		{"all", "", 4},
		{"last hour of the clock", "?since=1h", 4},
		{"after the clock's now", "?since=" + clk.Now().Add(time.Minute).Format(time.RFC3339), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, e.srv, "GET", "/api/v1/audit"+tc.query, "")
			if es, _ := out["entries"].([]any); code != 200 || len(es) != tc.n {
				t.Errorf("%d, %d entries, want %d: %v", code, len(es), tc.n, out)
			}
		})
	}
}

func TestAuditQuery(t *testing.T) {
	e := newActionsAPI(t, true)
	id := e.failed()
	e.failed()
	for _, tc := range []struct {
		query string
		code  int
		field string
		n     int
	}{
		{"", 200, "", 8},
		{"?canary=" + id, 200, "", 4},
		{"?service=web&actuator=notify", 200, "", 4},
		{"?type=webhook&outcome=succeeded", 200, "", 2},
		{"?since=1h", 200, "", 8},
		{"?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), 200, "", 0},
		{"?until=2000-01-01T00:00:00Z", 200, "", 0},
		{"?limit=3", 200, "", 3},
		{"?since=yesterday", 400, "since", 0},
		{"?since=1h&until=2h", 400, "until", 0},
		{"?limit=0", 400, "limit", 0},
		{"?limit=5000", 400, "limit", 0},
		{"?before=x", 400, "before", 0},
		{"?who=me", 400, "who", 0},
	} {
		code, out := do(t, e.srv, "GET", "/api/v1/audit"+tc.query, "")
		if f, _ := out["field"].(string); code != tc.code || f != tc.field {
			t.Errorf("%s: %d %v", tc.query, code, out)
			continue
		}
		if code == 200 {
			if es, _ := out["entries"].([]any); len(es) != tc.n {
				t.Errorf("%s: %d entries, want %d", tc.query, len(es), tc.n)
			}
		}
	}
	// Paging with next_before walks the whole log once.
	seen := 0
	next := ""
	for range 10 {
		_, out := do(t, e.srv, "GET", "/api/v1/audit?limit=3"+next, "")
		seen += len(out["entries"].([]any))
		nb, ok := out["next_before"].(float64)
		if !ok {
			break
		}
		next = "&before=" + strconv.FormatUint(uint64(nb), 10)
	}
	if seen != 8 {
		t.Errorf("paged %d entries", seen)
	}
}

func TestActionsDisabled(t *testing.T) {
	e := newActionsAPI(t, false)
	for _, p := range []string{"/api/v1/canaries/abc/approve", "/api/v1/canaries/abc/reject"} {
		if code, out := do(t, e.srv, "POST", p, ""); code != 404 || !strings.Contains(out["error"].(string), "not enabled") {
			t.Errorf("%s: %d %v", p, code, out)
		}
	}
	if code, _ := do(t, e.srv, "GET", "/api/v1/audit", ""); code != 404 {
		t.Errorf("audit: %d", code)
	}
}
