package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canaryd/canaryd/analysis/pgstore"
	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
)

// pgConfig: chaosConfig's canaries (synthetic provider, the "bad" cohort fails its
// critical metric at once, a webhook on each verdict), a little longer-lived, with the
// safety layer's bbolt file set (server.actuation_store) or, with "", in the database.
const pgConfig = `
server: {min_interval: 1s, actuation_store: %q}
scheduler: {lease: 2s}
providers:
  sim:
    type: synthetic
    seed: 3
    regressions:
      bad: {error_rate: {shift: 0.5}}
actuators:
  hook: {type: webhook, url: %q, timeout: 2s}
actuation:
  service_var: app
  backoff: 100ms
analyses:
  chaos:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 6s
    warmup: 1s
    on_fail: [hook]
    on_pass: [hook]
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

func writePGConfig(t *testing.T, hookURL string) (cfgPath, actStore string) {
	t.Helper()
	dir := t.TempDir()
	return writePGConfigAt(t, dir, hookURL, filepath.Join(dir, "actuation.db"))
}

// writePGConfigAt writes pgConfig in dir with the safety layer's file actStore ("": in
// the database).
func writePGConfigAt(t *testing.T, dir, hookURL, actStore string) (cfgPath, _ string) {
	t.Helper()
	cfgPath = filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(pgConfig, actStore, hookURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, actStore
}

func pgQueryInt(t *testing.T, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// canaryd serve --storage postgres://… registers, judges and ends canaries with their
// state in PostgreSQL, the safety layer's too (no server.actuation_store); killed with
// SIGKILL mid-canary and started again, it resumes them: every interval recorded once,
// one verdict each, each webhook delivered once.
func TestServeOnPostgres(t *testing.T) {
	url := pgtest.Database(t)
	rc := &receiver{byKey: map[string]int{}, canary: map[string]map[string]bool{}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfgPath, _ := writePGConfigAt(t, dir, hook.URL, "")

	// Trusted on loopback, the password is never asked for; it must never be shown either.
	withPW := strings.Replace(url, "postgres://postgres@", "postgres://postgres:hunter2@", 1)
	p := startServe(t, cfgPath, withPW)
	ids := map[string]string{}
	for _, track := range []string{"good", "bad"} {
		var c canaryJSON
		body := map[string]any{
			"name": "svc-" + track, "analysis": "chaos",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": "svc-" + track},
		}
		if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
			t.Fatalf("register %s: %d", track, code)
		}
		ids[track] = c.ID
	}
	p.waitJudged(ids["good"], 2, 30*time.Second)
	p.kill()
	judgedBefore := pgQueryInt(t, url, fmt.Sprintf("SELECT count(*) FROM intervals WHERE canary_id = '%s'", ids["good"]))

	logs := p.logs.String()
	p = startServe(t, cfgPath, withPW)
	for track, want := range map[string]string{"good": "pass", "bad": "fail"} {
		c := p.waitEnded(ids[track], 60*time.Second)
		if c.Status != want {
			t.Errorf("%s: %s, want %s: %s", track, c.Status, want, c.Reason)
		}
		var idx []int
		for _, iv := range c.Intervals {
			idx = append(idx, iv.Index)
		}
		// Consecutive, each once, from the first after the warmup; a pass runs to the last.
		ok := len(idx) > 0 && c.Judged != nil && *c.Judged == len(idx)
		for i := 1; ok && i < len(idx); i++ {
			ok = idx[i] == idx[i-1]+1
		}
		if !ok || (want == "pass" && idx[len(idx)-1] != c.Count) {
			t.Errorf("%s: intervals %v (%v judged of %d)", track, idx, c.Judged, c.Count)
		}
		verdicts := 0
		for _, a := range c.Actions {
			if a.Kind == "verdict" {
				verdicts++
			}
		}
		if verdicts != 1 {
			t.Errorf("%s: %d verdicts: %+v", track, verdicts, c.Actions)
		}
		if got := pgQueryInt(t, url, fmt.Sprintf("SELECT count(*) FROM intervals WHERE canary_id = '%s'", ids[track])); got != len(idx) {
			t.Errorf("%s: %d intervals in PostgreSQL, the API shows %d", track, got, len(idx))
		}
	}
	if judgedBefore < 2 || judgedBefore >= 6 {
		t.Errorf("the kill came after %d intervals of the healthy canary, want 2 to 5 (mid-canary)", judgedBefore)
	}
	// Each verdict's webhook, once, under one key (the safety layer's records are in the
	// database).
	deadline := time.Now().Add(30 * time.Second)
	for {
		rc.mu.Lock()
		got := len(rc.canary[ids["good"]]) + len(rc.canary[ids["bad"]])
		dup := 0
		for _, n := range rc.byKey {
			if n > 1 {
				dup++
			}
		}
		rc.mu.Unlock()
		if dup > 0 {
			t.Fatalf("a webhook delivered twice under one key: %v", rc.byKey)
		}
		if got == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks: %v", rc.canary)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := pgQueryInt(t, url, "SELECT count(*) FROM canaries"); n != 2 {
		t.Errorf("%d canaries in PostgreSQL, want 2", n)
	}
	if n := pgQueryInt(t, url, "SELECT count(*) FROM guard_actuations"); n != 2 {
		t.Errorf("%d actions in PostgreSQL's guard_actuations, want 2 (one per verdict)", n)
	}
	if n := pgQueryInt(t, url, "SELECT count(*) FROM guard_planned"); n != 2 {
		t.Errorf("%d planned canaries in PostgreSQL, want 2", n)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.db")); len(files) != 0 {
		t.Errorf("a bbolt file beside the database: %v", files)
	}
	logs += p.logs.String()
	if line := grepLines(logs, "canaryd serving"); !strings.Contains(line, `"storage":"`+url+`"`) {
		t.Errorf("the log does not name the store as %s:\n%s", url, line)
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("the password is in the log:\n%s", grepLines(logs, "hunter2"))
	}
}

// A database that does not answer at start: serve refuses with one line naming the URL
// without its password, and the driver's reason.
func TestServePostgresDown(t *testing.T) {
	cfgPath, _ := writePGConfig(t, "http://127.0.0.1:1/hook")
	addr := freeAddr(t) // nothing listens there
	url := "postgres://canaryd:hunter2@" + addr + "/canaryd?sslmode=disable"
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), binPath, "serve", "--config", cfgPath, "--storage", url, "--listen", freeAddr(t), "--log-format", "console")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit code 1, got %v\nstderr:\n%s", err, stderr.String())
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s to refuse", d)
	}
	out := stdout.String() + stderr.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("the password is in the output:\n%s", out)
	}
	line := grepLines(stderr.String(), "canaryd: store")
	for _, want := range []string{
		"canaryd: store: cannot use PostgreSQL at postgres://canaryd@" + addr + "/canaryd?sslmode=disable: ",
		"connect", "refused",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q\nstderr:\n%s", line, want, stderr.String())
		}
	}
}

// /readyz follows the database and the canaries wait for it. Lost while two canaries run
// — the network cut (a proxy that drops every connection) or the database itself stopped
// (`pg_ctl stop -m immediate` on a cluster of the test's own), for longer than a canary
// lives — /readyz answers 503 without saying where the database is, the log says why
// once, and no action fires; once it is back, /readyz answers 200 and both canaries carry
// on to their end: every interval recorded once and in order, one verdict each, each
// webhook delivered once under its key.
func TestReadyzFollowsPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the store URL canaryd gets, the test's own URL of the database,
		// and what loses and restores it.
		setup func(t *testing.T) (storage, url string, lose, restore func())
	}{
		{"network cut", func(t *testing.T) (string, string, func(), func()) {
			url := pgtest.Database(t)
			target := strings.TrimPrefix(url, "postgres://postgres@")
			target = target[:strings.IndexByte(target, '/')]
			px := newCutProxy(t, target)
			return strings.Replace(url, target, px.addr(), 1), url, func() { px.cut(true) }, func() { px.cut(false) }
		}},
		{"database stopped", func(t *testing.T) (string, string, func(), func()) {
			pgtest.Shared(t) // skips or fails as Database does without PostgreSQL
			c, err := pgtest.Start(t.Context(), pgtest.Options{CrashSafe: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			url, err := c.NewDatabase(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return url, url, c.Crash, func() {
				if err := c.Restart(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storage, url, lose, restore := tc.setup(t)
			rc := &receiver{byKey: map[string]int{}, canary: map[string]map[string]bool{}}
			hook := httptest.NewServer(rc)
			t.Cleanup(hook.Close)
			cfgPath, _ := writePGConfigAt(t, t.TempDir(), hook.URL, "")
			p := startServe(t, cfgPath, storage)

			ready := func() (int, string) {
				resp, err := http.Get(p.url + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			waitReady := func(want int) string {
				deadline := time.Now().Add(15 * time.Second)
				for {
					code, body := ready()
					if code == want {
						return body
					}
					if time.Now().After(deadline) {
						t.Fatalf("/readyz %d %s, want %d", code, body, want)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			register := func(track string) string {
				var c canaryJSON
				body := map[string]any{
					"name": "svc-" + track, "analysis": "chaos",
					"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
					"vars": map[string]string{"app": "svc-" + track},
				}
				if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
					t.Fatalf("register %s: %d", track, code)
				}
				return c.ID
			}
			waitReady(http.StatusOK)
			ids := map[string]string{"good": register("good")}
			p.waitJudged(ids["good"], 1, 30*time.Second)
			ids["bad"] = register("bad") // its first interval, and its verdict, fall due while the database is away
			lose()
			answer := waitReady(http.StatusServiceUnavailable)
			if !strings.Contains(answer, "the store (PostgreSQL) does not answer") || strings.Contains(answer, "127.0.0.1") { // nor where it is
				t.Errorf("/readyz said %q", answer)
			}
			// Past the canaries' planned end, the database still away.
			for range 30 {
				if code, _ := ready(); code != http.StatusServiceUnavailable {
					t.Errorf("/readyz %d while the database is away", code)
				}
				time.Sleep(200 * time.Millisecond)
			}
			rc.mu.Lock()
			fired := len(rc.canary[ids["bad"]])
			rc.mu.Unlock()
			if fired != 0 {
				t.Errorf("the failing canary's webhook fired while the database was away")
			}
			restore()
			waitReady(http.StatusOK)

			// The intervals waited for it: each recorded once, each canary judged to its end.
			for track, want := range map[string]string{"good": "pass", "bad": "fail"} {
				c := p.waitEnded(ids[track], 60*time.Second)
				var idx []int
				for _, iv := range c.Intervals {
					idx = append(idx, iv.Index)
				}
				ok := c.Status == want && len(idx) > 0 && (want == "fail" || idx[len(idx)-1] == c.Count)
				for i := 1; ok && i < len(idx); i++ {
					ok = idx[i] == idx[i-1]+1
				}
				if !ok {
					t.Errorf("%s after the database came back: %s (%s), intervals %v of %d", track, c.Status, c.Reason, idx, c.Count)
				}
				if got := pgQueryInt(t, url, fmt.Sprintf("SELECT count(*) FROM intervals WHERE canary_id = '%s'", ids[track])); got != len(idx) {
					t.Errorf("%s: %d intervals in PostgreSQL, the API shows %d", track, got, len(idx))
				}
				verdicts := 0
				for _, a := range c.Actions {
					if a.Kind == "verdict" {
						verdicts++
					}
				}
				if verdicts != 1 {
					t.Errorf("%s: %d verdicts: %+v", track, verdicts, c.Actions)
				}
			}
			// Each verdict's webhook once, under one key.
			deadline := time.Now().Add(30 * time.Second)
			for {
				rc.mu.Lock()
				keys := len(rc.canary[ids["good"]]) + len(rc.canary[ids["bad"]])
				calls := maps.Clone(rc.byKey)
				rc.mu.Unlock()
				if keys == 2 {
					for k, n := range calls {
						if n != 1 {
							t.Errorf("the webhook was called %d times under %s", n, k)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("webhooks: %v", calls)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if n := pgQueryInt(t, url, "SELECT count(*) FROM guard_actuations"); n != 2 {
				t.Errorf("%d actions in guard_actuations, want 2 (one per verdict)", n)
			}
			logs := p.logs.String()
			if n := strings.Count(logs, "the store does not answer"); n != 1 {
				t.Errorf("%d log lines about the lost store, want 1:\n%s", n, grepLines(logs, "store"))
			}
			if !strings.Contains(logs, "the store answers again") {
				t.Errorf("no log line about the store's return:\n%s", grepLines(logs, "store"))
			}
		})
	}
}

// cutProxy forwards TCP connections to a target until cut, which drops every connection
// and refuses new ones until it is restored.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isCut  bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); px.cut(true) })
	go px.serve()
	return px
}

func (px *cutProxy) addr() string { return px.ln.Addr().String() }

func (px *cutProxy) serve() {
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		px.mu.Lock()
		if px.isCut {
			px.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", px.target)
		if err != nil {
			px.mu.Unlock()
			c.Close()
			continue
		}
		px.conns[c], px.conns[up] = true, true
		px.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (px *cutProxy) cut(on bool) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.isCut = on
	if on {
		for c := range px.conns {
			c.Close()
		}
		clear(px.conns)
	}
}

// A database migrated by a newer canaryd: serve refuses with one line saying so, and
// leaves the database as it was.
func TestServePostgresNewerSchema(t *testing.T) {
	url := pgtest.Database(t)
	cfgPath, _ := writePGConfig(t, "http://127.0.0.1:1/hook")
	s, err := pgstore.Open(t.Context(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	newer := pgstore.SchemaVersion() + 1
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from a newer canaryd')", newer); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), binPath, "serve", "--config", cfgPath, "--storage", url, "--listen", freeAddr(t), "--log-format", "console")
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit code 1, got %v\nstderr:\n%s", err, stderr.String())
	}
	line := grepLines(stderr.String(), "canaryd: store")
	for _, want := range []string{
		"canaryd: store: cannot use PostgreSQL at " + url + ": the database's schema is newer than this canaryd",
		fmt.Sprintf("it is at version %d, this canaryd knows versions up to %d", newer, pgstore.SchemaVersion()),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q\nstderr:\n%s", line, want, stderr.String())
		}
	}
	if got := pgQueryInt(t, url, "SELECT max(version) FROM schema_migrations"); got != newer {
		t.Errorf("schema version %d after the refusal, want %d", got, newer)
	}
}
