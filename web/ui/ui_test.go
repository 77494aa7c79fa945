package ui

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/net/html"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/judge"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// now is a fixed wall clock half an hour after the fixtures start.
func now() time.Time { return fixtureStart.Add(31 * time.Minute) }

func newTestHandler(t *testing.T, src Source) http.Handler {
	return New(src, Options{Logger: zaptest.NewLogger(t), Now: now})
}

// charts returns every chart of a page by id, with its series paths.
func charts(doc *html.Node) map[string][]*html.Node {
	out := map[string][]*html.Node{}
	for _, svg := range findAll(doc, func(n *html.Node) bool { return n.Data == "svg" && hasClass(n, "chart") }) {
		out[attr(svg, "id")] = findAll(svg, func(n *html.Node) bool { return n.Data == "path" && hasClass(n, "series") })
	}
	return out
}

func TestReportOfFailedCanary(t *testing.T) {
	_, a := loadAnalysis(t)
	d := fixtureDetail(a, 30, true, true)
	if d.Status != analysis.StatusFail {
		t.Fatalf("fixture ended %s (score %v), want fail", d.Status, *d.Score)
	}
	h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a})
	res, body := get(t, h, "/canaries/"+d.ID)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not default to none", csp)
	}
	doc := parseHTML(t, body)
	if got := text(byID(doc, "verdict")); got != "fail" {
		t.Errorf("verdict %q, want fail", got)
	}
	if got := text(byID(doc, "reason")); got != d.Reason {
		t.Errorf("reason %q, want %q", got, d.Reason)
	}
	last := d.Results[len(d.Results)-1]
	if got, want := text(byID(doc, "score")), formatScore(last.Score.Score); got != want {
		t.Errorf("score %q, want %q", got, want)
	}
	// The failing box names each failing metric of the last interval with its reason.
	var failing []string
	for _, m := range last.Metrics {
		if m.Failed() {
			failing = append(failing, m.Name)
		}
	}
	if fmt.Sprint(failing) != "[p50-latency p99-ratio]" {
		t.Fatalf("fixture fails on %v", failing)
	}
	lis := findAll(byID(doc, "failing"), func(n *html.Node) bool { return n.Data == "li" })
	if len(lis) != len(failing) {
		t.Fatalf("%d failing items, want %d", len(lis), len(failing))
	}
	for i, li := range lis {
		m := last.Metrics[i+1]
		if attr(li, "data-metric") != m.Name || !strings.Contains(text(li), m.Reason) {
			t.Errorf("failing item %d: %q %q, want %s with %q", i, attr(li, "data-metric"), text(li), m.Name, m.Reason)
		}
	}
	if !strings.Contains(last.Metrics[1].Reason, "ms") {
		t.Errorf("p50 reason without ms: %q", last.Metrics[1].Reason)
	}

	// Every chart draws its series: a score chart, and a time-series and an ECDF per
	// metric, with the shifted baseline on the ECDFs of Mann-Whitney metrics.
	cs := charts(doc)
	wantSeries := map[string][]string{"score": {"score"}}
	for i, m := range a.Metrics {
		wantSeries[fmt.Sprintf("ts-%d", i)] = []string{"baseline", "canary"}
		if m.Spec.Kind == judge.KindRatio {
			// The ratio's bound, the baseline times it (issue 19 item 17).
			wantSeries[fmt.Sprintf("ts-%d", i)] = []string{"baseline", "canary", "bound"}
		}
		if m.Spec.Kind == judge.KindMannWhitney {
			wantSeries[fmt.Sprintf("ecdf-%d", i)] = []string{"baseline", "canary", "baseline-shifted"}
		} else {
			wantSeries[fmt.Sprintf("ecdf-%d", i)] = []string{"baseline", "canary"}
		}
	}
	if len(cs) != len(wantSeries) {
		t.Errorf("%d charts, want %d", len(cs), len(wantSeries))
	}
	for id, classes := range wantSeries {
		paths := cs[id]
		if len(paths) != len(classes) {
			t.Errorf("chart %s: %d series, want %v", id, len(paths), classes)
			continue
		}
		for i, p := range paths {
			pts, _ := strconv.Atoi(attr(p, "data-points"))
			if !hasClass(p, classes[i]) || pathPoints(attr(p, "d")) < 2 || pts <= 0 {
				t.Errorf("chart %s series %d: class %q, %d commands, data-points %q", id, i, attr(p, "class"), pathPoints(attr(p, "d")), attr(p, "data-points"))
			}
		}
	}
	// 30 intervals of 4 points at 15 s: the time series draw all 120 points of a cohort.
	if got := attr(cs["ts-1"][1], "data-points"); got != "120" {
		t.Errorf("p50 canary drew %s points, want 120", got)
	}
	// The ECDF marks the Hodges-Lehmann shift and its interval.
	ecdf := byID(doc, "ecdf-1")
	for _, class := range []string{"shift", "shift-ci"} {
		if len(findAll(ecdf, func(n *html.Node) bool { return hasClass(n, class) })) != 1 {
			t.Errorf("ecdf-1 has no .%s", class)
		}
	}
	// Failed intervals are shaded on the time series of the failing metric only.
	for id, want := range map[string]bool{"ts-0": false, "ts-1": true} {
		got := len(findAll(byID(doc, id), func(n *html.Node) bool { return hasClass(n, "failed") })) > 0
		if got != want {
			t.Errorf("%s shades failed intervals: %v, want %v", id, got, want)
		}
	}

	// A run of failed intervals is one band.
	if n := len(findAll(byID(doc, "ts-1"), func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, "failed") })); n != 1 {
		t.Errorf("ts-1 has %d failed bands, want 1 (every interval failed)", n)
	}

	// Per metric, one row per interval, latest first, with the figures of the judge.
	sec := byID(doc, "m-1")
	rows := findAll(sec, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-interval") != "" })
	if len(rows) != 30 || attr(rows[0], "data-interval") != "30" || attr(rows[29], "data-interval") != "1" {
		t.Fatalf("p50 rows: %d, first %q", len(rows), attr(rows[0], "data-interval"))
	}
	mw := last.Metrics[1].MannWhitney
	for _, want := range []string{formatP(mw.PValue), formatDelta(mw.Estimate, "seconds"), formatDelta(mw.CILow, "seconds"), "120", "high"} {
		if !strings.Contains(text(rows[0]), want) {
			t.Errorf("latest p50 row %q lacks %q", text(rows[0]), want)
		}
	}
	// Units: medians of a seconds metric in ms, of a ratio in %.
	if got := text(rows[0]); !strings.Contains(got, " ms") {
		t.Errorf("p50 row without ms: %q", got)
	}
	if got := text(byID(doc, "m-0")); !strings.Contains(got, "%") {
		t.Errorf("error-rate section without %%: %q", got[:200])
	}
	// Window judges show their own figures.
	if got := text(byID(doc, "m-2")); !strings.Contains(got, "points outside") || !strings.Contains(got, "×") {
		t.Errorf("ratio section lacks window figures")
	}

	acts := findAll(byID(doc, "actions"), func(n *html.Node) bool { return n.Data == "tr" })
	if len(acts) != 2 || !strings.Contains(text(acts[1]), "verdict") || !strings.Contains(text(acts[1]), "lifetime") {
		t.Errorf("actions table: %d rows", len(acts))
	}
	if len(findAll(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "http-equiv") == "refresh" })) != 0 {
		t.Error("an ended canary's page refreshes")
	}
	if len(findAll(doc, func(n *html.Node) bool { return n.Data == "script" })) != 0 {
		t.Error("the page has a script")
	}
}

func TestReportWhileRunning(t *testing.T) {
	_, a := loadAnalysis(t)
	cases := []struct {
		name      string
		intervals int
		now       time.Time
		refresh   string
		progress  string
	}{
		// Next judgement at 12:01: reload 2 s after it, at least 5 s from now.
		{"no interval yet", 0, fixtureStart.Add(10 * time.Second), "52", "0 / 30"},
		{"next judgement is due", 5, fixtureStart.Add(5*time.Minute + 59*time.Second), "5", "5 / 30"},
		{"scheduler lagging", 5, fixtureStart.Add(8 * time.Minute), "5", "5 / 30"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := fixtureDetail(a, tc.intervals, false, false)
			h := New(withAnalysis{fakeSource: newFakeSource(d), a: a}, Options{Now: func() time.Time { return tc.now }})
			res, body := get(t, h, "/canaries/"+d.ID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			doc := parseHTML(t, body)
			metas := findAll(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "http-equiv") == "refresh" })
			if len(metas) != 1 || attr(metas[0], "content") != tc.refresh {
				t.Errorf("refresh %v, want %s", metas, tc.refresh)
			}
			if got := text(byID(doc, "verdict")); got != "running" {
				t.Errorf("verdict %q", got)
			}
			if got := text(byID(doc, "progress")); got != tc.progress {
				t.Errorf("progress %q, want %q", got, tc.progress)
			}
			cs := charts(doc)
			if tc.intervals == 0 {
				// One line instead of four empty chart pairs (issue 19 item 17): only
				// the score chart.
				if len(cs) != 1 {
					t.Errorf("%d charts before the first judgement, want the score chart alone", len(cs))
				}
				for id, paths := range cs {
					if len(paths) != 0 {
						t.Errorf("chart %s draws %d series with no data", id, len(paths))
					}
				}
				if got := text(byID(doc, "not-judged")); got != "No interval judged yet: the charts appear with the first judgement, at 2026-03-01 12:01:00 UTC." {
					t.Errorf("not-judged line %q", got)
				}
				if !strings.Contains(text(byID(doc, "score")), "—") || !strings.Contains(body, "no interval judged yet") {
					t.Error("no hint that nothing was judged yet")
				}
			} else if len(cs) != 9 {
				t.Errorf("%d charts, want 9", len(cs))
			}
			if tc.intervals > 0 {
				if got := text(byID(doc, "last-verdict")); got == "pass" && !strings.Contains(body, "verdict so far") {
					t.Errorf("a running canary's last verdict is not labelled provisional")
				}
			}
			if tc.intervals == 0 {
				if byID(doc, "failing") != nil {
					t.Error("failing box with no interval")
				}
			}
		})
	}
}

// Metrics in nodata and in error have no points; their charts say so and the rest of the
// page is whole.
func TestReportNoDataAndErrors(t *testing.T) {
	_, a := loadAnalysis(t)
	d := fixtureDetail(a, 3, false, false)
	for i := range d.Results {
		r := &d.Results[i]
		r.Metrics[0] = judge.MetricResult{Name: "error-rate", Kind: judge.KindMannWhitney, Classification: judge.ClassError, Critical: true,
			Reason: "canary query: fake: backend unavailable"}
		r.Metrics[3] = judge.MetricResult{Name: "cpu", Kind: judge.KindThreshold, Classification: judge.ClassNoData,
			Reason: "cpu: no data: canary has 0 points"}
		r.Points = r.Points[1:3] // error-rate and cpu stored nothing
		r.Points = append(r.Points, analysis.MetricPoints{Metric: "cpu"})
	}
	h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a})
	res, body := get(t, h, "/canaries/"+d.ID)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	doc := parseHTML(t, body)
	cs := charts(doc)
	for id, want := range map[string]int{"ts-0": 0, "ecdf-0": 0, "ts-3": 0, "ecdf-3": 0, "ts-1": 2, "ecdf-1": 3} {
		if len(cs[id]) != want {
			t.Errorf("%s: %d series, want %d", id, len(cs[id]), want)
		}
	}
	ts0 := byID(doc, "ts-0")
	if !strings.Contains(text(ts0), "no points stored") {
		t.Error("empty chart does not say so")
	}
	// It still shows when the metric was in error (three intervals in a row: one band),
	// and no value axis that would suggest a scale.
	if n := len(findAll(ts0, func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, "error") })); n != 1 {
		t.Errorf("ts-0: %d error bands, want 1", n)
	}
	if n := len(findAll(ts0, func(n *html.Node) bool { return hasClass(n, "tick") && hasClass(n, "y") })); n != 0 {
		t.Errorf("ts-0: %d value ticks on an empty chart", n)
	}
	lis := findAll(byID(doc, "failing"), func(n *html.Node) bool { return n.Data == "li" })
	if len(lis) != 1 || attr(lis[0], "data-metric") != "error-rate" || !strings.Contains(text(lis[0]), "backend unavailable") {
		t.Errorf("failing box: %d items", len(lis))
	}
	if !strings.Contains(text(byID(doc, "m-3")), "nodata") {
		t.Error("cpu section does not say nodata")
	}
}

// Without the analysis (a Source that lacks it, or a snapshot that cannot be read) the
// page shows everything stored, without units, and says why.
func TestReportWithoutAnalysis(t *testing.T) {
	_, a := loadAnalysis(t)
	d := fixtureDetail(a, 4, true, false)
	for name, src := range map[string]Source{
		"plain source":      newFakeSource(d),
		"unreadable: error": withAnalysis{fakeSource: newFakeSource(d), err: errors.New("snapshot gone")},
	} {
		t.Run(name, func(t *testing.T) {
			res, body := get(t, newTestHandler(t, src), "/canaries/"+d.ID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			doc := parseHTML(t, body)
			if !strings.Contains(body, "could not be read") {
				t.Error("no note about the missing analysis")
			}
			if len(charts(doc)) != 9 || len(charts(doc)["ts-1"]) != 2 {
				t.Error("charts missing without the analysis")
			}
		})
	}
}

// The report shows a keyed canary's key among its facts (issue 16 item 1), and no key
// fact for a canary without one.
func TestReportKey(t *testing.T) {
	_, a := loadAnalysis(t)
	facts := func(t *testing.T, d *analysis.Detail) map[string]string {
		_, body := get(t, newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a}), "/canaries/"+d.ID)
		out := map[string]string{}
		for _, dl := range findAll(parseHTML(t, body), func(n *html.Node) bool { return n.Data == "dl" && hasClass(n, "facts") }) {
			var k string
			for n := dl.FirstChild; n != nil; n = n.NextSibling {
				switch n.Data {
				case "dt":
					k = text(n)
				case "dd":
					out[k] = text(n)
				}
			}
		}
		return out
	}
	d := fixtureDetail(a, 2, false, true)
	if f := facts(t, d); f["id"] != d.ID || f["key"] != "" {
		t.Errorf("unkeyed canary: facts %v", f)
	}
	d.Key = "checkout/rollout-7c9f@a1b2"
	if f := facts(t, d); f["key"] != "checkout/rollout-7c9f@a1b2" {
		t.Errorf("keyed canary: key fact %q (facts %v)", f["key"], f)
	}
}

func TestEscaping(t *testing.T) {
	_, a := loadAnalysis(t)
	const hostile = `"><script>alert('x')</script><img src=x onerror=alert(1)>`
	d := fixtureDetail(a, 2, false, true)
	d.Name = hostile
	d.Reason = hostile
	d.Canary.Canary["track"] = hostile
	d.Results[1].Metrics[1].Reason = hostile
	d.Actions[0].Reason = hostile
	h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a})
	for _, path := range []string{"/", "/canaries/" + d.ID, "/canaries/" + url.PathEscape(hostile)} {
		t.Run(path, func(t *testing.T) {
			_, body := get(t, h, path)
			for _, raw := range []string{"<script", "<img"} {
				if strings.Contains(body, raw) {
					t.Errorf("%s unescaped in %s", raw, path)
				}
			}
			doc := parseHTML(t, body)
			if n := len(findAll(doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "img" })); n != 0 {
				t.Errorf("%d injected elements", n)
			}
		})
	}
	// The text survives escaping: the reader sees exactly what was stored.
	_, body := get(t, h, "/canaries/"+d.ID)
	doc := parseHTML(t, body)
	if got := text(byID(doc, "name")); got != hostile {
		t.Errorf("name shown as %q", got)
	}
}

func TestList(t *testing.T) {
	_, a := loadAnalysis(t)
	failed := fixtureDetail(a, 30, true, true)
	running := fixtureDetail(a, 3, false, false)
	running.ID, running.Name, running.CreatedAt = "runningcanary001", "search-v7", fixtureStart.Add(28*time.Minute)
	h := newTestHandler(t, newFakeSource(failed, running))

	cases := []struct {
		query string
		ids   []string
		code  int
	}{
		{"", []string{running.ID, failed.ID}, 200}, // newest first
		{"?status=fail", []string{failed.ID}, 200},
		{"?status=running", []string{running.ID}, 200},
		{"?status=pass", nil, 200},
		{"?status=bogus", nil, 400},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			res, body := get(t, h, "/"+tc.query)
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.code)
			}
			doc := parseHTML(t, body)
			var ids []string
			for _, tr := range findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-id") != "" }) {
				ids = append(ids, attr(tr, "data-id"))
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
				t.Errorf("rows %v, want %v", ids, tc.ids)
			}
			if tc.code == 400 && !strings.Contains(body, "bogus") {
				t.Error("the 400 page does not name the bad status")
			}
		})
	}
	_, body := get(t, h, "/")
	doc := parseHTML(t, body)
	row := findAll(doc, func(n *html.Node) bool { return attr(n, "data-id") == failed.ID })[0]
	for _, want := range []string{"fail", "checkout-v2", "web", formatScore(*failed.Score), "30/30", "31m ago"} {
		if !strings.Contains(text(row), want) {
			t.Errorf("row %q lacks %q", text(row), want)
		}
	}
	links := findAll(row, func(n *html.Node) bool { return n.Data == "a" })
	if len(links) != 1 || attr(links[0], "href") != "canaries/"+failed.ID {
		t.Errorf("row links %v", links)
	}
	// The list comes in pages, newest first, each linking to the next (older) one and
	// back to the newest.
	paged := New(newFakeSource(failed, running), Options{Now: now, MaxListed: 1})
	var seen []string
	next := "/"
	for range 5 {
		_, body = get(t, paged, next)
		pdoc := parseHTML(t, body)
		for _, tr := range findAll(pdoc, func(n *html.Node) bool { return attr(n, "data-id") != "" }) {
			seen = append(seen, attr(tr, "data-id"))
		}
		if pager := findAll(pdoc, func(n *html.Node) bool { return attr(n, "id") == "pager" }); len(pager) != 1 || !strings.Contains(text(pager[0]), "1 of 2 shown") {
			t.Errorf("page %s: pager %v", next, pager)
		}
		newest := findAll(pdoc, func(n *html.Node) bool { return attr(n, "id") == "newest" })
		if (next == "/") != (len(newest) == 0) {
			t.Errorf("page %s: %d links to the newest page", next, len(newest))
		}
		older := findAll(pdoc, func(n *html.Node) bool { return attr(n, "id") == "older" })
		if len(older) == 0 {
			break
		}
		next = "/" + attr(older[0], "href")
	}
	if fmt.Sprint(seen) != fmt.Sprint([]string{running.ID, failed.ID}) {
		t.Errorf("paged rows %v, want newest first, each once", seen)
	}
	if res, body := get(t, paged, "/?cursor=bogus!"); res.StatusCode != 400 || !strings.Contains(body, "Bad page link") {
		t.Errorf("bad cursor: %d", res.StatusCode)
	}
	// Filter links carry counts.
	nav := text(findAll(doc, func(n *html.Node) bool { return n.Data == "nav" })[0])
	if !strings.Contains(nav, "all 2") || !strings.Contains(nav, "running 1") || !strings.Contains(nav, "fail 1") {
		t.Errorf("filters %q", nav)
	}
}

func TestNotFoundAndErrors(t *testing.T) {
	_, a := loadAnalysis(t)
	d := fixtureDetail(a, 1, false, false)
	h := newTestHandler(t, newFakeSource(d))
	cases := []struct {
		method, path string
		code         int
		has          string
	}{
		{"GET", "/canaries/nosuchcanary", 404, "nosuchcanary"},
		{"GET", "/canaries/" + strings.Repeat("x", 500), 404, "Canary not found"},
		{"GET", "/nope", 404, "Not found"},
		{"GET", "/canaries/" + d.ID + "/extra", 404, "Not found"},
		{"POST", "/", 405, ""},
		{"HEAD", "/canaries/" + d.ID, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d", rec.Code, tc.code)
			}
			if tc.has != "" && !strings.Contains(rec.Body.String(), tc.has) {
				t.Errorf("body lacks %q", tc.has)
			}
			if tc.code == 404 && !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Errorf("404 as %s", rec.Header().Get("Content-Type"))
			}
		})
	}

	broken := &fakeSource{err: errors.New("bolt: database not open /secret/path")}
	for _, path := range []string{"/", "/canaries/x"} {
		res, body := get(t, newTestHandler(t, broken), path)
		if res.StatusCode != http.StatusInternalServerError || strings.Contains(body, "/secret/path") {
			t.Errorf("%s: %d, leaks the error: %v", path, res.StatusCode, strings.Contains(body, "/secret/path"))
		}
	}
}

// The first-day findings of issue 19 on the report and the list: what fired, a score
// that could not be computed, the queries, a running canary's provisional verdict.
func TestReportFirstDay(t *testing.T) {
	_, a := loadAnalysis(t)
	cell := func(t *testing.T, body, class string) string {
		t.Helper()
		doc := parseHTML(t, body)
		n := findAll(doc, func(n *html.Node) bool { return n.Data == "td" && attr(n, "class") == class })
		if len(n) == 0 {
			t.Fatalf("no td.%s", class)
		}
		return text(n[0])
	}
	t.Run("actuators: none configured", func(t *testing.T) {
		d := fixtureDetail(a, 30, true, true)
		h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a})
		_, body := get(t, h, "/canaries/"+d.ID)
		if got := cell(t, body, "actuate"); got != "none: on_fail lists no actuator" {
			t.Errorf("actuators cell %q, want none", got)
		}
	})
	t.Run("actuators: the list that fired", func(t *testing.T) {
		d := fixtureDetail(a, 30, true, true)
		withActs := *a
		withActs.OnFail = []string{"rollback", "page"}
		h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: &withActs})
		_, body := get(t, h, "/canaries/"+d.ID)
		if got := cell(t, body, "actuate"); got != "yes: rollback, page" {
			t.Errorf("actuators cell %q", got)
		}
	})
	t.Run("nothing scored is a dash and why", func(t *testing.T) {
		d := fixtureDetail(a, 30, false, true)
		zero := 0.0
		d.Score, d.Verdict = &zero, judge.VerdictNoData
		h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a})
		_, body := get(t, h, "/canaries/"+d.ID)
		doc := parseHTML(t, body)
		if got := text(byID(doc, "score")); got != "—" {
			t.Errorf("score %q, want —", got)
		}
		if got := text(byID(doc, "score-note")); got != "nothing could be scored: every metric was nodata or error" {
			t.Errorf("score note %q", got)
		}
		for i := range d.Results {
			d.Results[i].Score.Verdict = judge.VerdictNoData
		}
		_, body = get(t, h, "/canaries/"+d.ID)
		if !strings.Contains(body, "nothing could be scored in any interval") || len(charts(parseHTML(t, body))["score"]) != 0 {
			t.Error("the score chart draws intervals that had nothing to score")
		}
		_, list := get(t, h, "/")
		if strings.Contains(list, ">0.0<") {
			t.Errorf("the list shows a score of 0.0 for a canary with nothing scored")
		}
	})
	t.Run("queries of both cohorts, collapsed", func(t *testing.T) {
		d := fixtureDetail(a, 3, false, false)
		h := newTestHandler(t, withAnalysis{fakeSource: newFakeSource(d), a: a})
		_, body := get(t, h, "/canaries/"+d.ID)
		doc := parseHTML(t, body)
		det := findAll(doc, func(n *html.Node) bool { return n.Data == "details" && attr(n, "class") == "queries" })
		if len(det) != len(a.Metrics) {
			t.Fatalf("%d query boxes, want %d", len(det), len(a.Metrics))
		}
		if attr(det[0], "open") != "" {
			t.Error("queries are open by default")
		}
		var qs []string
		for _, c := range findAll(det[0], func(n *html.Node) bool { return n.Data == "code" }) {
			qs = append(qs, text(c))
		}
		want := []string{`error_rate{track="` + d.Baseline["track"] + `"}`, `error_rate{track="` + d.Canary.Canary["track"] + `"}`}
		if fmt.Sprint(qs) != fmt.Sprint(want) {
			t.Errorf("queries %q, want %q", qs, want)
		}
		// The time axes' ticks are clock times: the caption gives the date.
		if !strings.Contains(body, "Times in UTC, 2026-03-01.") {
			t.Error("the time-series captions lack the date")
		}
	})
	t.Run("a running canary's verdict in the list is provisional", func(t *testing.T) {
		d := fixtureDetail(a, 3, false, false)
		if d.Verdict != judge.VerdictPass {
			t.Fatalf("fixture's last verdict %s, want pass", d.Verdict)
		}
		h := newTestHandler(t, newFakeSource(d))
		_, body := get(t, h, "/")
		doc := parseHTML(t, body)
		badges := findAll(doc, func(n *html.Node) bool { return n.Data == "span" && strings.HasPrefix(attr(n, "class"), "badge") })
		var got []string
		for _, b := range badges {
			got = append(got, attr(b, "class")+"="+text(b))
		}
		if !slices.Contains(got, "badge muted=pass so far") || slices.Contains(got, "badge ok=pass") {
			t.Errorf("list badges %q: want a muted 'pass so far', no green pass", got)
		}
	})
}
