package judge

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func countStepsOf(rows ...[4]float64) []CountStep {
	out := make([]CountStep, len(rows))
	for i, r := range rows {
		out[i] = CountStep{Time: simStart.Add(time.Duration(i) * simStep),
			Baseline: CountCohort{Errors: r[0], Requests: r[1]},
			Canary:   CountCohort{Errors: r[2], Requests: r[3]}}
	}
	return out
}

func repeatRow(n int, r [4]float64) [][4]float64 {
	out := make([][4]float64, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// alternate repeats a then b, n times each.
func alternate(n int, a, b [4]float64) [][4]float64 {
	out := make([][4]float64, 0, 2*n)
	for range n {
		out = append(out, a, b)
	}
	return out
}

func TestCountStateAnswers(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name    string
		spec    MetricSpec
		rows    [][4]float64
		class   Classification
		addErr  string // a substring of Add's error, "" for none
		reason  []string
		check   func(t *testing.T, s *CountState, r MetricResult)
		noSpecs bool
	}{
		{
			name: "zero errors pass with no evidence", rows: repeatRow(20, [4]float64{0, 900, 0, 100}),
			class: ClassPass, reason: []string{"no errors yet", "0 of 2000 requests"},
			check: func(t *testing.T, s *CountState, r MetricResult) {
				if s.Informative != 0 || r.Sequential.EValue > 1 || r.Sequential.Low != 0 || !r.Sequential.HighUnbounded {
					t.Errorf("informative %d, e-value %v, CS [%v, %v unbounded=%v]: want 0, ≤ 1, [0, ∞)",
						s.Informative, r.Sequential.EValue, r.Sequential.Low, r.Sequential.High, r.Sequential.HighUnbounded)
				}
			},
		},
		{
			name: "no canary traffic is no data", rows: repeatRow(10, [4]float64{3, 900, 0, 0}),
			class: ClassNoData, reason: []string{"no data", "10 missing"},
		},
		{
			name: "missing steps are skipped", rows: append(repeatRow(5, [4]float64{nan, nan, nan, nan}), repeatRow(10, [4]float64{9, 900, 1, 100})...),
			class: ClassPass,
			check: func(t *testing.T, s *CountState, r MetricResult) {
				if s.Missing != 5 || s.Steps != 15 || s.Canary.Requests != 1000 {
					t.Errorf("missing %d steps %d canary requests %v, want 5, 15, 1000", s.Missing, s.Steps, s.Canary.Requests)
				}
			},
		},
		{
			name: "a negative increment is an error naming it", rows: [][4]float64{{1, 100, 0, 10}, {1, 100, -3, 10}, {1, 100, 0, 10}},
			class: ClassError, addErr: "canary errors is -3: a negative increment",
			reason: []string{"2026-12-01T10:00:15Z", "canary errors is -3", "counter reset", "1 invalid steps skipped"},
		},
		{
			name: "more errors than requests is an error", rows: [][4]float64{{101, 100, 0, 10}},
			class: ClassError, addErr: "baseline errors 101 exceed its requests 100",
		},
		{
			name: "an infinite count is an error", rows: [][4]float64{{1, math.Inf(1), 0, 10}},
			class: ClassError, addErr: "baseline requests is +Inf: not a count",
		},
		{
			name: "fractional counts are rounded", rows: repeatRow(4, [4]float64{2.9999, 899.6, 0.4, 100.2}),
			class: ClassPass,
			check: func(t *testing.T, s *CountState, r MetricResult) {
				if s.Rounded != 4 || s.Baseline.Errors != 12 || s.Baseline.Requests != 3600 || s.Canary.Errors != 0 || s.Canary.Requests != 400 {
					t.Errorf("rounded %d, sums %+v %+v; want 4 and 12/3600, 0/400", s.Rounded, s.Baseline, s.Canary)
				}
			},
		},
		{
			name: "errors x10 fail high", rows: repeatRow(20, [4]float64{9, 900, 10, 100}),
			class: ClassHigh, reason: []string{"higher than tolerated", "ratio ×10"},
			check: func(t *testing.T, s *CountState, r MetricResult) {
				q := r.Sequential
				if !(q.Low > 3 && q.High < 30 && q.Estimate >= q.Low && q.Estimate <= q.High) || q.EValue < 100 || q.Side != DirectionIncrease {
					t.Errorf("sequential %+v: want a CS around 10 above 3, e-value ≥ 100 on the increase side", q)
				}
			},
		},
		{
			// A baseline without errors makes the ratio's estimate unbounded: the reason says
			// so in words instead of printing the largest float.
			name: "errors against a baseline with none", rows: repeatRow(20, [4]float64{0, 900, 10, 100}),
			class: ClassHigh, reason: []string{"ratio unbounded (the baseline had no errors", "higher than tolerated"},
			check: func(t *testing.T, s *CountState, r MetricResult) {
				if strings.Contains(r.Reason, "e+308") {
					t.Errorf("reason prints the largest float: %q", r.Reason)
				}
			},
		},
		{
			name: "fewer errors pass when only an increase hurts", rows: repeatRow(40, [4]float64{90, 900, 0, 100}),
			class: ClassPass,
		},
		{
			name: "fewer errors fail low when a decrease is tested", spec: MetricSpec{Direction: DirectionDecrease},
			rows: repeatRow(40, [4]float64{90, 900, 0, 100}), class: ClassLow, reason: []string{"lower than tolerated"},
		},
		{
			name: "either direction splits alpha", spec: MetricSpec{Direction: DirectionEither},
			rows: repeatRow(40, [4]float64{90, 900, 0, 100}), class: ClassLow,
			check: func(t *testing.T, s *CountState, r MetricResult) {
				if math.Abs(r.Sequential.Threshold-200) > 1e-9 {
					t.Errorf("threshold %v, want 2/alpha = 200", r.Sequential.Threshold)
				}
			},
		},
		{
			// Simpson's paradox: the canary takes half the traffic while errors are high and
			// a twentieth while they are low, so its pooled error rate is 9× the baseline's
			// although every step has the same rate in both cohorts. Conditioning on each
			// step's total cancels the shared swing.
			name: "a traffic split that moves with the error rate passes",
			rows: alternate(30, [4]float64{50, 500, 50, 500}, [4]float64{10, 10000, 0, 500}), class: ClassPass,
			check: func(t *testing.T, s *CountState, r MetricResult) {
				q := r.Sequential
				if q.CanaryRate < 8*q.BaselineRate || q.Estimate < 0.8 || q.Estimate > 1.25 || q.Low > 1 || q.High < 1 {
					t.Errorf("pooled rates %v vs %v, ratio %v in [%v, %v]: want pooled ×8 or more, the ratio about 1 and covered",
						q.CanaryRate, q.BaselineRate, q.Estimate, q.Low, q.High)
				}
			},
		},
		{
			name: "a tolerated ratio passes a smaller rise", spec: MetricSpec{AllowedIncrease: 2},
			rows: repeatRow(60, [4]float64{90, 9000, 15, 1000}), class: ClassPass,
		},
		{
			name: "the same rise fails without the tolerance",
			rows: repeatRow(60, [4]float64{90, 9000, 15, 1000}), class: ClassHigh,
		},
		{
			name: "an absolute floor passes a rise on a tiny rate", spec: MetricSpec{AllowedDelta: 0.001},
			rows: repeatRow(100, [4]float64{3, 90000, 3, 10000}), class: ClassPass,
		},
		{
			name: "the tiny rise fails without the floor",
			rows: repeatRow(100, [4]float64{3, 90000, 3, 10000}), class: ClassHigh,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.spec
			m.Name, m.Kind = "errors", KindCounts
			s, err := NewCountState(m)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Add(countStepsOf(tc.rows...))
			switch {
			case tc.addErr == "" && err != nil:
				t.Fatalf("Add: %v", err)
			case tc.addErr != "" && (err == nil || !strings.Contains(err.Error(), tc.addErr)):
				t.Fatalf("Add: %v, want an error containing %q", err, tc.addErr)
			}
			r := s.Result(m)
			if r.Classification != tc.class {
				t.Fatalf("classification %s, want %s: %s", r.Classification, tc.class, r.Reason)
			}
			for _, want := range tc.reason {
				if !strings.Contains(r.Reason, want) {
					t.Errorf("reason %q does not contain %q", r.Reason, want)
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("result does not encode: %v", err)
			}
			if tc.check != nil {
				tc.check(t, s, r)
			}
		})
	}
}

func TestCountStateRefusesReplays(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts}
	s, _ := NewCountState(m)
	steps := countStepsOf(repeatRow(8, [4]float64{9, 900, 3, 100})...)
	if err := s.Add(steps[:6]); err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(s)
	err := s.Add(steps[4:6]) // the same two steps again, as after a crash between fetch and save
	if !errors.Is(err, ErrStaleStep) {
		t.Fatalf("Add of replayed steps: %v, want ErrStaleStep", err)
	}
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Errorf("a replay changed the state:\n%s\n%s", before, after)
	}
	// A batch that overlaps: the old steps are refused, the new ones added.
	err = s.Add(steps[5:8])
	if !errors.Is(err, ErrStaleStep) || s.Steps != 8 {
		t.Errorf("overlapping batch: err %v, steps %d; want ErrStaleStep and 8 steps", err, s.Steps)
	}
}

func TestCountStateResumesExactly(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts, Direction: DirectionEither}
	s := newSim(7)
	sc := s.randomCountScenario(120)
	sc.ratio, sc.onset, sc.wander = 1.5, 40, 0.2
	steps := s.countSteps(sc)

	straight, _ := NewCountState(m)
	resumed, _ := NewCountState(m)
	for i := 0; i < len(steps); i += 4 { // one interval at a time, stored and reloaded each time
		if err := straight.Add(steps[i : i+4]); err != nil {
			t.Fatal(err)
		}
		if err := resumed.Add(steps[i : i+4]); err != nil {
			t.Fatal(err)
		}
		blob, err := json.Marshal(resumed)
		if err != nil {
			t.Fatal(err)
		}
		var back CountState
		if err := json.Unmarshal(blob, &back); err != nil {
			t.Fatal(err)
		}
		resumed = &back
		if a, b := straight.Result(m), resumed.Result(m); !reflect.DeepEqual(a, b) {
			t.Fatalf("after step %d the resumed state differs:\n%+v\n%+v", i+4, a, b)
		}
	}
}

func TestCountStateSizeIsBounded(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts}
	s := newSim(8)
	sc := s.randomCountScenario(2000)
	steps := s.countSteps(sc)
	st, _ := NewCountState(m)
	_ = st.Add(steps[:10])
	small, _ := json.Marshal(st)
	_ = st.Add(steps[10:])
	large, _ := json.Marshal(st)
	if len(large) > len(small)+200 || len(large) > 4096 {
		t.Errorf("state is %d bytes after 10 steps and %d after 2000: it must not grow with the steps", len(small), len(large))
	}
}

func TestCountStateRefusesAChangedTolerance(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts, AllowedIncrease: 1.2}
	s, _ := NewCountState(m)
	_ = s.Add(countStepsOf(repeatRow(4, [4]float64{9, 900, 1, 100})...))
	changed := m
	changed.AllowedIncrease = 1.5
	r := s.Result(changed)
	if r.Classification != ClassError || !strings.Contains(r.Reason, "allowed_increase 1.5, the evidence was gathered against 1.2") {
		t.Errorf("changed tolerance: %s %q", r.Classification, r.Reason)
	}
	same := m
	same.Alpha, same.Critical, same.Horizon, same.AllowedDelta = 0.05, true, 240, 0.01
	if r := s.Result(same); r.Classification != ClassPass {
		t.Errorf("a new alpha, floor and horizon are allowed: %s %q", r.Classification, r.Reason)
	}
	turned := m
	turned.Direction = DirectionEither
	if r := s.Result(turned); r.Classification != ClassError || !strings.Contains(r.Reason, "direction either, the evidence was gathered for increase") {
		t.Errorf("changed direction: %s %q", r.Classification, r.Reason)
	}
	if !strings.Contains(r.Reason, ErrStateMismatch.Error()) {
		t.Errorf("reason %q does not say the spec changed", r.Reason)
	}
	if _, err := NewCountState(MetricSpec{Kind: KindCounts, Alpha: 0.7}); err == nil || !strings.Contains(err.Error(), "alpha") {
		t.Errorf("alpha 0.7: %v, want an error naming alpha", err)
	}
	if r := Classify(MetricSpec{Name: "e", Kind: KindCounts}, []float64{1}, []float64{1}); r.Classification != ClassError {
		t.Errorf("Classify on a counts spec: %s, want error", r.Classification)
	}
}

// simCanaries is how many simulated canaries the level tests run.
func simCanaries(t *testing.T, full int) int {
	if testing.Short() {
		return full / 5
	}
	return full
}

// TestCountFalseAlarms runs A/A canaries of 120 steps, judged at every step, and checks
// the false-fail rate stays ≤ alpha: healthy services of 1–500 req/s with canary shares
// of 5%–50%, shared traffic swings and error bursts, quiet services apart, and with each
// cohort's error rate wandering on its own per step (overdispersion).
func TestCountFalseAlarms(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts}
	cases := []struct {
		name   string
		n      int
		mod    func(s *sim, sc *countScenario)
		maxHi  float64 // the Wilson upper bound must stay below
		maxHat float64 // and the rate itself
	}{
		{"healthy", 2000, func(*sim, *countScenario) {}, 0.015, m.WithDefaults().Alpha},
		{"quiet 1-2 req/s", 500, func(s *sim, sc *countScenario) { sc.rate = s.logUniform(1, 2) }, 0.02, 0.01},
		{"per-cohort wander 0.3", 1000, func(_ *sim, sc *countScenario) { sc.wander = 0.3 }, 0.02, 0.01},
		// An extreme wander (the canary/baseline ratio moves ±80% per step on its own):
		// the tempering keeps the level near alpha, not below it (0.4%–1.2% over seeds).
		{"per-cohort wander 0.6", 500, func(_ *sim, sc *countScenario) { sc.wander = 0.6 }, 0.03, 0.02},
		// A wander that persists (AR(1), φ = 0.8 per step: one cohort's rate stays off
		// for minutes): the long-run dispersion estimate must absorb it. Before it, 14.8%
		// of such canaries false-failed in the eval's aa-autocorrelated scenario.
		{"persistent per-cohort wander 0.3, AR 0.8", 1000, func(_ *sim, sc *countScenario) { sc.wander, sc.persist = 0.3, 0.8 }, 0.02, 0.01},
		// Each cohort alone has error bursts (×3 for 4 steps, 1% of steps).
		{"per-cohort bursts", 1000, func(_ *sim, sc *countScenario) { sc.ownBurst = 0.01 }, 0.02, 0.01},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(uint64(100 + i))
			n := simCanaries(t, tc.n)
			fails := 0
			for range n {
				sc := s.randomCountScenario(120)
				tc.mod(s, &sc)
				if firstFailCount(m, s.countSteps(sc)) >= 0 {
					fails++
				}
			}
			lo, hi := wilson(fails, n)
			rate := float64(fails) / float64(n)
			t.Logf("A/A %s: %d of %d canaries false-failed: %.2f%% (Wilson 95%% %.2f%%..%.2f%%), alpha 1%%",
				tc.name, fails, n, 100*rate, 100*lo, 100*hi)
			if rate > tc.maxHat || (!testing.Short() && hi > tc.maxHi) {
				t.Errorf("false-fail rate %.2f%% (upper %.2f%%), want ≤ %.1f%% (upper ≤ %.1f%%)", 100*rate, 100*hi, 100*tc.maxHat, 100*tc.maxHi)
			}
		})
	}
}

// TestCountCoverage checks the confidence sequence for the ratio covers the true ratio
// at every step of a canary with probability ≥ 1 − alpha.
func TestCountCoverage(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts}
	s := newSim(11)
	n := simCanaries(t, 500)
	misses := 0
	for range n {
		sc := s.randomCountScenario(120)
		sc.ratio, sc.burstsOn = 1.5, true
		st, _ := NewCountState(m)
		for _, step := range s.countSteps(sc) {
			_ = st.Add([]CountStep{step})
			q := st.Result(m).Sequential
			if q.Low > 1.5 || (!q.HighUnbounded && q.High < 1.5) {
				misses++
				break
			}
		}
	}
	lo, hi := wilson(misses, n)
	t.Logf("confidence sequence missed the ratio at some step in %d of %d canaries (Wilson %.2f%%..%.2f%%)", misses, n, 100*lo, 100*hi)
	if float64(misses)/float64(n) > 0.01 {
		t.Errorf("coverage failures %d of %d, want ≤ 1%%", misses, n)
	}
}

// TestCountPower measures how often and how fast regressions are caught, late onsets
// included: a regression that starts at step 80 (minute 20 of 30) must be caught about
// as fast, counted from its onset, as one at step 0.
func TestCountPower(t *testing.T) {
	m := MetricSpec{Name: "errors", Kind: KindCounts}
	type outcome struct {
		caught   float64 // within the lifetime
		within40 float64 // within 40 steps of the onset (what a late onset has left)
		delay    float64 // median, steps after the onset, of the caught
	}
	// The scenarios come from their own stream, so that runs with the same seed judge
	// the same services (onset 0 and onset 80 paired) on different noise.
	run := func(seed uint64, n int, mod func(s *sim, sc *countScenario)) outcome {
		scen, s := newSim(seed), newSim(seed^0xda7a)
		var delays []int
		within := 0
		for range n {
			sc := scen.randomCountScenario(120)
			mod(scen, &sc)
			if f := firstFailCount(m, s.countSteps(sc)); f >= 0 {
				delays = append(delays, f-sc.onset)
				if f-sc.onset < 40 {
					within++
				}
			}
		}
		return outcome{float64(len(delays)) / float64(n), float64(within) / float64(n), medianInt(delays)}
	}
	n := simCanaries(t, 300)
	x10 := run(21, n, func(_ *sim, sc *countScenario) { sc.ratio = 10 })
	x10late := run(21, n, func(_ *sim, sc *countScenario) { sc.ratio, sc.onset = 10, 80 })
	busy := func(s *sim, sc *countScenario) { sc.rate = max(sc.rate, 5/sc.share) } // ≥ 5 req/s canary
	x2 := run(23, n, func(s *sim, sc *countScenario) { busy(s, sc); sc.ratio = 2 })
	x2late := run(23, n, func(s *sim, sc *countScenario) { busy(s, sc); sc.ratio, sc.onset = 2, 80 })
	for _, r := range []struct {
		name string
		o    outcome
	}{{"errors ×10 from step 0", x10}, {"errors ×10 from step 80", x10late}, {"errors ×2 from step 0 (≥ 5 req/s canary)", x2}, {"errors ×2 from step 80 (≥ 5 req/s canary)", x2late}} {
		t.Logf("%s: caught in %.1f%% (%.1f%% within 40 steps of onset), median %.0f steps after onset",
			r.name, 100*r.o.caught, 100*r.o.within40, r.o.delay)
	}
	if x10.caught < 0.97 || x10.delay > 8 {
		t.Errorf("errors ×10: caught %.1f%%, median delay %v steps; want ≥ 97%% within 8 steps", 100*x10.caught, x10.delay)
	}
	// Paired scenarios, different noise: allow two standard errors of a difference.
	margin := 2 * math.Sqrt(0.5/float64(n))
	if x10late.delay > x10.delay+2 || x10late.within40 < x10.within40-margin {
		t.Errorf("late ×10: median delay %v steps, %.1f%% within 40 steps, vs %v and %.1f%% from step 0: the evidence dilutes",
			x10late.delay, 100*x10late.within40, x10.delay, 100*x10.within40)
	}
	if x2.caught < 0.8 {
		t.Errorf("errors ×2: caught %.1f%%, want ≥ 80%%", 100*x2.caught)
	}
	if x2late.within40 < x2.within40-margin {
		t.Errorf("late ×2: %.1f%% caught within 40 steps of onset vs %.1f%% from step 0: the evidence dilutes",
			100*x2late.within40, 100*x2.within40)
	}
}
