package ui

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/analysis/simclock"
	"github.com/canaryd/canaryd/internal/testutil"
	"github.com/canaryd/canaryd/metrics"
)

// goldenProvider answers the testdata analysis' queries (`name{track="…"}`) with a point
// every step whose value depends only on the series and the timestamp, so that the
// scheduler's repeated queries of a growing window agree. A track containing "bad" is a
// regressed canary: p50 25% slower and p99 1.75× the baseline's.
type goldenProvider struct{}

func (goldenProvider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := ctx.Err(); err != nil {
		return metrics.Series{}, fmt.Errorf("golden provider: %w", err)
	}
	name, rest, _ := strings.Cut(q.Text, "{")
	_, track, _ := strings.Cut(rest, `track="`)
	track, _, _ = strings.Cut(track, `"`)
	bad := strings.Contains(track, "bad")
	h := fnv.New64a()
	h.Write([]byte(name + "/" + track))
	seed := h.Sum64()
	var level, spread float64
	switch name {
	case "error_rate":
		level, spread = 0.002, 0.0005
	case "p50":
		level, spread = 0.120, 0.01
		if bad {
			level = 0.150
		}
	case "p99":
		level, spread = 0.40, 0.03
		if bad {
			level = 0.70
		}
	case "cpu":
		level, spread = 0.55, 0.05
	default:
		return metrics.Series{}, fmt.Errorf("golden provider: unknown series %q", name)
	}
	var pts []metrics.Point
	for t := q.Start.Truncate(q.Step); !t.After(q.End); t = t.Add(q.Step) {
		if t.Before(q.Start) {
			continue
		}
		pts = append(pts, metrics.Point{T: t.UnixMilli(), V: level + spread*unitNoise(seed, t.UnixMilli())})
	}
	return metrics.Series{Streams: []metrics.Stream{{Points: pts}}}, nil
}

// unitNoise is a uniform value in [-1, 1) fixed by (seed, t): splitmix64's finaliser.
func unitNoise(seed uint64, t int64) float64 {
	z := uint64(t) + seed*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11)/float64(1<<53)*2 - 1
}

// runCanaries runs a real scheduler on a bolt store and a fake clock until a regressed
// and a healthy canary of the testdata analysis have ended.
func runCanaries(t *testing.T) (sched *analysis.Scheduler, clock *simclock.Clock, bad, good *analysis.Canary) {
	t.Helper()
	cfg, _ := loadAnalysis(t)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "canaryd.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock = simclock.New(fixtureStart)
	sched = analysis.NewScheduler(analysis.Options{
		Store: st, Clock: clock, Logger: zaptest.NewLogger(t), Metrics: analysis.NewMetrics(prometheus.NewRegistry()),
		Workers: 2, QueryTimeout: 5 * time.Second, Limits: analysis.LimitsOf(cfg.Server),
	})
	sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"fake": goldenProvider{}}})
	ctx := context.Background()
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sched.Stop(context.Background())
		st.Close()
	})
	register := func(name, track string) *analysis.Canary {
		c, err := sched.Register(ctx, analysis.Registration{
			Name: name, Analysis: "web", Lifetime: 10 * time.Minute,
			Baseline: map[string]string{"track": "stable"}, Canary: map[string]string{"track": track},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The name is shown as typed: a real browser must see its text, not markup.
	bad = register(`checkout <v2> & "friends"`, "canary-bad")
	clock.Advance(time.Second) // so that the list's newest-first order is known
	good = register("search-v7", "canary-good")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, errB := sched.Get(ctx, bad.ID)
		g, errG := sched.Get(ctx, good.ID)
		if errB != nil || errG != nil {
			t.Fatal(errB, errG)
		}
		if b.Status.Final() && g.Status.Final() {
			return sched, clock, b.Canary, g.Canary
		}
		if time.Now().After(deadline) {
			t.Fatalf("canaries still %s and %s after 60 s", b.Status, g.Status)
		}
		clock.Advance(10 * time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}

// What the browser reports about a report page.
type browserSeries struct {
	Class  string  `json:"cls"`
	D      string  `json:"d"`
	Points int     `json:"points"`
	Length float64 `json:"length"`
	BoxW   float64 `json:"boxW"`
	Stroke string  `json:"stroke"`
}

type browserChart struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"`
	Metric string          `json:"metric"`
	Width  float64         `json:"width"`
	Series []browserSeries `json:"series"`
}

type browserReport struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Refresh bool   `json:"refresh"`
	Failing []struct {
		Metric string `json:"metric"`
		Text   string `json:"text"`
	} `json:"failing"`
	Charts []browserChart `json:"charts"`
}

// reportJS reads a report page as a person sees it: texts, and each chart's series as
// laid out (path length and box from the browser's own geometry).
const reportJS = `(() => {
  const q = s => document.querySelector(s);
  const squash = s => (s || '').replace(/\s+/g, ' ').trim();
  return {
    name: q('#name') ? q('#name').textContent : '',
    verdict: squash(q('#verdict') && q('#verdict').textContent),
    refresh: !!q('meta[http-equiv="refresh"]'),
    failing: [...document.querySelectorAll('#failing li')].map(li => ({metric: li.dataset.metric, text: squash(li.textContent)})),
    charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
      id: svg.id, kind: svg.dataset.kind, metric: svg.dataset.metric,
      width: svg.getBoundingClientRect().width,
      series: [...svg.querySelectorAll('path.series')].map(p => {
        const d = p.getAttribute('d') || '';
        return {cls: p.getAttribute('class'), d: d, points: (d.match(/[MLHVh]/g) || []).length,
          length: p.getTotalLength(), boxW: p.getBBox().width, stroke: getComputedStyle(p).stroke};
      }),
    })),
  };
})()`

type browserRow struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Text   string `json:"text"`
	Href   string `json:"href"`
}

const listJS = `[...document.querySelectorAll('#canaries tbody tr')].map(tr => ({
  id: tr.dataset.id, status: tr.dataset.status, text: tr.innerText.replace(/\s+/g, ' ').trim(),
  href: tr.querySelector('a') ? tr.querySelector('a').href : ''}))`

// TestBrowser runs two canaries to their verdict on a real scheduler and store, serves
// the pages on loopback, and reads them in headless Chromium: the failed canary's page
// shows the verdict, the failing metrics and their reasons, and every chart has drawn
// its series; the list shows both canaries.
func TestBrowser(t *testing.T) {
	exe := testutil.Chromium(t)
	sched, clock, bad, good := runCanaries(t)
	if bad.Status != analysis.StatusFail || good.Status != analysis.StatusPass {
		t.Fatalf("canaries ended %s (%s) and %s (%s), want fail and pass", bad.Status, bad.Reason, good.Status, good.Reason)
	}
	srv := httptest.NewServer(New(sched, Options{Logger: zaptest.NewLogger(t), Now: clock.Now}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel()
	})
	defer func() {
		if t.Failed() {
			saveScreenshot(t, bctx)
		}
	}()

	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/canaries/"+bad.ID)); err != nil {
		t.Fatalf("load the report page: %v", err)
	}
	page, err := chromedp.Run(bctx, chromedp.Evaluate[browserReport](reportJS))
	if err != nil {
		t.Fatalf("read the report page: %v", err)
	}
	if page.Verdict != "fail" {
		t.Errorf("verdict %q, want fail", page.Verdict)
	}
	if page.Name != bad.Name {
		t.Errorf("name shown as %q, want %q", page.Name, bad.Name)
	}
	if page.Refresh {
		t.Error("the page of an ended canary refreshes")
	}

	// The failing metrics of the last interval, each with its reason.
	d, err := sched.Get(ctx, bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, m := range d.Results[len(d.Results)-1].Metrics {
		if m.Failed() {
			want[m.Name] = m.Reason
		}
	}
	if _, ok := want["p50-latency"]; !ok || len(want) != 2 {
		t.Fatalf("the regressed canary fails on %v, want p50-latency and p99-ratio", want)
	}
	if len(page.Failing) != len(want) {
		t.Errorf("%d failing metrics shown, want %d", len(page.Failing), len(want))
	}
	for _, f := range page.Failing {
		if reason, ok := want[f.Metric]; !ok || !strings.Contains(f.Text, reason) {
			t.Errorf("failing %q: %q, want the reason %q", f.Metric, f.Text, reason)
		}
	}

	// Every chart has drawn its series.
	if n := 1 + 2*4; len(page.Charts) != n {
		t.Errorf("%d charts, want %d", len(page.Charts), n)
	}
	for _, c := range page.Charts {
		need := 2
		if c.Kind == "score" {
			need = 1
		}
		if len(c.Series) < need || c.Width <= 0 {
			t.Errorf("chart %s (%s %s): %d series, %v px wide", c.ID, c.Kind, c.Metric, len(c.Series), c.Width)
		}
		for _, s := range c.Series {
			if s.D == "" || s.Points <= 0 || s.Length <= 0 || s.BoxW <= 0 || s.Stroke == "" || s.Stroke == "none" {
				t.Errorf("chart %s series %q not drawn: %d points, length %v, box width %v, stroke %q", c.ID, s.Class, s.Points, s.Length, s.BoxW, s.Stroke)
			}
		}
	}

	// The list shows both canaries, newest first, linking to their pages.
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("load the list page: %v", err)
	}
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[[]browserRow](listJS))
	if err != nil {
		t.Fatalf("read the list page: %v", err)
	}
	if len(rows) != 2 || rows[0].ID != good.ID || rows[1].ID != bad.ID {
		t.Fatalf("list rows %+v, want %s then %s", rows, good.ID, bad.ID)
	}
	if r := rows[1]; r.Status != "fail" || !strings.Contains(r.Text, bad.Name) || r.Href != srv.URL+"/canaries/"+bad.ID {
		t.Errorf("failed canary's row: %+v", r)
	}
	if r := rows[0]; r.Status != "pass" || !strings.Contains(r.Text, "search-v7") {
		t.Errorf("passed canary's row: %+v", r)
	}

	// Issue 19 item 17, as the screenshots showed it: the score chart's threshold labels
	// sit clear of the grid line at 100 (the pass label was struck through by it).
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/canaries/"+bad.ID)); err != nil {
		t.Fatalf("load the report page: %v", err)
	}
	clear, err := chromedp.Run(bctx, chromedp.Evaluate[float64](thresholdLabelClearanceJS))
	if err != nil {
		t.Fatalf("measure the score chart: %v", err)
	}
	if clear < 1 {
		t.Errorf("a threshold label of the score chart is %.1f px from the grid line at 100, want it clear", clear)
	}
	// At 390 px (a phone at 3 a.m.) neither page is wider than the screen.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(390, 900)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/canaries/" + bad.ID, "/canaries/" + good.ID} {
		if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+path)); err != nil {
			t.Fatalf("load %s: %v", path, err)
		}
		over, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if over > 0 {
			t.Errorf("%s at 390 px: %.0f px wider than the screen", path, over)
		}
	}
}

// thresholdLabelClearanceJS is the smallest vertical distance (px, screen) between a
// threshold label of the score chart and the grid line at 100, or 1e9 when none.
const thresholdLabelClearanceJS = `(() => {
  const svg = document.querySelector('svg.chart.score');
  const ticks = [...svg.querySelectorAll('g.axis.y text')];
  const top = ticks.find(t => t.textContent === '100');
  const line = top.previousElementSibling.getBoundingClientRect();
  let min = 1e9;
  for (const l of svg.querySelectorAll('text.rule-label')) {
    const r = l.getBoundingClientRect();
    const d = r.top > line.top ? r.top - line.top : line.top - r.bottom;
    min = Math.min(min, d);
  }
  return min;
})()`

// saveScreenshot keeps what the browser showed when the test failed.
func saveScreenshot(t *testing.T, ctx context.Context) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	f, err := os.CreateTemp("", "canaryd-ui-*.jpg")
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(png); err == nil {
		t.Logf("screenshot of the page: %s", f.Name())
	}
}
