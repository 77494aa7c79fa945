package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

// e2eConfig judges the golden signals of three tracks of one app, scraped by a real
// Prometheus every second: short interval and lifetime so a canary ends in ~25 s.
const e2eConfig = `
server: {min_interval: 1s}
scheduler: {workers: 4, query_timeout: 5s}
providers:
  prom: {type: prometheus, address: %q, timeout: 5s}
analyses:
  e2e:
    provider: prom
    interval: 3s
    step: 1s
    lifetime: 24s
    warmup: 3s
    groups: {errors: 60, latency: 40}
    metrics:
      - name: error-rate
        group: errors
        query: 'sum(rate(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}",code=~"5.."}[5s])) / sum(rate(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[5s]))'
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.1, critical: true, unit: ratio}
      - name: p50-latency
        group: latency
        query: 'histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[5s])))'
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2, unit: seconds}
      # The counts judge, whose evidence is stored with the canary: the kill -9 test
      # checks that every step is counted once across restarts.
      - name: error-count
        group: errors
        query: 'sum(increase(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}",code=~"5.."}[2s])) or 0 * sum(increase(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[2s]))'
        requests_query: 'sum(increase(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[2s]))'
        judge: {type: counts, direction: increase, critical: true, unit: ratio}
`

// track makes one track's series: reqPerSec requests of which errPerSec fail, and a
// latency histogram whose observations at or below 0.1 s arrive at fast/s out of 100/s.
// With 20/s at or below 0.05 s and 90/s at or below 0.25 s, fast = 50 puts the median at
// 0.1 s and fast = 70/3 puts it at 0.16 s (+60%), by histogram_quantile's interpolation.
func track(name string, errPerSec, fast, under50ms float64) ([]promtest.Counter, promtest.Histogram) {
	labels := func(code string) map[string]string {
		return map[string]string{"app": "web", "track": name, "code": code}
	}
	return []promtest.Counter{
			{Name: "http_requests_total", Labels: labels("200"), PerSecond: 100 - errPerSec},
			{Name: "http_requests_total", Labels: labels("500"), PerSecond: errPerSec},
		}, promtest.Histogram{
			Name:    "http_request_duration_seconds",
			Labels:  map[string]string{"app": "web", "track": name},
			Buckets: map[float64]float64{0.05: under50ms, 0.1: fast, 0.25: 90, 0.5: 99}, CountPerSecond: 100, SumPerSecond: 12,
		}
}

func startPrometheus(t *testing.T) string {
	var e promtest.Exporter
	for _, tr := range []struct {
		name                 string
		errs, fast, under50s float64
	}{
		{"stable", 1, 50, 20},
		{"good", 1, 50, 20},
		{"bad", 10, 70.0 / 3, 10}, // errors ×10, median latency +60%
	} {
		cs, h := track(tr.name, tr.errs, tr.fast, tr.under50s)
		e.Counters = append(e.Counters, cs...)
		e.Histograms = append(e.Histograms, h)
	}
	url := promtest.Start(t, promtest.ServeExporter(t, e))
	promtest.WaitFor(t, url, `rate(http_requests_total[5s])`, 6, 30*time.Second)
	return url
}

func writeConfig(t *testing.T, promURL string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "canaryd.yml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(e2eConfig, promURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func register(t *testing.T, p *proc, name, track string, extra map[string]any) canaryJSON {
	t.Helper()
	body := map[string]any{
		"name": name, "analysis": "e2e",
		"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
		"vars": map[string]string{"app": "web"},
	}
	for k, v := range extra {
		body[k] = v
	}
	var c canaryJSON
	if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated || c.ID == "" || c.Status != "running" {
		t.Fatalf("register %s: %d %+v", name, code, c)
	}
	return c
}

// TestServeAgainstPrometheus is the end-to-end run of issue 5 and the kill -9 restart,
// sharing one real Prometheus.
func TestServeAgainstPrometheus(t *testing.T) {
	promURL := startPrometheus(t)
	cfgPath := writeConfig(t, promURL)

	t.Run("healthy passes, regression fails", func(t *testing.T) {
		p := startServe(t, cfgPath, filepath.Join(t.TempDir(), "c.db"))
		good := register(t, p, "web-good", "good", nil)
		bad := register(t, p, "web-bad", "bad", nil)

		b := p.waitEnded(bad.ID, 60*time.Second)
		if b.Status != "fail" || len(b.Actions) != 1 || b.Actions[0].Trigger != "critical" {
			t.Fatalf("regressing canary: %s (%s), actions %+v", b.Status, b.Reason, b.Actions)
		}
		last := b.Intervals[len(b.Intervals)-1]
		got := map[string]metricJSON{}
		for _, m := range last.Metrics {
			got[m.Name] = m
		}
		for name, want := range map[string]struct{ baseline, canary float64 }{
			"error-rate": {0.01, 0.10}, "p50-latency": {0.10, 0.16},
		} {
			m := got[name]
			if m.Classification != "high" || !near(m.Baseline.Median, want.baseline) || !near(m.Canary.Median, want.canary) {
				t.Errorf("%s: %s, medians %v vs %v (want %v vs %v): %s", name, m.Classification,
					m.Canary.Median, m.Baseline.Median, want.canary, want.baseline, m.Reason)
			}
		}

		g := p.waitEnded(good.ID, 60*time.Second)
		if g.Status != "pass" || g.Judged == nil || *g.Judged != g.Count-1 || g.Score == nil || *g.Score != 100 {
			t.Fatalf("healthy canary: %s (%s), judged %v of %d, score %v", g.Status, g.Reason, g.Judged, g.Count, g.Score)
		}
		for _, iv := range g.Intervals {
			for _, m := range iv.Metrics {
				if m.Classification != "pass" || m.Baseline.N == 0 || m.Canary.N == 0 {
					t.Errorf("interval %d %s: %s with %d/%d points: %s", iv.Index, m.Name, m.Classification, m.Baseline.N, m.Canary.N, m.Reason)
				}
			}
		}
		metrics := p.metricsText()
		for _, want := range []string{
			`canaryd_verdicts_total{analysis="e2e",status="fail"} 1`,
			`canaryd_verdicts_total{analysis="e2e",status="pass"} 1`,
			`canaryd_canaries{status="running"} 0`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if !strings.Contains(metrics, `canaryd_provider_query_errors_total{provider="prom"} 0`) {
			t.Errorf("/metrics counts provider errors against a healthy Prometheus, or lacks the series")
		}
		// The startup check (issue 19 item 3) found the provider answering.
		if logs := p.logs.String(); !strings.Contains(logs, `"provider answers"`) || strings.Contains(logs, "provider does not answer") {
			t.Errorf("startup check of a healthy Prometheus not logged as answering:\n%s", logs)
		}
		if strings.Contains(metrics, `canaryd_canary_score{`) {
			t.Errorf("per-canary score series left after both ended")
		}
	})

	t.Run("kill -9 twice resumes without loss or double judging", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "c.db")
		p := startServe(t, cfgPath, store)
		c := register(t, p, "web-crash", "good", map[string]any{"lifetime": "30s", "interval": "2s"})
		for round := 0; round < 2; round++ {
			p.waitJudged(c.ID, 3*(round+1), 30*time.Second)
			p.kill()
			p = startServe(t, cfgPath, store)
		}
		end := p.waitEnded(c.ID, 60*time.Second)
		if end.Status != "pass" {
			t.Fatalf("status %s: %s", end.Status, end.Reason)
		}
		// Interval 1 ends inside the 3 s warmup; 2..15 must each be there once, in order.
		if len(end.Intervals) != end.Count-1 {
			t.Fatalf("%d intervals recorded, want %d", len(end.Intervals), end.Count-1)
		}
		countSteps := 0
		for i, iv := range end.Intervals {
			if iv.Index != i+2 {
				t.Fatalf("interval %d has index %d", i, iv.Index)
			}
			// Each 2 s interval adds its two 1 s steps to the counts evidence, across
			// both kills: never counted twice, none lost.
			for _, m := range iv.Metrics {
				if m.Name != "error-count" {
					continue
				}
				if m.Sequential.Missing != 0 || (i > 0 && m.Sequential.Steps != countSteps+2) || m.Sequential.Steps == 0 {
					t.Errorf("interval %d: counts evidence has %d steps (%d missing), the interval before %d: %s",
						iv.Index, m.Sequential.Steps, m.Sequential.Missing, countSteps, m.Reason)
				}
				countSteps = m.Sequential.Steps
			}
		}
		if countSteps < 26 {
			t.Errorf("counts evidence ended with %d steps, want the 27 s after the warmup", countSteps)
		}
		if len(end.Actions) != 1 || end.Actions[0].Kind != "verdict" {
			t.Fatalf("actions %+v, want one verdict", end.Actions)
		}
	})
}

type metricJSON struct {
	Name           string `json:"name"`
	Classification string `json:"classification"`
	Reason         string `json:"reason"`
	Baseline       struct {
		N      int     `json:"n"`
		Median float64 `json:"median"`
	} `json:"baseline"`
	Canary struct {
		N      int     `json:"n"`
		Median float64 `json:"median"`
	} `json:"canary"`
	Sequential struct {
		Steps   int `json:"steps"`
		Missing int `json:"missing"`
	} `json:"sequential"`
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want)) }

func (p *proc) metricsText() string {
	p.t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// waitJudged polls until at least n intervals of a canary are recorded.
func (p *proc) waitJudged(id string, n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var c canaryJSON
		p.call("GET", "/api/v1/canaries/"+id, nil, &c)
		if c.Judged != nil && *c.Judged >= n {
			return
		}
		if c.Status != "" && c.Status != "running" {
			p.t.Fatalf("canary ended (%s) before %d intervals", c.Status, n)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("fewer than %d intervals after %s", n, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeReloadAndShutdown: a bad reload keeps the old config and says so in
// /metrics; a good one applies; SIGTERM exits promptly and cleanly.
func TestServeReloadAndShutdown(t *testing.T) {
	cfgPath := writeConfig(t, "http://127.0.0.1:1")
	p := startServe(t, cfgPath, filepath.Join(t.TempDir(), "c.db"))
	// Issue 19 items 3 and 18: a provider that does not answer is a warning at start,
	// and its error counter exists (at 0) before any query.
	if !strings.Contains(p.metricsText(), `canaryd_provider_query_errors_total{provider="prom"} 0`) {
		t.Errorf("/metrics lacks the provider's error counter at start")
	}
	waitLog(t, p, `"level":"warn"`, `"provider does not answer`, `"provider":"prom"`, "127.0.0.1:1")

	if err := os.WriteFile(cfgPath, []byte("analyses: {broken: {provider: nowhere}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if code := p.call("POST", "/-/reload", nil, &body); code != http.StatusInternalServerError || !strings.Contains(body["error"], "analyses.broken") {
		t.Fatalf("bad reload: %d %v", code, body)
	}
	if !strings.Contains(p.metricsText(), "canaryd_config_last_reload_successful 0") {
		t.Errorf("reload failure not in /metrics")
	}
	// The old analysis still takes registrations.
	register(t, p, "after-bad-reload", "good", nil)

	// SIGHUP with a good file that renames the analysis.
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(fmt.Sprintf(e2eConfig, "http://127.0.0.1:1"), "  e2e:", "  e2e-v2:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.metricsText(), "canaryd_config_last_reload_successful 1") {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP reload not applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The reload checks the providers again.
	waitLogCount(t, p, `"provider does not answer`, 2)
	var e map[string]string
	if code := p.call("POST", "/api/v1/canaries", map[string]any{"name": "x", "analysis": "e2e", "baseline": map[string]string{"track": "a"},
		"canary": map[string]string{"track": "b"}, "vars": map[string]string{"app": "web"}}, &e); code != http.StatusBadRequest || e["field"] != "analysis" {
		t.Errorf("old analysis after reload: %d %v", code, e)
	}

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("canaryd still running 10 s after SIGTERM")
	}
	if p.d.Err != nil {
		t.Errorf("exit after SIGTERM: %v (after %s)", p.d.Err, time.Since(start))
	}
	if !strings.Contains(p.logs.String(), `"canaryd stopped"`) {
		t.Errorf("no clean stop in the log")
	}
}

// waitLog waits up to 20 s for a log line holding every part.
func waitLog(t *testing.T, p *proc, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			ok := true
			for _, part := range parts {
				ok = ok && strings.Contains(line, part)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", parts, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLogCount waits up to 20 s for n log lines holding s.
func waitLogCount(t *testing.T, p *proc, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.logs.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d log lines with %q:\n%s", n, s, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
