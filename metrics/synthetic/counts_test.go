package synthetic

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
)

// histogram is a latency_bucket answer per le (bucketBounds then +Inf), summed over
// streams, by step.
func histogram(t *testing.T, s metrics.Series) [][]float64 {
	t.Helper()
	bounds := bucketBounds()
	les := map[string]int{"+Inf": len(bounds)}
	for i, b := range bounds {
		les[strconv.FormatFloat(b, 'g', -1, 64)] = i
	}
	var out [][]float64
	for _, st := range s.Streams {
		j, ok := les[st.Labels["le"]]
		if !ok {
			t.Fatalf("a latency_bucket series with le=%q (labels %v)", st.Labels["le"], st.Labels)
		}
		if out == nil {
			out = make([][]float64, len(st.Points))
			for k := range out {
				out[k] = make([]float64, len(bounds)+1)
			}
		}
		for k, p := range st.Points {
			out[k][j] += p.V
		}
	}
	return out
}

// TestCountSignals: requests and errors are request_rate's and errors_per_second's draws
// counted over the step, errors / requests is error_rate's point, and their sums follow
// the configured rates within sampling error.
func TestCountSignals(t *testing.T) {
	cases := []struct {
		name     string
		rate     float64 // request_rate ratio
		wantRate float64 // req/s
	}{
		{"default 100 req/s", 1, 100},
		{"2 req/s", 0.02, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, Config{Seed: 5, Regressions: map[string]map[string]Regression{
				"c": {"request_rate": reg(func(r *Regression) { r.Ratio = tc.rate })},
			}})
			const n = 2000
			req := values(t, p, "signal=requests cohort=c app=x", n)
			errs := values(t, p, "signal=errors cohort=c app=x", n)
			rps := values(t, p, "signal=request_rate cohort=c app=x", n)
			eps := values(t, p, "signal=errors_per_second cohort=c app=x", n)
			ratio := values(t, p, "signal=error_rate cohort=c app=x", n)
			var sumReq, sumErr float64
			for i := range req {
				if req[i] != math.Round(req[i]) || errs[i] != math.Round(errs[i]) || errs[i] > req[i] || errs[i] < 0 {
					t.Fatalf("step %d: %v errors of %v requests, want integer counts, errors <= requests", i, errs[i], req[i])
				}
				if math.Abs(req[i]-rps[i]*step.Seconds()) > 1e-9 || math.Abs(errs[i]-eps[i]*step.Seconds()) > 1e-9 {
					t.Fatalf("step %d: %v requests, %v errors; request_rate %v and errors_per_second %v over 15 s", i, req[i], errs[i], rps[i], eps[i])
				}
				if req[i] > 0 && errs[i]/req[i] != ratio[i] {
					t.Fatalf("step %d: errors/requests %v, error_rate %v", i, errs[i]/req[i], ratio[i])
				}
				sumReq += req[i]
				sumErr += errs[i]
			}
			// request_rate is lognormal around its level with sd 0.1 of log: mean ×e^0.005.
			want := tc.wantRate * math.Exp(0.005) * step.Seconds() * n
			if got := sumReq / want; math.Abs(got-1) > 0.02 {
				t.Errorf("requests sum to %.0f, want about %.0f (×%.3f)", sumReq, want, got)
			}
			// error probability 0.5% × lognormal overdispersion sd 0.3: mean 0.5% × e^0.045.
			wantErr := sumReq * 0.005 * math.Exp(0.045)
			if sd := math.Sqrt(wantErr); math.Abs(sumErr-wantErr) > 5*sd+0.06*wantErr {
				t.Errorf("errors sum to %.0f, want about %.0f", sumErr, wantErr)
			}
		})
	}
}

// TestLatencyBuckets: every step's buckets are cumulative with +Inf = the step's requests,
// and the shares below the bounds follow the lognormal that latency_p50 and latency_p99
// describe.
func TestLatencyBuckets(t *testing.T) {
	p := newProvider(t, Config{Seed: 9})
	const n = 1000
	s := query(t, p, "signal=latency_bucket cohort=b app=x streams=2", t0, n)
	if got := len(s.Streams); got != 2*(len(bucketBounds())+1) {
		t.Fatalf("%d series, want %d (a series per le and stream)", got, 2*(len(bucketBounds())+1))
	}
	for _, st := range s.Streams {
		if st.Labels["signal"] != "latency_bucket" || st.Labels["cohort"] != "b" || st.Labels["app"] != "x" || st.Labels["stream"] == "" {
			t.Fatalf("labels %v", st.Labels)
		}
	}
	h := histogram(t, s)
	req := values(t, p, "signal=requests cohort=b app=x streams=2", n)
	reqPerStep := make([]float64, n)
	for i, v := range req { // stream 0's points, then stream 1's
		reqPerStep[i%n] += v
	}
	below := make([]float64, len(bucketBounds()))
	var total float64
	for k, b := range h {
		if b[len(b)-1] != reqPerStep[k] {
			t.Fatalf("step %d: +Inf bucket %v, want the requests %v", k, b[len(b)-1], reqPerStep[k])
		}
		for j := 1; j < len(b); j++ {
			if b[j] < b[j-1] || b[j] != math.Round(b[j]) {
				t.Fatalf("step %d: buckets %v are not cumulative integer counts", k, b)
			}
		}
		for j := range below {
			below[j] += b[j]
		}
		total += b[len(b)-1]
	}
	// 50 ms median, spread 0.6: 50% at or below 0.05, Φ(ln 2/0.6) = 87.6% below 0.1,
	// Φ(ln(0.5)/0.6) = 12.4% below 0.025.
	for _, c := range []struct {
		le, share float64
	}{{0.025, 0.124}, {0.05, 0.5}, {0.1, 0.876}, {0.25, 0.9963}} {
		j := boundIndex(t, c.le)
		if got := below[j] / total; math.Abs(got-c.share) > 0.02 {
			t.Errorf("share at or below %v s = %.3f, want about %.3f", c.le, got, c.share)
		}
	}
}

func boundIndex(t *testing.T, le float64) int {
	t.Helper()
	for i, b := range bucketBounds() {
		if b == le {
			return i
		}
	}
	t.Fatalf("no bound %v", le)
	return -1
}

// TestCountRegressions: the configured regressions move the counts and buckets: errors
// ×10, latency ×1.6, a wider tail (latency_p99 alone), and a rollback that ends them.
func TestCountRegressions(t *testing.T) {
	rb := NewRollbacks()
	rolledAt := t0.Add(250 * step)
	rb.RollBack("x", "rolled", rolledAt)
	p, err := WithRollbacks(rb)(Config{Seed: 2, Regressions: map[string]map[string]Regression{
		"errors": {"error_rate": reg(func(r *Regression) { r.Ratio = 10 })},
		"slow": {
			"latency_p50": reg(func(r *Regression) { r.Ratio = 1.6 }),
			"latency_p99": reg(func(r *Regression) { r.Ratio = 1.6 }),
		},
		"tail":   {"latency_p99": reg(func(r *Regression) { r.Ratio = 2 })},
		"rolled": {"error_rate": reg(func(r *Regression) { r.Ratio = 10 })},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	errorRate := func(cohort string, from, to int) float64 {
		req := values(t, p, "signal=requests app=x cohort="+cohort, n)
		errs := values(t, p, "signal=errors app=x cohort="+cohort, n)
		var e, r float64
		for i := from; i < to; i++ {
			e, r = e+errs[i], r+req[i]
		}
		return e / r
	}
	shareAbove := func(cohort string, le float64) float64 {
		h := histogram(t, query(t, p, "signal=latency_bucket app=x cohort="+cohort, t0, n))
		j := boundIndex(t, le)
		var below, total float64
		for _, b := range h {
			below, total = below+b[j], total+b[len(b)-1]
		}
		return 1 - below/total
	}
	base := errorRate("base", 0, n)
	cases := []struct {
		name      string
		got, want float64
		tolerance float64 // relative
	}{
		{"errors ×10", errorRate("errors", 0, n) / base, 10, 0.15},
		{"errors ×10 before the rollback", errorRate("rolled", 0, 250) / base, 10, 0.2},
		{"errors ×1 after the rollback", errorRate("rolled", 250, n) / base, 1, 0.25},
		// ×1.6: the median moves to 80 ms, so Φ(ln(50/80)/0.6) = 21.7% stay at or below 50 ms.
		{"latency ×1.6: share above 50 ms", shareAbove("slow", 0.05), 1 - 0.217, 0.05},
		{"latency ×1.6: share above 100 ms", shareAbove("slow", 0.1) / shareAbove("base", 0.1), (1 - 0.6443) / (1 - 0.8759), 0.1},
		// p99 ×2 alone: the spread grows to ln(2·202/50)/2.326 = 0.898, the median stays.
		{"tail: median unchanged", shareAbove("tail", 0.05), 0.5, 0.05},
		{"tail: share above 250 ms", shareAbove("tail", 0.25), 1 - 0.9637, 0.15},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if math.Abs(tc.got/tc.want-1) > tc.tolerance {
				t.Errorf("got %.4f, want %.4f ± %.0f%%", tc.got, tc.want, 100*tc.tolerance)
			}
		})
	}
}

// TestCountsSplitQuery: a window queried in parts (as the sequential judges fetch it,
// each interval the steps since the last) reads the points a whole query does, bursts
// and missing points included.
func TestCountsSplitQuery(t *testing.T) {
	p := newProvider(t, Config{Seed: 4, Regressions: map[string]map[string]Regression{"c": {
		"error_rate":   reg(func(r *Regression) { r.Ratio, r.Burst.Rate, r.Missing = 3, 0.05, 0.05 }),
		"latency_p50":  reg(func(r *Regression) { r.Ratio, r.Burst.Rate, r.Missing = 1.2, 0.05, 0.05 }),
		"request_rate": reg(func(r *Regression) { r.Burst.Rate = 0.05 }),
	}}})
	for _, signal := range []string{"requests", "errors", "latency_bucket"} {
		t.Run(signal, func(t *testing.T) {
			text := "signal=" + signal + " cohort=c app=x streams=2"
			whole := query(t, p, text, t0, 120)
			var parts []metrics.Series // 7 steps each, the last 1
			for k := 0; k < 120; k += 7 {
				parts = append(parts, query(t, p, text, t0.Add(time.Duration(k)*step), min(7, 120-k)))
			}
			for k, st := range whole.Streams {
				var joined []metrics.Point
				for _, part := range parts {
					if !mapsEqual(part.Streams[k].Labels, st.Labels) {
						t.Fatalf("series %d: labels %v, whole query's %v", k, part.Streams[k].Labels, st.Labels)
					}
					joined = append(joined, part.Streams[k].Points...)
				}
				if !samePoints(joined, st.Points) {
					t.Fatalf("series %v: the parts read other points than the whole query", st.Labels)
				}
			}
		})
	}
}
