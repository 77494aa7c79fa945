package promsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/eval"
	"github.com/canaryd/canaryd/internal/testutil"
)

// now is a fixed wall clock for the layout: the data's times do not change its values.
var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func layout() Layout { return NewLayout(now, 30*time.Minute, 2*time.Minute) }

// requireProm skips under -short when promtool or prometheus is missing, and fails
// otherwise: `make test` installs them.
func requireProm(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"promtool", "prometheus"} {
		testutil.LookPath(t, bin)
	}
}

func scenario(t *testing.T, name string) (int, Scenario) {
	t.Helper()
	for i, s := range DefaultScenarios() {
		if s.Name == name {
			return i, s
		}
	}
	t.Fatalf("no scenario %q", name)
	return 0, Scenario{}
}

func TestLayout(t *testing.T) {
	l := layout()
	if got, want := l.Start, time.Date(2026, 12, 1, 6, 5, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("start %s, want %s (the lead after the start of the 2h block 4h before now)", got, want)
	}
	if l.Steps() != 141 || !l.Time(0).Equal(l.Start.Add(-Lead)) || l.StepAt(l.Start) != 20 {
		t.Errorf("steps %d, time(0) %s, step at start %d", l.Steps(), l.Time(0), l.StepAt(l.Start))
	}
	end := l.Time(l.Steps() - 1)
	if end.Sub(l.Time(0)) >= 2*time.Hour || end.Truncate(2*time.Hour) != l.Time(0).Truncate(2*time.Hour) {
		t.Errorf("data %s–%s is not inside one 2h block", l.Time(0), end)
	}
}

// TestGenerate: deterministic per seed, and each scenario's property holds in its data.
func TestGenerate(t *testing.T) {
	l := layout()
	si, aa := scenario(t, "aa")
	a, b := Generate(1, si, aa, 3, l), Generate(1, si, aa, 3, l)
	if !slices.Equal(a.Canary.Requests, b.Canary.Requests) || !slices.Equal(a.Baseline.Errors, b.Baseline.Errors) || a.Service != b.Service {
		t.Fatal("same seed, different runs")
	}
	if c := Generate(2, si, aa, 3, l); slices.Equal(a.Canary.Requests, c.Canary.Requests) {
		t.Fatal("another seed gave the same run")
	}

	// Over many healthy runs: rates span 1–500 req/s and shares 5–50%, the canary gets its
	// share of the traffic, and errors are overdispersed (variance of per-step counts well
	// above the binomial's).
	var minRate, maxRate, minShare, maxShare = math.Inf(1), 0.0, 1.0, 0.0
	var overdispersed int
	for i := range 200 {
		r := Generate(1, si, aa, i, l)
		s := r.Service
		minRate, maxRate = math.Min(minRate, s.Rate), math.Max(maxRate, s.Rate)
		minShare, maxShare = math.Min(minShare, s.Share), math.Max(maxShare, s.Share)
		var nb, nc int64
		for k := range r.Canary.Requests {
			nb += r.Baseline.Requests[k]
			nc += r.Canary.Requests[k]
			var inBuckets int64
			for _, c := range r.Canary.Buckets[k] {
				inBuckets += c
			}
			if inBuckets != r.Canary.Requests[k] || r.Canary.Errors[k] > r.Canary.Requests[k] {
				t.Fatalf("run %d step %d: %d requests, %d in buckets, %d errors", i, k, r.Canary.Requests[k], inBuckets, r.Canary.Errors[k])
			}
		}
		if nb+nc > 20000 {
			if got := float64(nc) / float64(nb+nc); math.Abs(got-s.Share) > 0.05 {
				t.Errorf("run %d: canary got %.3f of the requests, share %.3f", i, got, s.Share)
			}
			if dispersion(r.Baseline) > 2 {
				overdispersed++
			}
		}
	}
	if minRate > 2 || maxRate < 300 || minShare > 0.07 || maxShare < 0.45 {
		t.Errorf("rates %.1f–%.1f req/s, shares %.3f–%.3f: want them to span 1–500 and 5–50%%", minRate, maxRate, minShare, maxShare)
	}
	if overdispersed < 20 {
		t.Errorf("%d busy runs with errors overdispersed ×2 or more, want many", overdispersed)
	}

	// A quiet service stays under 2 req/s.
	qi, quiet := scenario(t, "aa-quiet")
	for i := range 50 {
		if r := Generate(1, qi, quiet, i, l); r.Service.Rate < 1 || r.Service.Rate >= 2 {
			t.Fatalf("quiet run %d: %.2f req/s", i, r.Service.Rate)
		}
	}

	// errors ×10: the canary's error share jumps at the onset, the baseline's does not.
	xi, x10 := scenario(t, "errors-x10-anytime")
	var ratios []float64
	onsets := map[time.Duration]bool{}
	for i := range 40 {
		r := Generate(1, xi, x10, i, l)
		onsets[r.Onset] = true
		if r.Onset%time.Minute != 0 || r.Onset > 23*time.Minute {
			t.Fatalf("onset %s: want a whole minute up to 5m before the end", r.Onset)
		}
		at := l.StepAt(l.Start.Add(l.Warmup+r.Onset)) + 1
		before, after := errShare(r.Canary, 1, at), errShare(r.Canary, at, l.Steps())
		bBefore, bAfter := errShare(r.Baseline, 1, at), errShare(r.Baseline, at, l.Steps())
		if before > 0 && bBefore > 0 && bAfter > 0 {
			ratios = append(ratios, (after/before)/(bAfter/bBefore))
		}
	}
	slices.Sort(ratios)
	if med := ratios[len(ratios)/2]; med < 5 || med > 20 {
		t.Errorf("errors ×10: median after/before ratio against the baseline %.2f, want ≈10", med)
	}
	if len(onsets) < 8 {
		t.Errorf("onsets %v: want them spread", onsets)
	}
}

// dispersion is the variance of per-step error counts over the binomial variance they
// would have at the cohort's mean error share.
func dispersion(c Cohort) float64 {
	var num, den float64
	var n, e int64
	for k := 1; k < len(c.Requests); k++ {
		n += c.Requests[k]
		e += c.Errors[k]
	}
	p := float64(e) / float64(n)
	for k := 1; k < len(c.Requests); k++ {
		d := float64(c.Errors[k]) - p*float64(c.Requests[k])
		num += d * d
		den += p * (1 - p) * float64(c.Requests[k])
	}
	return num / den
}

func errShare(c Cohort, from, to int) float64 {
	var n, e int64
	for k := from; k < to; k++ {
		n += c.Requests[k]
		e += c.Errors[k]
	}
	if n == 0 {
		return 0
	}
	return float64(e) / float64(n)
}

func TestWriteOpenMetrics(t *testing.T) {
	l := Layout{Start: time.Unix(1000, 0), Lead: 15 * time.Second, Lifetime: 30 * time.Second, Warmup: 15 * time.Second}
	mk := func(req, errs []int64) Cohort {
		c := Cohort{Requests: req, Errors: errs, Sum: make([]float64, len(req))}
		for k := range req {
			b := make([]int64, len(Buckets())+1)
			b[4] = req[k] // all in (0.05, 0.1]
			c.Buckets = append(c.Buckets, b)
			c.Sum[k] = 0.075 * float64(req[k])
		}
		return c
	}
	run := Run{App: "a", Baseline: mk([]int64{0, 10, 10, 10}, []int64{0, 0, 2, 0}), Canary: mk([]int64{0, 5, 5, 5}, []int64{0, 1, 0, 1})}
	run.Canary.Restart = 2
	var buf bytes.Buffer
	if err := WriteOpenMetrics(&buf, l, []Run{run}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"# TYPE http_requests counter\n",
		// The baseline's 500 series appears with its first error, at 1015+15.
		`http_requests_total{app="a",track="stable",code="200"} 0 985` + "\n" + `http_requests_total{app="a",track="stable",code="200"} 10 1000` + "\n",
		`http_requests_total{app="a",track="stable",code="500"} 2 1015` + "\n" + `http_requests_total{app="a",track="stable",code="500"} 2 1030` + "\n",
		// The canary restarts at step 2: its counters start over, its 500 series is gone
		// until the next error.
		`http_requests_total{app="a",track="canary",code="200"} 4 1000` + "\n" + `http_requests_total{app="a",track="canary",code="200"} 5 1015` + "\n",
		`http_requests_total{app="a",track="canary",code="500"} 1 1000` + "\n" + `http_requests_total{app="a",track="canary",code="500"} 1 1030` + "\n",
		"# TYPE http_request_duration_seconds histogram\n",
		`http_request_duration_seconds_bucket{app="a",track="stable",le="0.05"} 0 1030` + "\n" + `http_request_duration_seconds_bucket{app="a",track="stable",le="0.1"} 30 1030` + "\n",
		`http_request_duration_seconds_bucket{app="a",track="stable",le="+Inf"} 30 1030` + "\n" + `http_request_duration_seconds_count{app="a",track="stable"} 30 1030` + "\n" +
			`http_request_duration_seconds_sum{app="a",track="stable"} 2.250000 1030` + "\n",
		`http_request_duration_seconds_count{app="a",track="canary"} 10 1030` + "\n",
	} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("output lacks\n%s\n--- output:\n%s", want, out)
		}
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n# EOF\n")) {
		t.Error("no # EOF at the end")
	}
}

// promQuery runs a range query on the grid of the layout's steps and returns each series'
// values by step, keyed by the label named by key.
func promQuery(t *testing.T, base, q string, l Layout, from, to int, key string) map[string]map[int]float64 {
	t.Helper()
	v := url.Values{"query": {q}, "start": {strconv.FormatInt(l.Time(from).Unix(), 10)},
		"end": {strconv.FormatInt(l.Time(to).Unix(), 10)}, "step": {"15"}}
	resp, err := http.Get(base + "/api/v1/query_range?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("%s: %v %s %s", q, err, body.Status, body.Error)
	}
	out := map[string]map[int]float64{}
	for _, r := range body.Data.Result {
		m := map[int]float64{}
		for _, p := range r.Values {
			ts := int64(p[0].(float64))
			f, err := strconv.ParseFloat(p[1].(string), 64)
			if err != nil {
				t.Fatal(err)
			}
			m[l.StepAt(time.Unix(ts, 0))] = f
		}
		out[r.Metric[key]] = m
	}
	return out
}

// present500 says at which samples a cohort's 500 series exists, as WriteOpenMetrics
// writes it.
func present500(c Cohort) []bool {
	out := make([]bool, len(c.Requests))
	seen := false
	for k := range c.Requests {
		if k > 0 && k == c.Restart {
			seen = false
		}
		seen = seen || c.Errors[k] > 0
		out[k] = seen
	}
	return out
}

// TestThroughPrometheus: the series come back through promtool's backfill and PromQL as
// generated — per-step increases and 1m rates exactly, quantiles as the buckets say and
// close to the generated latency distribution's.
func TestThroughPrometheus(t *testing.T) {
	requireProm(t)
	l := layout()
	var runs []Run
	tailFactor := map[string]float64{}
	for _, name := range []string{"aa", "aa-restarts", "tail-5%x3"} {
		si, sc := scenario(t, name)
		tailFactor[name] = math.Max(sc.Regression.TailFactor, 1)
		for i := range 2 {
			runs = append(runs, Generate(7, si, sc, i, l))
		}
	}
	ctx := t.Context()
	dir := t.TempDir()
	data, err := Backfill(ctx, &Dataset{Layout: l, Runs: runs}, dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Serve(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)

	first, last := l.StepAt(l.Start), l.Steps()-1
	for _, r := range runs {
		for ci, c := range r.cohorts() {
			sel := fmt.Sprintf(`app="%s",track="%s"`, r.App, track(ci))
			name := fmt.Sprintf("%s %s", r.App, track(ci))
			// Per step: exactly what was generated; the 500 series only where it has a
			// sample at both ends of the step (a new series' first errors are not counted
			// by increase(), as in production).
			got := promQuery(t, srv.URL, `sum by (code) (increase(http_requests_total{`+sel+`}[15s]))`, l, first, last, "code")
			p5 := present500(*c)
			for k := first; k <= last; k++ {
				want200 := float64(c.Requests[k] - c.Errors[k])
				if v, ok := got["200"][k]; !ok || math.Abs(v-want200) > 1e-9 {
					t.Errorf("%s step %d: increase of code 200 %v (%v), want %v", name, k, v, ok, want200)
				}
				v, ok := got["500"][k]
				switch {
				case p5[k] && p5[k-1] && (!ok || math.Abs(v-float64(c.Errors[k])) > 1e-9):
					t.Errorf("%s step %d: increase of code 500 %v (%v), want %d", name, k, v, ok, c.Errors[k])
				case !(p5[k] && p5[k-1]) && ok:
					t.Errorf("%s step %d: increase of code 500 %v where the series has no two samples", name, k, v)
				}
			}
			// rate over 1m: the last four steps' requests over 60 s, where no restart
			// falls inside the window.
			rate := promQuery(t, srv.URL, `rate(http_requests_total{`+sel+`,code="200"}[1m])`, l, first, last, "code")["200"]
			for k := first; k <= last; k++ {
				if c.Restart > k-4 && c.Restart <= k {
					continue
				}
				var n int64
				for j := k - 3; j <= k; j++ {
					n += c.Requests[j] - c.Errors[j]
				}
				if want := float64(n) / 60; math.Abs(rate[k]-want) > 1e-9*math.Max(1, want) {
					t.Errorf("%s step %d: rate[1m] %v, want %v", name, k, rate[k], want)
				}
			}
			if c.Restart > 0 {
				continue
			}
			// The judged lifetime's p50 and p99: what PromQL's interpolation gives on
			// the generated counts (exactly), and near the generated distribution's.
			window := l.Time(last).Sub(l.Time(first)).String()
			for _, q := range []float64{0.5, 0.99} {
				qs := promQuery(t, srv.URL, fmt.Sprintf(`histogram_quantile(%g, sum by (le) (increase(http_request_duration_seconds_bucket{%s}[%s])))`, q, sel, window), l, last, last, "")
				gotQ := qs[""][last]
				counts := make([]float64, len(Buckets())+1)
				for k := first + 1; k <= last; k++ {
					for b, n := range c.Buckets[k] {
						counts[b] += float64(n)
					}
				}
				if want := bucketQuantile(q, counts); math.Abs(gotQ-want) > 1e-9*want {
					t.Errorf("%s p%g: histogram_quantile %v, from the generated buckets %v", name, 100*q, gotQ, want)
				}
				// Near a bucket's edge a quantile moves far for a small change of mass,
				// so compare ranks: the model's interpolated CDF at the quantile PromQL
				// gave is q, within sampling error.
				model := modelCells(r.Service.Sigma, tailFactor[r.Scenario], *c, first+1, last)
				n := sum(counts)
				rank := bucketCDF(gotQ, model)
				t.Logf("%s p%g: %.4f (model %.4f), model rank %.5f, n=%.0f", name, 100*q, gotQ, bucketQuantile(q, model), rank, n)
				if tol := 4*math.Sqrt(q*(1-q)/n) + 1e-3; math.Abs(rank-q) > tol {
					t.Errorf("%s p%g over %.0f requests: histogram_quantile %v is the generated distribution's %.5f-quantile, want %g ± %.4f", name, 100*q, n, gotQ, rank, q, tol)
				}
				if q == 0.5 && math.Abs(gotQ-bucketQuantile(q, model)) > 0.05*gotQ {
					t.Errorf("%s p50 %v, the generated distribution's %v", name, gotQ, bucketQuantile(q, model))
				}
			}
		}
	}
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

// bucketQuantile is PromQL's histogram_quantile on non-cumulative counts per bucket.
func bucketQuantile(q float64, counts []float64) float64 {
	bounds := Buckets()
	var total float64
	for _, c := range counts {
		total += c
	}
	rank := q * total
	var cum float64
	for b, c := range counts {
		if cum+c >= rank && c > 0 {
			if b == len(bounds) {
				return bounds[len(bounds)-1]
			}
			lo := 0.0
			if b > 0 {
				lo = bounds[b-1]
			}
			return lo + (bounds[b]-lo)*(rank-cum)/c
		}
		cum += c
	}
	return math.NaN()
}

// modelCells are the expected requests per bucket of the latency model the cohort's
// histogram was drawn from (each step's log-normal, weighted by its requests).
func modelCells(sigma, tailFactor float64, c Cohort, from, to int) []float64 {
	n := len(Buckets()) + 1
	cells, means, total := make([]float64, n), make([]float64, n), make([]float64, n)
	for k := from; k <= to; k++ {
		latencyCells(cells, means, Buckets(), c.LogMedian[k], sigma, c.TailShare[k], tailFactor)
		for b := range cells {
			total[b] += float64(c.Requests[k]) * cells[b]
		}
	}
	return total
}

// bucketCDF is the share of counts at or below x, linear inside a bucket as PromQL
// interpolates.
func bucketCDF(x float64, counts []float64) float64 {
	bounds := Buckets()
	total, cum := sum(counts), 0.0
	for b, c := range counts {
		lo := 0.0
		if b > 0 {
			lo = bounds[b-1]
		}
		if b == len(bounds) || x <= bounds[b] {
			if b == len(bounds) {
				return (cum + c) / total
			}
			return (cum + c*(x-lo)/(bounds[b]-lo)) / total
		}
		cum += c
	}
	return 1
}

// TestEvaluate: canaries judged by the shipped golden-signals preset on data through
// Prometheus — every interval judged, no provider error, errors ×10 caught.
func TestEvaluate(t *testing.T) {
	requireProm(t)
	ts, err := eval.LoadPromFiles([]string{"../../../configs/golden-signals.yml"}, testKinds())
	if err != nil {
		t.Fatal(err)
	}
	scs, err := Pick([]string{"aa", "errors-x10"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(t.Context(), Options{Targets: ts[:1], Scenarios: scs, RunsAA: 3, RunsAB: 3, Seed: 3, Now: now, Dir: t.TempDir(), Kinds: testKinds()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outcomes) != 6 {
		t.Fatalf("%d outcomes, want 6", len(res.Outcomes))
	}
	failed := 0
	for _, o := range res.Outcomes {
		if o.Status == analysis.StatusError {
			t.Errorf("%s %d: status error (the provider or a query failed)", o.Scenario, o.Run)
		}
		if o.Status != analysis.StatusFail && o.Intervals != 28 {
			t.Errorf("%s %d: %s after %d intervals, want all 28 judged", o.Scenario, o.Run, o.Status, o.Intervals)
		}
		if o.Scenario == "errors-x10" && o.Status == analysis.StatusFail {
			failed++
		}
	}
	if failed < 2 {
		t.Errorf("errors ×10: %d of 3 failed, want most", failed)
	}
	rep := eval.Summarize(res)
	if len(rep.Rows) != 2 || rep.Rows[0].Scenario != "aa" || rep.Rows[0].Runs != 3 {
		t.Errorf("rows %+v", rep.Rows)
	}
}

// errors-x2-busy draws only services whose canary serves at least 5 req/s.
func TestMinCanaryRate(t *testing.T) {
	sc, err := Pick([]string{"errors-x2-busy"})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLayout(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 30*time.Minute, 2*time.Minute)
	lowest := math.Inf(1)
	for i := range 200 {
		svc := Generate(1, 0, sc[0], i, l).Service
		lowest = min(lowest, svc.Rate*svc.Share)
	}
	if lowest < 5 {
		t.Errorf("lowest canary rate %.2f req/s, want ≥ 5", lowest)
	}
}
