package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	promprov "github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

// verdictTracks are issue 13's cohorts of one app "web": a healthy baseline that has no
// code="500" series at all, a canary serving 50% 5xx, a healthy canary (the same as the
// baseline), a canary whose latency is exported but no request counter, and a canary
// whose requests are slower (issue 14: the histogram judge).
func verdictTracks() promtest.Exporter {
	hist := func(track string) promtest.Histogram {
		h := promtest.Histogram{
			Name:    "http_request_duration_seconds",
			Labels:  map[string]string{"app": "web", "track": track},
			Buckets: map[float64]float64{0.05: 20, 0.1: 50, 0.25: 90, 0.5: 99}, CountPerSecond: 100, SumPerSecond: 12,
		}
		if track == "slow" {
			h.Buckets, h.SumPerSecond = map[float64]float64{0.05: 10, 0.1: 30, 0.25: 75, 0.5: 95}, 18
		}
		return h
	}
	req := func(track, code string, perSec float64) promtest.Counter {
		return promtest.Counter{Name: "http_requests_total", Labels: map[string]string{"app": "web", "track": track, "code": code}, PerSecond: perSec}
	}
	return promtest.Exporter{
		Counters: []promtest.Counter{
			req("stable", "200", 100),
			req("good", "200", 100),
			req("bad", "200", 50), req("bad", "500", 50),
			req("slow", "200", 100),
		},
		Histograms: []promtest.Histogram{hist("stable"), hist("good"), hist("bad"), hist("nohttp"), hist("slow")},
	}
}

// shippedGoldenSignals is configs/golden-signals.yml with its queries as shipped, made
// quick (3 s intervals on 1 s points over a 24 s lifetime, each step's counts the
// counters' difference over that second), its actuators
// pointed at hookURL, and a second copy of the analysis ("golden-flaky") on a provider
// behind flakyURL. Every replaced text must be in the file, so that the test follows the
// preset.
func shippedGoldenSignals(t *testing.T, promURL, flakyURL, hookURL string) string {
	t.Helper()
	b, err := os.ReadFile("../../configs/golden-signals.yml")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i, j := strings.Index(src, "\nactuators:\n"), strings.Index(src, "\nanalyses:\n")
	if i < 0 || j < i {
		t.Fatal("golden-signals.yml: no actuators block before analyses")
	}
	src = src[:i] + fmt.Sprintf("\nactuators:\n  rollback: {type: webhook, url: %q}\n  notify: {type: webhook, url: %q}\n", hookURL+"/rollback", hookURL+"/notify") + src[j:]
	repl := []string{
		`address: "http://127.0.0.1:9090"`, fmt.Sprintf("address: %q", promURL),
		"max_consecutive_errors: 3", "max_consecutive_errors: 10",
		"  storage: \"data/canaryd.db\"\n", "  storage: \"data/canaryd.db\"\n  min_interval: 1s\n",
		"interval: 1m ", "interval: 3s ",
		"step: 15s ", "step: 1s ",
		"lifetime: 30m", "lifetime: 24s",
		"warmup: 2m", "warmup: 3s",
		"offset 15s", "offset 1s",
	}
	for k := 0; k < len(repl); k += 2 {
		if !strings.Contains(src, repl[k]) {
			t.Fatalf("golden-signals.yml has no %q", repl[k])
		}
	}
	src = strings.NewReplacer(repl...).Replace(src)
	a := strings.Index(src, "\n  golden-signals:\n")
	if a < 0 {
		t.Fatal("golden-signals.yml: no golden-signals analysis")
	}
	flaky := strings.Replace(strings.Replace(src[a:], "golden-signals:", "golden-flaky:", 1), "provider: prom", "provider: flaky", 1)
	src = strings.Replace(src, "\nproviders:\n", fmt.Sprintf("\nproviders:\n  flaky: {type: prometheus, address: %q, timeout: 5s, retries: 0}\n", flakyURL), 1)
	src = strings.TrimRight(src, "\n") + flaky
	path := filepath.Join(t.TempDir(), "golden-signals.yml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hookLog records which canary statuses each actuator was sent.
type hookLog struct {
	mu   sync.Mutex
	sent []string // "actuator canary-id status"
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		CanaryID string `json:"canary_id"`
		Status   string `json:"status"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.sent = append(h.sent, strings.TrimPrefix(r.URL.Path, "/")+" "+ev.CanaryID+" "+ev.Status)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookLog) of(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, s := range h.sent {
		if strings.Contains(s, " "+id+" ") {
			out = append(out, s)
		}
	}
	return out
}

// faultProxy forwards to the real Prometheus and, once failing is set, answers HTTP 500 to
// every query of a 5xx series (the error-rate metric) and only to those.
func faultProxy(t *testing.T, promURL string) (string, *atomic.Bool) {
	t.Helper()
	u, err := url.Parse(promURL)
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body)) // forwarded as it came
		form, _ := url.ParseQuery(string(body))
		query := form.Get("query") + r.URL.Query().Get("query")
		if failing.Load() && strings.Contains(query, `code=~"5.."`) {
			http.Error(w, `{"status":"error","errorType":"internal","error":"injected"}`, http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &failing
}

// TestVerdictsThatLie is issue 13's finding 1 against a real Prometheus with the shipped
// golden-signals preset: a baseline with no 5xx series no longer lets a 50%-5xx canary
// pass, and a critical error rate that answers nothing, or errors at the end for fewer
// intervals than max_consecutive_errors, ends the canary `error`, never `pass`.
func TestVerdictsThatLie(t *testing.T) {
	promURL := promtest.Start(t, promtest.ServeExporter(t, verdictTracks()))
	promtest.WaitFor(t, promURL, `rate(http_requests_total[5s])`, 4, 30*time.Second)
	promtest.WaitFor(t, promURL, `rate(http_request_duration_seconds_count[5s])`, 4, 30*time.Second)
	flakyURL, failing := faultProxy(t, promURL)
	hooks := &hookLog{}
	hook := httptest.NewServer(hooks)
	t.Cleanup(hook.Close)
	p := startServe(t, shippedGoldenSignals(t, promURL, flakyURL, hook.URL), filepath.Join(t.TempDir(), "c.db"))
	reg := func(analysis, track string) canaryJSON {
		t.Helper()
		var c canaryJSON
		body := map[string]any{
			"name": "web " + track, "analysis": analysis, "vars": map[string]string{"app": "web"},
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
		}
		if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
			t.Fatalf("register %s: %d %+v", track, code, c)
		}
		return c
	}
	bad := reg("golden-signals", "bad")
	nohttp := reg("golden-signals", "nohttp")
	slow := reg("golden-signals", "slow")
	flaky := reg("golden-flaky", "good")

	// The 5xx queries fail once 4 of the 7 intervals are judged: the last 3 at most are
	// in error, fewer than max_consecutive_errors (10).
	p.waitJudged(flaky.ID, 4, 60*time.Second)
	failing.Store(true)

	// The count judge adds at most 2 of log evidence a step (its cap against one
	// cohort's bursts), and a regression from the first step needs log(100) plus
	// log(1/0.32) (its change point's weight, firstChangeWeight): more than 2 steps, so
	// even 50% against 0% fails in the second interval (steps 3–4) or, when the scrapes
	// round the first steps' counts down, the third; never the first.
	t.Run("50% 5xx against a baseline with no 5xx series fails", func(t *testing.T) {
		c := p.waitEnded(bad.ID, 60*time.Second)
		if c.Status != "fail" || c.Score == nil || *c.Score != 40 || len(c.Actions) != 1 || c.Actions[0].Trigger != "critical" ||
			!(strings.HasPrefix(c.Reason, "critical metric failed in interval 2: error-rate: ") ||
				strings.HasPrefix(c.Reason, "critical metric failed in interval 3: error-rate: ")) {
			t.Fatalf("status %s score %s (%s), actions %+v", c.Status, scoreText(remote{Score: c.Score}), c.Reason, c.Actions)
		}
		m := metricOf(t, c, "error-rate")
		// The canary's rate is its pooled counts, each step's rounded to an integer (the
		// scrapes fall between whole requests), so 50% reads as e.g. 300 of 601: within
		// half a request per step of 50%, never exactly.
		if m.Classification != "high" || m.Baseline.N == 0 || m.Baseline.Median != 0 || math.Abs(m.Canary.Median-0.5) > 0.01 {
			t.Errorf("error-rate: %s, baseline %d points median %v, canary median %v: %s",
				m.Classification, m.Baseline.N, m.Baseline.Median, m.Canary.Median, m.Reason)
		}
		t.Logf("status %s, score %s, reason %q", c.Status, scoreText(remote{Score: c.Score}), c.Reason)
		waitHooks(t, hooks, c.ID, []string{"notify " + c.ID + " fail", "rollback " + c.ID + " fail"})
	})

	t.Run("slower requests fail on the histogram judge", func(t *testing.T) {
		c := p.waitEnded(slow.ID, 60*time.Second)
		// 1% of the baseline's requests above 500 ms against 5% of the canary's: found in
		// a few intervals of 3 s at 100 req/s.
		if c.Status != "fail" || c.Score == nil || *c.Score != 60 || len(c.Intervals) > 5 ||
			!strings.HasPrefix(c.Reason, "critical metric failed in interval ") || !strings.Contains(c.Reason, ": latency: canary latency: ") {
			t.Fatalf("status %s score %s (%s), actions %+v", c.Status, scoreText(remote{Score: c.Score}), c.Reason, c.Actions)
		}
		// Both judged by the sequential judges (their reasons carry the e-value).
		if m := metricOf(t, c, "error-rate"); m.Classification != "pass" || !strings.Contains(m.Reason, "e-value") {
			t.Errorf("error-rate: %s: %s", m.Classification, m.Reason)
		}
		if m := metricOf(t, c, "latency"); m.Classification != "high" || !strings.Contains(m.Reason, "e-value") {
			t.Errorf("latency: %s: %s", m.Classification, m.Reason)
		}
		t.Logf("status %s, score %s, reason %q", c.Status, scoreText(remote{Score: c.Score}), c.Reason)
	})

	t.Run("error rate with no request series ends error", func(t *testing.T) {
		c := p.waitEnded(nohttp.ID, 60*time.Second)
		if c.Status != "error" || len(c.Actions) != 1 || c.Actions[0].Trigger != "unjudged" ||
			!strings.HasPrefix(c.Reason, "lifetime over; critical metric could not be judged in the last interval (8): error-rate: error-rate: no data: ") ||
			!strings.Contains(c.Reason, "none with requests in both cohorts") {
			t.Fatalf("status %s score %s (%s), actions %+v", c.Status, scoreText(remote{Score: c.Score}), c.Reason, c.Actions)
		}
		for _, iv := range c.Intervals {
			if iv.Verdict != "unjudged" {
				t.Errorf("interval %d: verdict %s", iv.Index, iv.Verdict)
			}
		}
		// The latency metric has data and passes: the error rate alone decides.
		if m := metricOf(t, c, "latency"); m.Classification != "pass" {
			t.Errorf("latency: %s: %s", m.Classification, m.Reason)
		}
		t.Logf("status %s, score %s, reason %q", c.Status, scoreText(remote{Score: c.Score}), c.Reason)
	})

	t.Run("error rate in error at the end ends error", func(t *testing.T) {
		c := p.waitEnded(flaky.ID, 60*time.Second)
		if c.Status != "error" || len(c.Actions) != 1 || c.Actions[0].Trigger != "unjudged" ||
			!strings.HasPrefix(c.Reason, "lifetime over; critical metric could not be judged in the last interval (8): error-rate: baseline errors query: ") ||
			!strings.Contains(c.Reason, "500") {
			t.Fatalf("status %s score %s (%s), actions %+v", c.Status, scoreText(remote{Score: c.Score}), c.Reason, c.Actions)
		}
		var verdicts []string
		for _, iv := range c.Intervals {
			verdicts = append(verdicts, iv.Verdict)
		}
		if n := len(verdicts); n != 7 || verdicts[0] != "pass" || verdicts[3] != "pass" || verdicts[n-1] != "unjudged" {
			t.Errorf("interval verdicts %v", verdicts)
		}
		t.Logf("status %s, score %s, reason %q, verdicts %v", c.Status, scoreText(remote{Score: c.Score}), c.Reason, verdicts)
	})

	// on_pass fired for none of them; on_error is not configured in the preset.
	time.Sleep(500 * time.Millisecond)
	for _, id := range []string{nohttp.ID, flaky.ID} {
		if got := hooks.of(id); len(got) != 0 {
			t.Errorf("actuators fired for %s: %v", id, got)
		}
	}
}

func metricOf(t *testing.T, c canaryJSON, name string) metricJSON {
	t.Helper()
	if len(c.Intervals) == 0 {
		t.Fatalf("canary %s has no interval", c.ID)
	}
	for _, m := range c.Intervals[len(c.Intervals)-1].Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no metric %s in the last interval", name)
	return metricJSON{}
}

func waitHooks(t *testing.T, h *hookLog, id string, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := h.of(id)
		if len(got) >= len(want) {
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("actuators sent %v, want %v", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("actuators sent %v after 20s, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPresetErrorQueriesAbsentMeansZero runs every shipped error-rate query against a
// real Prometheus: a cohort with requests and no 5xx series reads 0 at every step, one
// with 5xx reads its rate, and one with no request series reads no points at all.
func TestPresetErrorQueriesAbsentMeansZero(t *testing.T) {
	promURL := promtest.Start(t, promtest.ServeExporter(t, verdictTracks()))
	promtest.WaitFor(t, promURL, `min(count_over_time(http_requests_total[1m])) >= 15`, 1, 60*time.Second)
	cfg := promprov.DefaultConfig()
	cfg.Address = promURL
	prov, err := promprov.New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file, analysis string
		bad            float64 // the "bad" track's value: 50/s over 5 s
	}{
		{"golden-signals.yml", "golden-signals", 250},
		{"rollback-presets.yml", "rollback-on-errors", 250},
		{"killswitch-presets.yml", "killswitch", 250},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			c, err := config.Load(filepath.Join("../../configs", tc.file), kinds())
			if err != nil {
				t.Fatal(err)
			}
			var m *config.Metric
			for i := range c.Analyses[tc.analysis].Metrics {
				if mm := &c.Analyses[tc.analysis].Metrics[i]; mm.Name == "error-rate" {
					m = mm
				}
			}
			if m == nil {
				t.Fatalf("%s: no error-rate metric", tc.analysis)
			}
			end := time.Now()
			for _, tr := range []struct {
				track  string
				points bool
				want   float64
			}{{"stable", true, 0}, {"bad", true, tc.bad}, {"nohttp", false, 0}} {
				text, err := m.Template.Render(metrics.TemplateData{Cohort: map[string]string{"track": tr.track}, Vars: map[string]string{"app": "web"}})
				if err != nil {
					t.Fatal(err)
				}
				text = strings.ReplaceAll(text, "offset 15s", "offset 5s")
				s, err := prov.Query(t.Context(), metrics.Query{Text: text, Start: end.Add(-4 * time.Second), End: end, Step: time.Second})
				if err != nil {
					t.Fatalf("%s: %v", tr.track, err)
				}
				v := s.AppendValues(nil)
				if !tr.points {
					if len(v) != 0 {
						t.Errorf("%s: %v, want no points", tr.track, v)
					}
					continue
				}
				if len(v) != 5 {
					t.Fatalf("%s: %d points (%v), want 5", tr.track, len(v), v)
				}
				for _, x := range v {
					// The exporter's counters grow with the time of each scrape, which
					// jitters by milliseconds: the difference over 5 s is 250 ± 0.1%.
					if math.Abs(x-tr.want) > 1e-3*math.Max(1, tr.want) {
						t.Errorf("%s: %v, want %v at every step", tr.track, v, tr.want)
						break
					}
				}
			}
		})
	}
}
