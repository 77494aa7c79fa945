package synthetic

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gonum.org/v1/gonum/stat"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/metrics"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)

const step = 15 * time.Second

func newProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// values queries n points from t0 and returns every stream's values.
func values(t testing.TB, p *Provider, text string, n int) []float64 {
	t.Helper()
	s := query(t, p, text, t0, n)
	return s.AppendValues(nil)
}

func query(t testing.TB, p *Provider, text string, start time.Time, n int) metrics.Series {
	t.Helper()
	s, err := p.Query(context.Background(), metrics.Query{Text: text, Start: start, End: start.Add(time.Duration(n-1) * step), Step: step})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func finite(v []float64) []float64 {
	var out []float64
	for _, f := range v {
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			out = append(out, f)
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(finite(v))
	slices.Sort(s)
	return stat.Quantile(0.5, stat.Empirical, s, nil)
}

func reg(f func(r *Regression)) Regression {
	r := DefaultRegression()
	f(&r)
	return r
}

func TestLevels(t *testing.T) {
	p := newProvider(t, DefaultConfig())
	tests := []struct {
		signal string
		want   float64
		tol    float64 // relative
	}{
		{"request_rate", 100, 0.01},
		{"error_rate", 0.005, 0.10},
		{"latency_p50", 0.050, 0.01},
		{"latency_p90", 0.050 * math.Exp(0.6*1.2815515655446004), 0.01},
		{"latency_p99", 0.050 * math.Exp(0.6*2.3263478740408408), 0.01},
		{"saturation", 0.45, 0.01},
		{"errors_per_second", 0.5, 0.10}, // 0.5% of 100 req/s
	}
	for _, tc := range tests {
		t.Run(tc.signal, func(t *testing.T) {
			v := values(t, p, "signal="+tc.signal+" cohort=baseline app=web", 10000)
			if len(v) != 10000 {
				t.Fatalf("got %d points, want 10000", len(v))
			}
			if got := median(v); math.Abs(got/tc.want-1) > tc.tol {
				t.Errorf("median %v, want %v ± %.0f%%", got, tc.want, 100*tc.tol)
			}
		})
	}
}

func TestSignalTables(t *testing.T) {
	for name, def := range defaultSignals() {
		if !knownSignal(name) {
			t.Errorf("knownSignal(%q) = false", name)
		}
		if want := name; def.view != "" && modelSignal(name) != def.view || def.view == "" && modelSignal(name) != want {
			t.Errorf("modelSignal(%q) = %q, view %q", name, modelSignal(name), def.view)
		}
	}
	if knownSignal("latency_p95") || len(SignalNames()) != len(defaultSignals()) {
		t.Error("knownSignal accepts a signal defaultSignals does not define")
	}
}

func TestConfiguredLevelAndNoise(t *testing.T) {
	level, noise := 0.2, 0.0
	p := newProvider(t, Config{Signals: map[string]SignalConfig{"saturation": {Level: &level, Noise: &noise}}})
	for _, v := range values(t, p, "signal=saturation cohort=a", 100) {
		if v != 0.2 {
			t.Fatalf("saturation with noise 0 = %v, want exactly the level 0.2", v)
		}
	}
}

func TestDeterminismAndPrefix(t *testing.T) {
	cfg := Config{Seed: 3, Regressions: map[string]map[string]Regression{"canary": {
		"latency_p99":  reg(func(r *Regression) { r.Ratio, r.Autocorrelation, r.After = 1.5, 0.9, model.Duration(5*time.Minute) }),
		"error_rate":   reg(func(r *Regression) { r.Missing, r.Burst.Rate = 0.1, 0.05 }),
		"request_rate": reg(func(r *Regression) { r.Autocorrelation = 0.7 }),
	}}}
	p := newProvider(t, cfg)
	for _, signal := range SignalNames() {
		t.Run(signal, func(t *testing.T) {
			text := "signal=" + signal + " cohort=canary app=web streams=2"
			short := query(t, p, text, t0, 40)
			long := query(t, p, text, t0, 120)
			again := query(t, newProvider(t, cfg), text, t0, 120)
			for s := range long.Streams {
				if !samePoints(long.Streams[s].Points, again.Streams[s].Points) {
					t.Fatalf("stream %d: two providers from one config differ", s)
				}
				if !samePoints(short.Streams[s].Points, long.Streams[s].Points[:40]) {
					t.Fatalf("stream %d: a longer window changed the first 40 points", s)
				}
			}
			if samePoints(long.Streams[0].Points, long.Streams[1].Points) {
				t.Error("two streams of a cohort are identical")
			}
			for _, other := range []string{
				"signal=" + signal + " cohort=canary app=api streams=2",
				"signal=" + signal + " cohort=baseline app=web streams=2",
				"signal=" + signal + " cohort=canary app=web streams=2 seed=4",
			} {
				if o := query(t, p, other, t0, 120); samePoints(o.Streams[0].Points, long.Streams[0].Points) {
					t.Errorf("%q draws the same points as %q", other, text)
				}
			}
		})
	}
}

func samePoints(a, b []metrics.Point) bool {
	return slices.EqualFunc(a, b, func(x, y metrics.Point) bool {
		return x.T == y.T && (x.V == y.V || math.IsNaN(x.V) && math.IsNaN(y.V))
	})
}

func TestTimestampsAndLabels(t *testing.T) {
	p := newProvider(t, DefaultConfig())
	s, err := p.Query(context.Background(), metrics.Query{Text: "signal=latency_p50 cohort=canary app=web streams=3",
		Start: t0, End: t0.Add(time.Minute + 10*time.Second), Step: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Streams) != 3 {
		t.Fatalf("got %d streams, want 3", len(s.Streams))
	}
	for i, st := range s.Streams {
		want := map[string]string{"signal": "latency_p50", "cohort": "canary", "app": "web", "stream": string(rune('0' + i))}
		if !mapsEqual(st.Labels, want) {
			t.Errorf("stream %d labels %v, want %v", i, st.Labels, want)
		}
		var ts []int64
		for _, pt := range st.Points {
			ts = append(ts, pt.T)
		}
		ms := t0.UnixMilli()
		if wantTs := []int64{ms, ms + 20000, ms + 40000, ms + 60000}; !slices.Equal(ts, wantTs) {
			t.Errorf("stream %d timestamps %v, want %v", i, ts, wantTs)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRegressionsMeasuredBack(t *testing.T) {
	const n = 10000
	tests := []struct {
		name   string
		signal string
		reg    Regression
		// measure returns the canary's figure against the baseline's.
		measure func(base, can []float64) float64
		want    float64
		tol     float64 // absolute
	}{
		{name: "p99 ratio 1.6", signal: "latency_p99", reg: reg(func(r *Regression) { r.Ratio = 1.6 }),
			measure: medianRatio, want: 1.6, tol: 0.03},
		{name: "p50 ratio 1.1", signal: "latency_p50", reg: reg(func(r *Regression) { r.Ratio = 1.1 }),
			measure: medianRatio, want: 1.1, tol: 0.01},
		{name: "error rate ×10", signal: "error_rate", reg: reg(func(r *Regression) { r.Ratio = 10 }),
			measure: meanRatio, want: 10, tol: 0.5},
		{name: "error rate ×2", signal: "error_rate", reg: reg(func(r *Regression) { r.Ratio = 2 }),
			measure: meanRatio, want: 2, tol: 0.1},
		{name: "saturation shift +0.1", signal: "saturation", reg: reg(func(r *Regression) { r.Shift = 0.1 }),
			measure: func(b, c []float64) float64 { return median(c) - median(b) }, want: 0.1, tol: 0.003},
		{name: "request rate ×0.5", signal: "request_rate", reg: reg(func(r *Regression) { r.Ratio = 0.5 }),
			measure: medianRatio, want: 0.5, tol: 0.01},
		{name: "saturation noise ×3", signal: "saturation", reg: reg(func(r *Regression) { r.Noise = 3 }),
			measure: func(b, c []float64) float64 { return stat.StdDev(c, nil) / stat.StdDev(b, nil) }, want: 3, tol: 0.1},
		{name: "missing 20%", signal: "latency_p90", reg: reg(func(r *Regression) { r.Missing = 0.2 }),
			measure: func(_, c []float64) float64 { return 1 - float64(len(finite(c)))/float64(len(c)) }, want: 0.2, tol: 0.012},
		{name: "bursts: share of points ×3", signal: "latency_p50", reg: reg(func(r *Regression) { r.Burst.Rate = 0.02 }),
			// 1-(1-rate)^length of the points are in a burst.
			measure: burstShare(3), want: 1 - math.Pow(0.98, 3), tol: 0.01},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain := newProvider(t, DefaultConfig())
			p := newProvider(t, Config{Regressions: map[string]map[string]Regression{"canary": {tc.signal: tc.reg}}})
			base := values(t, p, "signal="+tc.signal+" cohort=baseline", n)
			can := values(t, p, "signal="+tc.signal+" cohort=canary", n)
			var got float64
			if strings.HasPrefix(tc.name, "bursts") {
				// Same cohort without the regression: same noise, so the factor shows exactly.
				got = tc.measure(values(t, plain, "signal="+tc.signal+" cohort=canary", n), can)
			} else {
				got = tc.measure(base, can)
			}
			if math.Abs(got-tc.want) > tc.tol {
				t.Errorf("measured %v, want %v ± %v", got, tc.want, tc.tol)
			}
		})
	}
}

func medianRatio(b, c []float64) float64 { return median(c) / median(b) }

func meanRatio(b, c []float64) float64 { return stat.Mean(finite(c), nil) / stat.Mean(finite(b), nil) }

func burstShare(factor float64) func(plain, c []float64) float64 {
	return func(plain, c []float64) float64 {
		k := 0
		for i := range c {
			if math.Abs(c[i]/plain[i]-factor) < 1e-9 {
				k++
			}
		}
		return float64(k) / float64(len(c))
	}
}

// TestStepAfter: a regression with After leaves every point before the query's start +
// After as it was (same cohort, same noise) and scales every point from then on.
func TestStepAfter(t *testing.T) {
	after := 10 * time.Minute
	plain := newProvider(t, DefaultConfig())
	p := newProvider(t, Config{Regressions: map[string]map[string]Regression{"canary": {
		"latency_p99": reg(func(r *Regression) { r.Ratio, r.After = 1.25, model.Duration(after) }),
	}}})
	for _, start := range []time.Time{t0, t0.Add(37 * time.Minute)} {
		a := query(t, plain, "signal=latency_p99 cohort=canary", start, 100).Streams[0].Points
		b := query(t, p, "signal=latency_p99 cohort=canary", start, 100).Streams[0].Points
		onset := start.Add(after).UnixMilli()
		for i := range a {
			want := a[i].V
			if a[i].T >= onset {
				want *= 1.25
			}
			if math.Abs(b[i].V-want) > 1e-12*want {
				t.Fatalf("start %s point %d (t-onset %dms): %v, want %v", start, i, a[i].T-onset, b[i].V, want)
			}
		}
	}
}

// TestAutocorrelation: the lag-1 correlation of the series estimates the configured φ.
func TestAutocorrelation(t *testing.T) {
	for _, phi := range []float64{0, 0.5, 0.8, 0.95} {
		p := newProvider(t, Config{Signals: map[string]SignalConfig{"saturation": {Autocorrelation: &phi}}})
		v := values(t, p, "signal=saturation cohort=a", 20000)
		got := stat.Correlation(v[:len(v)-1], v[1:], nil)
		if math.Abs(got-phi) > 0.02 {
			t.Errorf("φ=%v: lag-1 correlation %.3f", phi, got)
		}
		// The AR(1) process keeps the configured noise: sd 0.03 whatever φ.
		if sd := stat.StdDev(v, nil); math.Abs(sd/0.03-1) > 0.1 {
			t.Errorf("φ=%v: sd %.4f, want 0.03 ± 10%%", phi, sd)
		}
	}
	// A regression's autocorrelation applies to its cohort only.
	p := newProvider(t, Config{Regressions: map[string]map[string]Regression{"canary": {
		"latency_p50": reg(func(r *Regression) { r.Autocorrelation = 0.9 }),
	}}})
	for cohort, want := range map[string]float64{"canary": 0.9, "baseline": 0} {
		v := values(t, p, "signal=latency_p50 cohort="+cohort, 20000)
		logv := make([]float64, len(v))
		for i := range v {
			logv[i] = math.Log(v[i])
		}
		got := stat.Correlation(logv[:len(v)-1], logv[1:], nil)
		// Latency adds independent sampling noise to the AR process: sd 0.05 of process
		// against 0.75/sqrt(1500) ≈ 0.019 of sampling dilutes φ by 0.05²/(0.05²+0.019²).
		want *= 0.05 * 0.05 / (0.05*0.05 + math.Pow(sampleSpread(0.5), 2)/1500)
		if math.Abs(got-want) > 0.03 {
			t.Errorf("%s: lag-1 correlation of log latency %.3f, want %.3f", cohort, got, want)
		}
	}
}

// TestLowTraffic: the error rate comes from counts, so a service with few requests has
// steps with no request (NaN) and a much noisier rate.
func TestLowTraffic(t *testing.T) {
	low := newProvider(t, Config{Regressions: map[string]map[string]Regression{"canary": {
		"request_rate": reg(func(r *Regression) { r.Ratio = 0.02 }), // 2 req/s: 30 requests a step
	}}})
	base := values(t, low, "signal=error_rate cohort=baseline", 5000)
	can := values(t, low, "signal=error_rate cohort=canary", 5000)
	if m := stat.Mean(finite(can), nil); math.Abs(m/0.005-1) > 0.15 {
		t.Errorf("low-traffic mean error rate %v, want 0.005 ± 15%%", m)
	}
	zero := func(v []float64) float64 {
		k := 0
		for _, f := range v {
			if f == 0 {
				k++
			}
		}
		return float64(k) / float64(len(v))
	}
	// At 30 requests and 0.5%, P(no error) ≈ e^-0.15 ≈ 0.86; at 1,500 it is ≈ 5e-4.
	if z := zero(can); z < 0.8 || z > 0.9 {
		t.Errorf("low traffic: %.3f of the steps have no error, want ≈0.86", z)
	}
	if z := zero(base); z > 0.01 {
		t.Errorf("normal traffic: %.3f of the steps have no error, want ≈0", z)
	}
	if cb, cc := stat.StdDev(finite(base), nil)/stat.Mean(finite(base), nil), stat.StdDev(finite(can), nil)/stat.Mean(finite(can), nil); cc < 3*cb {
		t.Errorf("coefficient of variation: low traffic %.2f, normal %.2f; want low ≥ 3× normal", cc, cb)
	}

	idle := newProvider(t, Config{Regressions: map[string]map[string]Regression{"canary": {
		"request_rate": reg(func(r *Regression) { r.Ratio = 0.001 }), // 0.1 req/s
	}}})
	v := values(t, idle, "signal=latency_p99 cohort=canary", 5000)
	// P(no request in 15 s at 0.1/s) = e^-1.5 ≈ 0.22.
	if nan := 1 - float64(len(finite(v)))/float64(len(v)); math.Abs(nan-0.22) > 0.03 {
		t.Errorf("idle service: %.3f of the p99 points are NaN, want ≈0.22", nan)
	}
}

// TestErrorsPerSecond: errors_per_second is error_rate's errors over the step, so it is
// error_rate × request_rate point by point, and error_rate's regressions move it.
func TestErrorsPerSecond(t *testing.T) {
	p := newProvider(t, Config{Regressions: map[string]map[string]Regression{"canary": {
		"error_rate": reg(func(r *Regression) { r.Ratio = 4 }),
	}}})
	for _, cohort := range []string{"baseline", "canary"} {
		eps := values(t, p, "signal=errors_per_second cohort="+cohort, 2000)
		er := values(t, p, "signal=error_rate cohort="+cohort, 2000)
		rr := values(t, p, "signal=request_rate cohort="+cohort, 2000)
		for i := range eps {
			if math.Abs(eps[i]-er[i]*rr[i]) > 1e-9 {
				t.Fatalf("%s point %d: errors_per_second %v, error_rate × request_rate %v", cohort, i, eps[i], er[i]*rr[i])
			}
		}
	}
	b := values(t, p, "signal=errors_per_second cohort=baseline", 5000)
	c := values(t, p, "signal=errors_per_second cohort=canary", 5000)
	if r := meanRatio(b, c); math.Abs(r-4) > 0.2 {
		t.Errorf("canary/baseline errors per second %v, want 4 ± 0.2", r)
	}
}

func TestQueryErrors(t *testing.T) {
	p := newProvider(t, DefaultConfig())
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		q       metrics.Query
		wantErr string
	}{
		{"bad word", context.Background(), metrics.Query{Text: "signal=latency_p99 cohort=a foo=1", Start: t0, End: t0.Add(time.Hour), Step: step},
			`synthetic: query "signal=latency_p99 cohort=a foo=1": word "foo=1": unknown key "foo"`},
		{"end before start", context.Background(), metrics.Query{Text: "signal=latency_p99 cohort=a", Start: t0, End: t0.Add(-time.Second), Step: step},
			"synthetic: query: end is before start"},
		{"step below 1ms", context.Background(), metrics.Query{Text: "signal=latency_p99 cohort=a", Start: t0, End: t0.Add(time.Second), Step: time.Microsecond},
			"step 1µs is below 1ms"},
		{"too many points", context.Background(), metrics.Query{Text: "signal=latency_p99 cohort=a streams=100", Start: t0, End: t0.Add(24 * time.Hour), Step: time.Second},
			"more than 5000000"},
		{"cancelled", cancelled, metrics.Query{Text: "signal=latency_p99 cohort=a", Start: t0, End: t0.Add(time.Hour), Step: step},
			"synthetic: context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Query(tc.ctx, tc.q)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := p.Query(cancelled, metrics.Query{Text: "signal=latency_p99 cohort=a", Start: t0, End: t0, Step: step}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled query: %v does not wrap context.Canceled", err)
	}
}

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", yaml: `{seed: 7, regressions: {canary: {latency_p99: {shift: 0.01}}}}`, check: func(t *testing.T, c Config) {
			r := c.Regressions["canary"]["latency_p99"]
			if c.Seed != 7 || r.Ratio != 1 || r.Noise != 1 || r.Shift != 0.01 || r.Burst.Factor != 3 || r.Burst.Length != 3 {
				t.Errorf("decoded %+v", c)
			}
		}},
		{name: "after", yaml: `{regressions: {canary: {error_rate: {ratio: 10, after: 5m}}}}`, check: func(t *testing.T, c Config) {
			if r := c.Regressions["canary"]["error_rate"]; r.Ratio != 10 || time.Duration(r.After) != 5*time.Minute {
				t.Errorf("decoded %+v", r)
			}
		}},
		{name: "unknown signal in regressions", yaml: `{regressions: {canary: {latency_p95: {ratio: 2}}}}`,
			wantErr: "regressions.canary.latency_p95: unknown signal"},
		{name: "regression on a view", yaml: `{regressions: {canary: {errors_per_second: {ratio: 2}}}}`,
			wantErr: "regressions.canary.errors_per_second: a view of error_rate, configure error_rate instead"},
		{name: "unknown signal in signals", yaml: `{signals: {cpu: {level: 1}}}`, wantErr: "signals.cpu: unknown signal"},
		{name: "ratio", yaml: `{regressions: {canary: {error_rate: {ratio: 0}}}}`, wantErr: "regressions.canary.error_rate.ratio: must be > 0"},
		{name: "missing", yaml: `{regressions: {canary: {error_rate: {missing: 1}}}}`, wantErr: "regressions.canary.error_rate.missing: must be in [0, 1)"},
		{name: "autocorrelation", yaml: `{regressions: {canary: {error_rate: {autocorrelation: 0.99}}}}`, wantErr: "autocorrelation: must be in [0, 0.95]"},
		{name: "signal autocorrelation", yaml: `{signals: {saturation: {autocorrelation: -0.1}}}`, wantErr: "signals.saturation.autocorrelation: must be in [0, 0.95]"},
		{name: "error rate level above 1", yaml: `{signals: {error_rate: {level: 2}}}`, wantErr: "signals.error_rate.level: must be <= 1"},
		{name: "burst length", yaml: `{regressions: {c: {saturation: {burst: {rate: 0.1, length: 0}}}}}`, wantErr: "burst.length: must be in [1, 1000]"},
		{name: "negative after", yaml: `{regressions: {c: {saturation: {after: -1m}}}}`, wantErr: `not a valid duration string: "-1m"`},
		{name: "unknown key", yaml: `{seed: 1, sead: 2}`, wantErr: "sead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate().Err() // what config does after decoding
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			if _, err := New(c, nil); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
	if _, err := New(Config{Regressions: map[string]map[string]Regression{"canary": {"saturation": {}}}}, nil); err == nil ||
		!strings.Contains(err.Error(), "ratio: must be > 0") {
		t.Errorf("New with a zero Regression: %v, want a ratio error (use DefaultRegression)", err)
	}
}

// BenchmarkQuery generates one day at 1-minute steps (1,440 points), the daemon's
// longest usual window.
func BenchmarkQuery(b *testing.B) {
	p := newProvider(b, Config{Regressions: map[string]map[string]Regression{"canary": {
		"latency_p99": reg(func(r *Regression) { r.Autocorrelation = 0.8; r.Ratio = 1.2 }),
	}}})
	for _, signal := range SignalNames() {
		b.Run(signal, func(b *testing.B) {
			q := metrics.Query{Text: "signal=" + signal + " cohort=canary app=web", Start: t0, End: t0.Add(1439 * time.Minute), Step: time.Minute}
			b.ReportAllocs()
			for b.Loop() {
				s, err := p.Query(context.Background(), q)
				if err != nil || s.Len() != 1440 {
					b.Fatal(s.Len(), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1440), "ns/point")
		})
	}
}
