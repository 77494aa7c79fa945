package ui

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
)

func TestFormatValue(t *testing.T) {
	cases := []struct {
		v    float64
		unit string
		want string
	}{
		{0.1234, "seconds", "123 ms"},
		{1.5, "seconds", "1.5 s"},
		{0.00042, "seconds", "420 µs"},
		{0, "seconds", "0 s"},
		{0.0205, "ratio", "2.05%"},
		{12.5, "percent", "12.5%"},
		{2048, "bytes", "2 KiB"},
		{3 << 30, "bytes", "3 GiB"},
		{512, "bytes", "512 B"},
		{1234.4, "", "1234"},
		{42, "req/s", "42 req/s"},
		{math.NaN(), "seconds", "—"},
	}
	for _, tc := range cases {
		if got := formatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
	for v, want := range map[float64]string{0.0309: "+30.9 ms", -0.002: "-2 ms", 0: "+0 s"} {
		if got := formatDelta(v, "seconds"); got != want {
			t.Errorf("formatDelta(%v) = %q, want %q", v, got, want)
		}
	}
	// Shifts of ratios are percentage points, apart from the relative "+385%".
	for _, tc := range []struct {
		v          float64
		unit, want string
	}{{0.026, "ratio", "+2.6 pp"}, {-0.005, "ratio", "-0.5 pp"}, {1.5, "percent", "+1.5 pp"}} {
		if got := formatDelta(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatDelta(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
	for p, want := range map[float64]string{0.43: "0.43", 0.0012: "0.0012", 8e-41: "8e-41"} {
		if got := formatP(p); got != want {
			t.Errorf("formatP(%v) = %q, want %q", p, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond:          "0s",
		45 * time.Second:                "45s",
		10*time.Minute + 20*time.Second: "10m20s",
		30 * time.Minute:                "30m",
		90 * time.Minute:                "1h30m",
		50 * time.Hour:                  "2d2h",
		-2 * time.Minute:                "-2m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNiceAxes(t *testing.T) {
	cases := []struct {
		lo, hi         float64
		n              int
		unit           string
		wantLo, wantHi float64
		labels         string
	}{
		{0.104, 0.171, 5, "seconds", 0.1, 0.18, "[100 ms 120 ms 140 ms 160 ms 180 ms]"},
		{0.0011, 0.0034, 5, "ratio", 0.001, 0.0035, "[0.10% 0.15% 0.20% 0.25% 0.30% 0.35%]"},
		{0, 100, 4, "", 0, 100, "[0 50 100]"},
		// A flat series is widened around its value.
		{5, 5, 5, "", 4.4, 5.6, "[4.4 4.6 4.8 5.0 5.2 5.4 5.6]"},
		{-3, 2, 5, "", -3, 2, "[-3 -2 -1 0 1 2]"},
	}
	for _, tc := range cases {
		lo, hi, step := niceDomain(tc.lo, tc.hi, tc.n)
		if math.Abs(lo-tc.wantLo) > 1e-12 || math.Abs(hi-tc.wantHi) > 1e-12 {
			t.Errorf("niceDomain(%v, %v) = %v, %v (step %v), want %v, %v", tc.lo, tc.hi, lo, hi, step, tc.wantLo, tc.wantHi)
		}
		var labels []string
		for _, tk := range valueTicks(lo, hi, step, tc.unit, scale{lo, hi, 200, 0}) {
			labels = append(labels, tk.Label)
		}
		if got := fmt.Sprint(labels); got != tc.labels {
			t.Errorf("ticks of [%v, %v] in %q: %s, want %s", tc.lo, tc.hi, tc.unit, got, tc.labels)
		}
	}
}

func TestTimeTicks(t *testing.T) {
	t0 := float64(fixtureStart.UnixMilli())
	cases := []struct {
		span time.Duration
		want string
	}{
		{30 * time.Minute, "[12:00 12:05 12:10 12:15 12:20 12:25 12:30]"},
		{90 * time.Second, "[12:00:00 12:00:15 12:00:30 12:00:45 12:01:00 12:01:15 12:01:30]"},
		{24 * time.Hour, "[12:00 18:00 00:00 06:00 12:00]"},
	}
	for _, tc := range cases {
		t1 := t0 + float64(tc.span.Milliseconds())
		var labels []string
		for _, tk := range timeTicks(t0, t1, 7, scale{t0, t1, 0, 100}) {
			labels = append(labels, tk.Label)
		}
		if got := fmt.Sprint(labels); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.span, got, tc.want)
		}
	}
}

func series1(n int, step float64, f func(i int) float64) []analysis.TimeValue {
	out := make([]analysis.TimeValue, n)
	for i := range out {
		out[i] = analysis.TimeValue{float64(i) * step, f(i)}
	}
	return out
}

func TestLinePath(t *testing.T) {
	sy := scale{0, 100, 100, 0}
	t.Run("every point, gaps break the line", func(t *testing.T) {
		pts := series1(6, 1000, func(i int) float64 { return float64(i * 10) })
		pts = append(pts[:3], pts[4:]...) // the 4th point is missing: a gap of 2 steps
		sx := scale{0, 5000, 0, 500}
		d, n := linePath(pts, sx, sy, 1500)
		if n != 5 || d != "M0,100 L100,90 L200,80 M400,60 L500,50" {
			t.Errorf("%d points: %q", n, d)
		}
	})
	t.Run("more points than pixels keeps each column's extremes", func(t *testing.T) {
		pts := series1(10000, 1, func(i int) float64 { return 50 })
		pts[7777][1] = 99 // one spike among 10,000 points on 100 px
		sx := scale{0, 10000, 0, 100}
		d, n := linePath(pts, sx, sy, 0)
		if n > 4*101 || n < 100 {
			t.Errorf("%d points drawn for 100 px", n)
		}
		if !strings.Contains(d, ",1") { // y of 99 on [0, 100] → 1 px
			t.Errorf("the spike is lost: %s", d[:80])
		}
	})
	t.Run("a lone point stays visible", func(t *testing.T) {
		d, n := linePath(series1(1, 1, func(int) float64 { return 5 }), scale{0, 1, 0, 100}, sy, 0)
		if n != 1 || !strings.HasPrefix(d, "M") || !strings.HasSuffix(d, "h0.1") {
			t.Errorf("%d: %q", n, d)
		}
	})
	t.Run("unsorted input is drawn in time order", func(t *testing.T) {
		pts := []analysis.TimeValue{{2, 20}, {0, 0}, {1, 10}}
		d, _ := linePath(pts, scale{0, 2, 0, 2}, sy, 0)
		if d != "M0,100 L1,90 L2,80" {
			t.Errorf("%q", d)
		}
	})
}

func TestECDFPath(t *testing.T) {
	sx, sy := scale{0, 4, 0, 400}, scale{0, 1, 100, 0}
	if got, want := ecdfPath([]float64{1, 2, 2, 3}, 0, sx, sy), "M0,100 H100 V75 H200 V50 H200 V25 H300 V0 H400"; got != want {
		t.Errorf("ecdf: %q, want %q", got, want)
	}
	if got, want := ecdfPath([]float64{1, 2}, 1, sx, sy), "M0,100 H200 V50 H300 V0 H400"; got != want {
		t.Errorf("shifted ecdf: %q, want %q", got, want)
	}
	if got := ecdfPath(nil, 0, sx, sy); got != "" {
		t.Errorf("empty: %q", got)
	}
	// Many values: ranks are sampled, the staircase still ends at 1 on the largest value.
	v := make([]float64, 100000)
	for i := range v {
		v[i] = float64(i) / 25000
	}
	d := ecdfPath(v, 0, sx, sy)
	if steps := strings.Count(d, "V"); steps > ecdfSteps+1 || steps < ecdfSteps-1 {
		t.Errorf("%d steps for 100,000 values", steps)
	}
	if !strings.HasSuffix(d, "H400 V0 H400") {
		t.Errorf("does not end at (max, 1): %s", d[len(d)-40:])
	}
}

func TestRefreshDelay(t *testing.T) {
	c := &analysis.Canary{Start: fixtureStart, Interval: time.Minute, Lifetime: 30 * time.Minute, Intervals: 30}
	next := c.IntervalEnd(1)
	for _, tc := range []struct {
		now  time.Time
		want int
	}{
		{fixtureStart, 60},                 // a whole interval ahead: capped at one interval
		{next.Add(-30 * time.Second), 32},  // 2 s after the judgement
		{next.Add(-time.Second), 5},        // never faster than 5 s
		{next.Add(10 * time.Minute), 5},    // a lagging scheduler does not cause a reload loop
		{fixtureStart.Add(-time.Hour), 60}, // a canary that starts later
	} {
		if got := refreshDelay(c, next, tc.now); got != tc.want {
			t.Errorf("at %s: %d s, want %d", tc.now.Format("15:04:05"), got, tc.want)
		}
	}
	long := &analysis.Canary{Start: fixtureStart, Interval: time.Hour}
	if got := refreshDelay(long, fixtureStart.Add(time.Hour), fixtureStart); got != 300 {
		t.Errorf("hourly canary refreshes every %d s, want 300", got)
	}
}
