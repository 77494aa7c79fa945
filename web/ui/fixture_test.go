package ui

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// loadAnalysis reads the fixtures' analysis (testdata/analysis.yml).
func loadAnalysis(tb testing.TB) (*config.Config, *config.Analysis) {
	tb.Helper()
	src, err := os.ReadFile("testdata/analysis.yml")
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(src, testKinds())
	if err != nil {
		tb.Fatalf("testdata/analysis.yml: %v", err)
	}
	return cfg, cfg.Analyses["web"]
}

var fixtureStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtureValue is one deterministic point of a metric. With regress, the canary's p50 is
// 25% slower and its p99 1.75× the baseline's.
func fixtureValue(metric string, rng *rand.Rand, canary, regress bool) float64 {
	n := rng.NormFloat64()
	switch metric {
	case "error-rate":
		return max(0, 0.002+0.0005*n)
	case "p50-latency":
		if canary && regress {
			return 0.150 + 0.008*n
		}
		return 0.120 + 0.008*n
	case "p99-ratio":
		if canary && regress {
			return 0.70 + 0.03*n
		}
		return 0.40 + 0.03*n
	case "cpu":
		if canary {
			return 0.60 + 0.04*n
		}
		return 0.55 + 0.04*n
	}
	return n
}

// fixtureDetail judges n intervals of a canary of the testdata analysis with the real
// judge, storing points as the scheduler does (each interval's new points). With end the
// canary ends after the n-th interval, with the status its verdict gives.
func fixtureDetail(a *config.Analysis, n int, regress, end bool) *analysis.Detail {
	c := &analysis.Canary{
		ID: "abcdefghijklmnop", Name: "checkout-v2", Analysis: a.Name, AnalysisHash: a.Hash,
		Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
		Vars:  map[string]string{"app": "checkout"},
		Start: fixtureStart, Lifetime: a.Lifetime, Interval: a.Interval, Warmup: a.Warmup,
		Intervals: analysis.IntervalCount(a.Lifetime, a.Interval), NextIndex: 1,
		Status: analysis.StatusRunning, CreatedAt: fixtureStart, UpdatedAt: fixtureStart,
	}
	d := &analysis.Detail{Canary: c}
	rng := rand.New(rand.NewPCG(1, 2))
	all := make([]analysis.MetricPoints, len(a.Metrics))
	for i := 1; i <= n; i++ {
		from, to := c.IntervalEnd(i-1), c.IntervalEnd(i)
		r := analysis.IntervalResult{CanaryID: c.ID, Index: i, Start: c.Start.Add(c.Warmup), End: to, JudgedAt: to.Add(2 * time.Second)}
		for k, m := range a.Metrics {
			mp := analysis.MetricPoints{Metric: m.Name}
			for t := from.Add(a.Step); !t.After(to); t = t.Add(a.Step) {
				ms := float64(t.UnixMilli())
				mp.Baseline = append(mp.Baseline, analysis.TimeValue{ms, fixtureValue(m.Name, rng, false, regress)})
				mp.Canary = append(mp.Canary, analysis.TimeValue{ms, fixtureValue(m.Name, rng, true, regress)})
			}
			r.Points = append(r.Points, mp)
			all[k].Baseline = append(all[k].Baseline, mp.Baseline...)
			all[k].Canary = append(all[k].Canary, mp.Canary...)
			r.Metrics = append(r.Metrics, judge.Classify(m.Spec, values(all[k].Baseline), values(all[k].Canary)))
		}
		r.Score = judge.Score(r.Metrics, a.Groups, a.Score)
		d.Results = append(d.Results, r)
		sc := r.Score.Score
		c.NextIndex, c.Score, c.Verdict, c.UpdatedAt = i+1, &sc, r.Score.Verdict, r.JudgedAt
	}
	if end {
		at := c.UpdatedAt
		c.Status = analysis.Status(c.Verdict)
		c.Reason = "lifetime over; last interval scored " + formatScore(*c.Score) + ": " + d.Results[n-1].Score.Reason
		c.EndedAt = &at
		d.Actions = []analysis.Action{{CanaryID: c.ID, Seq: 1, Time: at, Kind: "verdict", Status: c.Status, Cause: analysis.CauseLifetime, Reason: c.Reason, Actuate: true}}
	}
	return d
}

func values(pts []analysis.TimeValue) []float64 {
	out := make([]float64, len(pts))
	for i, p := range pts {
		out[i] = p[1]
	}
	return out
}

// fakeSource serves fixed details; with analyses it also implements AnalysisSource.
type fakeSource struct {
	details map[string]*analysis.Detail
	order   []string // List order: oldest first, as a Store returns
	err     error
}

func (f *fakeSource) Get(_ context.Context, id string) (*analysis.Detail, error) {
	if f.err != nil {
		return nil, f.err
	}
	d, ok := f.details[id]
	if !ok {
		return nil, analysis.ErrNotFound
	}
	return d, nil
}

func (f *fakeSource) ListPage(_ context.Context, q analysis.ListQuery) (analysis.Page, error) {
	if f.err != nil {
		return analysis.Page{}, f.err
	}
	var match []*analysis.Canary
	for _, id := range f.order {
		c := f.details[id].Canary
		if (q.Status == "" || c.Status == q.Status) && (q.After == nil || q.After.Before(analysis.CursorOf(c))) {
			match = append(match, c)
		}
	}
	slices.SortFunc(match, func(a, b *analysis.Canary) int {
		if analysis.CursorOf(a).Before(analysis.CursorOf(b)) {
			return -1
		}
		return 1
	})
	var p analysis.Page
	if len(match) > q.Limit {
		match = match[:q.Limit]
		next := analysis.CursorOf(match[len(match)-1])
		p.Next = &next
	}
	p.Canaries = match
	return p, nil
}

func (f *fakeSource) CountByStatus(context.Context) (map[analysis.Status]int, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := map[analysis.Status]int{}
	for _, d := range f.details {
		out[d.Status]++
	}
	return out, nil
}

func newFakeSource(ds ...*analysis.Detail) *fakeSource {
	f := &fakeSource{details: map[string]*analysis.Detail{}}
	for _, d := range ds {
		f.details[d.ID] = d
		f.order = append(f.order, d.ID)
	}
	return f
}

// withAnalysis adds the AnalysisSource method to a fakeSource.
type withAnalysis struct {
	*fakeSource
	a   *config.Analysis
	err error
}

func (w withAnalysis) Analysis(context.Context, *analysis.Canary) (*config.Analysis, error) {
	return w.a, w.err
}

// HTML helpers over golang.org/x/net/html, so that assertions look at elements, not at
// bytes.

func parseHTML(tb testing.TB, body string) *html.Node {
	tb.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

func findAll(n *html.Node, keep func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func byID(doc *html.Node, id string) *html.Node {
	if ns := findAll(doc, func(n *html.Node) bool { return attr(n, "id") == id }); len(ns) > 0 {
		return ns[0]
	}
	return nil
}

// text is the text of n and its descendants, spaces collapsed.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// pathPoints counts the drawing commands of a path's d, as the browser test does.
func pathPoints(d string) int {
	n := 0
	for _, r := range d {
		if strings.ContainsRune("MLHVh", r) {
			n++
		}
	}
	return n
}
