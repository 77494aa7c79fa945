package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

// newTestProvider builds a provider for address with short backoffs so retry tests are quick.
func newTestProvider(t *testing.T, address string, retries int, timeout time.Duration) *Provider {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Address = address
	cfg.Retries = retries
	if timeout > 0 {
		cfg.Timeout = modelDuration(timeout)
	}
	p, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.backoffBase = 5 * time.Millisecond
	p.backoffMax = 20 * time.Millisecond
	return p
}

// countingProxy forwards to target and counts the requests that reach it.
func countingProxy(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/query_range") {
			n.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// Rates the test exporter's series grow at, per second.
var (
	podRates   = map[string]float64{"b1": 4, "b2": 6, "c1": 10, "c2": 15}
	podTrack   = map[string]string{"b1": "baseline", "b2": "baseline", "c1": "canary", "c2": "canary"}
	trackRates = map[string]float64{"baseline": 10, "canary": 25}
	errorRates = map[string]float64{"baseline": 0.05, "canary": 1}
)

func testExporter() promtest.Exporter {
	var e promtest.Exporter
	for pod, r := range podRates {
		e.Counters = append(e.Counters, promtest.Counter{
			Name: "requests_total", Labels: map[string]string{"track": podTrack[pod], "pod": pod}, PerSecond: r,
		})
	}
	for track, r := range errorRates {
		e.Counters = append(e.Counters, promtest.Counter{
			Name: "errors_total", Labels: map[string]string{"track": track}, PerSecond: r,
		})
	}
	e.Histograms = []promtest.Histogram{
		{Name: "request_duration_seconds", Labels: map[string]string{"track": "baseline"},
			Buckets: map[float64]float64{0.05: 4, 0.1: 8, 0.25: 9, 0.5: 10}, CountPerSecond: 10, SumPerSecond: 1},
		{Name: "request_duration_seconds", Labels: map[string]string{"track": "canary"},
			Buckets: map[float64]float64{0.05: 2, 0.1: 5, 0.25: 8, 0.5: 10}, CountPerSecond: 10, SumPerSecond: 1.5},
	}
	return e
}

// TestRealPrometheus runs the provider against Debian's Prometheus scraping an exporter
// whose counters grow at known rates.
//
// Tolerances: the exporter stamps each sample with the millisecond its value was computed
// for, so stored points lie exactly on the lines. rate() is then the slope exactly unless
// a scrape gap exceeds 1.1× the average interval and Prometheus shortens its
// extrapolation; that can happen to a few points on a loaded machine, so single-series
// rates must have an exact median (1e-9) and every point within 15%. Ratios of series
// from the same scrape (error ratio, histogram_quantile, sums) share the extrapolation
// factor, which cancels: every point must be exact.
func TestRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	target := promtest.ServeExporter(t, testExporter())
	promURL := promtest.Start(t, target)
	// 14 samples per series: every 10s window of the queried range below lies after the
	// first sample, so no window is cut at the start of the data.
	promtest.WaitFor(t, promURL, `min(count_over_time(requests_total[1m])) >= 14`, 1, 90*time.Second)

	proxyURL, requests := countingProxy(t, promURL)
	p := newTestProvider(t, proxyURL, 3, 10*time.Second)
	end := time.Now()
	q := func(text string) metrics.Query {
		return metrics.Query{Text: text, Start: end.Add(-2 * time.Second), End: end, Step: 250 * time.Millisecond}
	}
	ctx := context.Background()

	t.Run("per-pod rates keep labels", func(t *testing.T) {
		s, err := p.Query(ctx, q(`rate(requests_total[10s])`))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 4 {
			t.Fatalf("got %d streams, want 4: %+v", len(s.Streams), s.Streams)
		}
		for _, st := range s.Streams {
			pod := st.Labels["pod"]
			want, ok := podRates[pod]
			if !ok {
				t.Fatalf("stream with unexpected labels %v", st.Labels)
			}
			wantLabels := map[string]string{"pod": pod, "track": podTrack[pod], "job": "test", "instance": target}
			if fmt.Sprint(st.Labels) != fmt.Sprint(wantLabels) {
				t.Errorf("labels = %v, want %v", st.Labels, wantLabels)
			}
			if len(st.Points) < 8 {
				t.Errorf("pod %s: %d points, want ≥ 8 over 2s at 250ms", pod, len(st.Points))
			}
			vals := values(st)
			if m := median(vals); !near(m, want, 1e-9) {
				t.Errorf("pod %s: median rate %v, want %v; points %v", pod, m, want, vals)
			}
			for _, v := range vals {
				if !near(v, want, 0.15) {
					t.Errorf("pod %s: rate point %v, want %v ±15%%", pod, v, want)
				}
			}
			checkGrid(t, st.Points, 250)
		}
	})

	t.Run("several series pool", func(t *testing.T) {
		s, err := p.Query(ctx, q(`rate(requests_total{track="canary"}[10s])`))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 2 {
			t.Fatalf("got %d streams, want 2", len(s.Streams))
		}
		if s.Len() != len(s.Streams[0].Points)+len(s.Streams[1].Points) || len(s.AppendValues(nil)) != s.Len() {
			t.Fatalf("Len %d does not match the pooled values", s.Len())
		}
	})

	exact := []struct {
		name  string
		query string
		want  map[string]float64 // by track
	}{
		{"sum by track", `sum by (track) (rate(requests_total[10s]))`, trackRates},
		{"error ratio", `sum by (track) (rate(errors_total[10s])) / sum by (track) (rate(requests_total[10s]))`,
			map[string]float64{"baseline": 0.005, "canary": 0.04}},
		// baseline p50: rank 5 of 10 in (0.05, 0.1] holding ranks 4..8 → 0.05 + 0.05·1/4.
		{"p50", `histogram_quantile(0.5, sum by (track, le) (rate(request_duration_seconds_bucket[10s])))`,
			map[string]float64{"baseline": 0.0625, "canary": 0.1}},
		// canary p95: rank 9.5 in (0.25, 0.5] holding ranks 8..10 → 0.25 + 0.25·1.5/2.
		{"p95", `histogram_quantile(0.95, sum by (track, le) (rate(request_duration_seconds_bucket[10s])))`,
			map[string]float64{"baseline": 0.375, "canary": 0.4375}},
	}
	for _, tc := range exact {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.Query(ctx, q(tc.query))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Streams) != len(tc.want) {
				t.Fatalf("got %d streams, want %d", len(s.Streams), len(tc.want))
			}
			for _, st := range s.Streams {
				want := tc.want[st.Labels["track"]]
				if len(st.Points) == 0 {
					t.Errorf("track %s: no points", st.Labels["track"])
				}
				for _, pt := range st.Points {
					if !near(pt.V, want, 1e-9) {
						t.Errorf("track %s at %d: %v, want %v", st.Labels["track"], pt.T, pt.V, want)
					}
				}
			}
		})
	}

	t.Run("NaN and Inf pass through", func(t *testing.T) {
		s, err := p.Query(ctx, q(`sum(rate(requests_total[10s])) * 0 / 0 or label_replace(sum(rate(requests_total[10s])) / 0, "k", "inf", "", "")`))
		if err != nil {
			t.Fatal(err)
		}
		var nan, inf int
		for _, st := range s.Streams {
			for _, pt := range st.Points {
				switch {
				case math.IsNaN(pt.V):
					nan++
				case math.IsInf(pt.V, 1):
					inf++
				}
			}
		}
		if nan == 0 || inf == 0 || s.NonFinite() != s.Len() {
			t.Fatalf("NaN %d, +Inf %d, non-finite %d of %d", nan, inf, s.NonFinite(), s.Len())
		}
	})

	t.Run("empty result", func(t *testing.T) {
		s, err := p.Query(ctx, q(`requests_total{track="nobody"}`))
		if err != nil {
			t.Fatalf("empty result is not an error: %v", err)
		}
		if s.Len() != 0 || len(s.Streams) != 0 {
			t.Fatalf("got %d streams, %d points, want none", len(s.Streams), s.Len())
		}
	})

	t.Run("bad PromQL fails at once with Prometheus' message", func(t *testing.T) {
		before := requests.Load()
		_, err := p.Query(ctx, q(`sum(rate(requests_total[10s])`))
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"prometheus " + proxyURL, "bad_data", "parse error", `sum(rate(requests_total[10s])`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if n := requests.Load() - before; n != 1 {
			t.Errorf("%d requests, want 1 (no retry)", n)
		}
	})

	// 4h at 1s is 14,401 points per series: two requests, stitched on one grid. time()
	// has a value at every step, so a gap or a duplicate at the seam would show.
	t.Run("long range is split and stitched", func(t *testing.T) {
		before := requests.Load()
		start := time.UnixMilli(end.UnixMilli() - 4*3600*1000)
		s, err := p.Query(ctx, metrics.Query{
			Text:  `label_replace(vector(time()), "k", "a", "", "") or label_replace(vector(2 * time()), "k", "b", "", "")`,
			Start: start, End: start.Add(4 * time.Hour), Step: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := requests.Load() - before; n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		if len(s.Streams) != 2 {
			t.Fatalf("got %d streams, want 2", len(s.Streams))
		}
		for _, st := range s.Streams {
			if len(st.Points) != 14401 {
				t.Fatalf("stream %v: %d points, want 14401", st.Labels, len(st.Points))
			}
			if st.Points[0].T != start.UnixMilli() {
				t.Errorf("first point at %d, want %d", st.Points[0].T, start.UnixMilli())
			}
			checkGrid(t, st.Points, 1000)
			factor := 1.0
			if st.Labels["k"] == "b" {
				factor = 2
			}
			for _, pt := range st.Points {
				if want := factor * float64(pt.T) / 1000; pt.V != want {
					t.Fatalf("stream %v at %d: %v, want %v", st.Labels, pt.T, pt.V, want)
				}
			}
		}
	})
}

func values(st metrics.Stream) []float64 {
	out := make([]float64, len(st.Points))
	for i, p := range st.Points {
		out[i] = p.V
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

// checkGrid asserts strictly increasing timestamps exactly stepMS apart.
func checkGrid(t *testing.T, pts []metrics.Point, stepMS int64) {
	t.Helper()
	for i := 1; i < len(pts); i++ {
		if d := pts[i].T - pts[i-1].T; d != stepMS {
			t.Fatalf("points %d and %d are %d ms apart, want %d", i-1, i, d, stepMS)
		}
	}
}

// Fakes for what a healthy Prometheus rarely does.

const matrixBody = `{"status":"success","data":{"resultType":"matrix","result":[
 {"metric":{"track":"canary"},"values":[[1700000000,"1.5"],[1700000015,"NaN"],[1700000030,"+Inf"]]}]}}`

func fakeQuery() metrics.Query {
	return metrics.Query{Text: "up", Start: time.Unix(1700000000, 0), End: time.Unix(1700000030, 0), Step: 15 * time.Second}
}

func TestFakeServer(t *testing.T) {
	tests := []struct {
		name string
		// respond answers request number n (from 1).
		respond      func(w http.ResponseWriter, n int64)
		retries      int
		wantRequests int64
		wantErr      []string // substrings; nil means success
		wantWarnings []string
	}{
		{
			name: "5xx then 200 is retried",
			respond: func(w http.ResponseWriter, n int64) {
				if n <= 2 {
					http.Error(w, "upstream overloaded", http.StatusServiceUnavailable)
					return
				}
				fmt.Fprint(w, matrixBody)
			},
			retries: 3, wantRequests: 3,
		},
		{
			name: "5xx until retries are spent",
			respond: func(w http.ResponseWriter, n int64) {
				http.Error(w, "boom", http.StatusInternalServerError)
			},
			retries: 2, wantRequests: 3,
			wantErr: []string{"server error: 500", "boom", "after 3 attempts"},
		},
		{
			name: "404 is not retried",
			respond: func(w http.ResponseWriter, n int64) {
				http.Error(w, "no such path", http.StatusNotFound)
			},
			retries: 3, wantRequests: 1,
			wantErr: []string{"client error: 404", "no such path"},
		},
		{
			name: "401 is not retried",
			respond: func(w http.ResponseWriter, n int64) {
				http.Error(w, "bad token", http.StatusUnauthorized)
			},
			retries: 3, wantRequests: 1,
			wantErr: []string{"client error: 401", "bad token"},
		},
		{
			name: "execution error (422) is not retried",
			respond: func(w http.ResponseWriter, n int64) {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`)
			},
			retries: 3, wantRequests: 1,
			wantErr: []string{"execution: query processing would load too many samples"},
		},
		{
			name: "warnings are kept",
			respond: func(w http.ResponseWriter, n int64) {
				fmt.Fprint(w, strings.Replace(matrixBody, `"status":"success",`, `"status":"success","warnings":["partial response"],`, 1))
			},
			retries: 3, wantRequests: 1, wantWarnings: []string{"partial response"},
		},
		{
			name: "a vector is not a range answer",
			respond: func(w http.ResponseWriter, n int64) {
				fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			},
			retries: 3, wantRequests: 1, wantErr: []string{"want a matrix"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.respond(w, n.Add(1))
			}))
			defer srv.Close()
			p := newTestProvider(t, srv.URL, tc.retries, 0)
			s, err := p.Query(context.Background(), fakeQuery())
			if got := n.Load(); got != tc.wantRequests {
				t.Errorf("%d requests, want %d", got, tc.wantRequests)
			}
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, want := range append(tc.wantErr, "prometheus "+srv.URL) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(s.Warnings) != fmt.Sprint(tc.wantWarnings) {
				t.Errorf("warnings %q, want %q", s.Warnings, tc.wantWarnings)
			}
			want := []metrics.Point{{T: 1700000000000, V: 1.5}, {T: 1700000015000, V: math.NaN()}, {T: 1700000030000, V: math.Inf(1)}}
			if len(s.Streams) != 1 || s.Streams[0].Labels["track"] != "canary" || len(s.Streams[0].Points) != 3 {
				t.Fatalf("got %+v", s)
			}
			for i, pt := range s.Streams[0].Points {
				if pt.T != want[i].T || !(pt.V == want[i].V || math.IsNaN(pt.V) && math.IsNaN(want[i].V)) {
					t.Errorf("point %d = %+v, want %+v", i, pt, want[i])
				}
			}
		})
	}
}

func TestServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	p := newTestProvider(t, "http://"+addr, 3, time.Second)
	// The guard deadline is far above 4 refused connects and three ≤20ms backoffs; hitting
	// it would mean the retries are unbounded.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = p.Query(ctx, fakeQuery())
	if err == nil {
		t.Fatal("no error")
	}
	if ctx.Err() != nil {
		t.Fatalf("retries ran until the guard deadline: %v", err)
	}
	for _, want := range []string{"prometheus http://" + addr, "connection refused", "after 4 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestPerRequestTimeoutIsRetried(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			// Hang until the client gives up. The form is read first: the server notices a
			// closed connection only once the request body is consumed.
			_ = r.ParseForm()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		fmt.Fprint(w, matrixBody)
	}))
	defer srv.Close()
	p := newTestProvider(t, srv.URL, 1, 100*time.Millisecond)
	s, err := p.Query(context.Background(), fakeQuery())
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 || s.Len() != 3 {
		t.Fatalf("%d requests, %d points; want 2 and 3", n.Load(), s.Len())
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	p := newTestProvider(t, srv.URL, 10, 0)
	p.backoffBase, p.backoffMax = time.Hour, time.Hour // only cancellation can end the wait
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel exactly when the provider is about to wait out its first backoff.
	p.logger = zaptest.NewLogger(t, zaptest.WrapOptions(zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "query failed, retrying" {
			cancel()
		}
		return nil
	})))
	_, err := p.Query(ctx, fakeQuery())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "server error: 502") {
		t.Errorf("error %q does not say what the server answered", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

func TestSplit(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tests := []struct {
		name      string
		end       time.Duration
		step      time.Duration
		maxPoints int
		want      int // pieces
	}{
		{"single point", 0, time.Second, 11000, 1},
		{"fits exactly", 10999 * time.Second, time.Second, 11000, 1},
		{"one point over", 11000 * time.Second, time.Second, 11000, 2},
		{"4h at 1s", 4 * time.Hour, time.Second, 11000, 2},
		{"end off the grid", 95 * time.Second, 10 * time.Second, 3, 4},
		{"end just past a piece", 30 * time.Second, 10 * time.Second, 3, 2},
		{"tiny pieces", 9 * time.Millisecond, time.Millisecond, 1, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			end := t0.Add(tc.end)
			rs := split(t0, end, tc.step, tc.maxPoints)
			if len(rs) != tc.want {
				t.Fatalf("%d pieces, want %d: %v", len(rs), tc.want, rs)
			}
			// Enumerate each piece's grid points; together they must be the whole grid once.
			var got []time.Time
			for _, r := range rs {
				if r.Step != tc.step || r.End.Before(r.Start) || r.End.After(end) {
					t.Fatalf("bad piece %+v", r)
				}
				n := 0
				for ts := r.Start; !ts.After(r.End); ts = ts.Add(tc.step) {
					got = append(got, ts)
					n++
				}
				if n > tc.maxPoints {
					t.Fatalf("piece %+v has %d points > %d", r, n, tc.maxPoints)
				}
			}
			var want []time.Time
			for ts := t0; !ts.After(end); ts = ts.Add(tc.step) {
				want = append(want, ts)
			}
			if !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Fatalf("pieces cover %d points, want the %d of the grid", len(got), len(want))
			}
		})
	}
}

func TestQueryRejectsBadRange(t *testing.T) {
	p := newTestProvider(t, "http://127.0.0.1:1", 0, 0)
	for _, q := range []metrics.Query{
		{Text: "", Start: time.Unix(0, 0), End: time.Unix(1, 0), Step: time.Second},
		{Text: "up", Start: time.Unix(1, 0), End: time.Unix(0, 0), Step: time.Second},
		{Text: "up", Start: time.Unix(0, 0), End: time.Unix(1, 0), Step: time.Microsecond},
	} {
		if _, err := p.Query(context.Background(), q); err == nil || !strings.Contains(err.Error(), "prometheus http://127.0.0.1:1") {
			t.Errorf("query %+v: err = %v", q, err)
		}
	}
}
