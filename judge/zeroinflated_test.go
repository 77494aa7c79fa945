package judge

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// aaLooks judges runs healthy canaries, both cohorts drawn by draw, at every look of a
// growing window as the scheduler does (start points, then every more per interval, looks
// in all), and returns how many ended high at some look, and how many of those by the
// rank test at their first high look.
func aaLooks(m MetricSpec, seed uint64, runs, start, every, looks int, draw func(*rand.Rand) float64) (fails, byRank int) {
	r := rand.New(rand.NewPCG(seed, 14))
	n := start + every*(looks-1)
	b, c := make([]float64, n), make([]float64, n)
	var s Scratch
	for range runs {
		for i := range n {
			b[i], c[i] = draw(r), draw(r)
		}
		for l := range looks {
			k := start + every*l
			if res := s.Classify(m, b[:k], c[:k]); res.Classification == ClassHigh {
				fails++
				if strings.Contains(res.Reason, "rank test") {
					byRank++
				}
				break
			}
		}
	}
	return fails, byRank
}

// zeroInflated draws counts that are 0 with probability 1 − p, else 1, 2 or 3.
func zeroInflated(p float64) func(*rand.Rand) float64 {
	return func(r *rand.Rand) float64 {
		if r.Float64() < p {
			return float64(1 + r.IntN(3))
		}
		return 0
	}
}

// errorRatio draws a step's error ratio: Binomial(requests, p)/requests.
func errorRatio(requests, p float64) func(*rand.Rand) float64 {
	return func(r *rand.Rand) float64 { return distuv.Binomial{N: requests, P: p, Src: r}.Rand() / requests }
}

// TestZeroInflatedAAWithTolerance: a shift held at 0 by tied points is within a
// positive allowed_delta, so healthy zero-inflated canaries judged at every look of a
// growing window do not fail by the rank test. With the rank test deciding whatever
// allowed_delta said (commit 38bbe46), cmd/canaryd's chaos analysis false-failed 2.5% of
// these runs and the counts 8–11% (cmd/canaryd's TestKill9WithActuators failed on it).
func TestZeroInflatedAAWithTolerance(t *testing.T) {
	tests := []struct {
		name                string
		m                   MetricSpec
		draw                func(*rand.Rand) float64
		runs                int
		start, every, looks int
	}{
		// cmd/canaryd's chaos analysis: 20 requests per 200 ms step, 0.5% errors (90% of
		// steps without one), lifetime 4s after a 1s warmup, judged every second.
		{name: "chaos analysis", m: MetricSpec{Name: "error-rate", Direction: DirectionIncrease, AllowedDelta: 0.05},
			draw: errorRatio(20, 0.005), runs: 2000, start: 5, every: 5, looks: 4},
		// configs/demo.yml's error-rate: 100 requests per 1s step, judged every 10s.
		{name: "demo error-rate", m: MetricSpec{Name: "error-rate", Direction: DirectionIncrease, AllowedDelta: 0.005},
			draw: errorRatio(100, 0.005), runs: 400, start: 10, every: 10, looks: 6},
		// Error counts, 28 looks of 4 more points each, as golden-signals' schedule.
		{name: "counts 5% non-zero", m: MetricSpec{Name: "errors", Direction: DirectionIncrease, AllowedDelta: 0.5},
			draw: zeroInflated(0.05), runs: 150, start: 5, every: 4, looks: 28},
		{name: "counts 10% non-zero", m: MetricSpec{Name: "errors", Direction: DirectionIncrease, AllowedDelta: 0.5},
			draw: zeroInflated(0.10), runs: 150, start: 5, every: 4, looks: 28},
		{name: "counts 30% non-zero", m: MetricSpec{Name: "errors", Direction: DirectionIncrease, AllowedDelta: 0.5},
			draw: zeroInflated(0.30), runs: 150, start: 5, every: 4, looks: 28},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fails, byRank := aaLooks(tc.m, uint64(i+1), tc.runs, tc.start, tc.every, tc.looks, tc.draw)
			lo, hi := wilson(fails, tc.runs)
			t.Logf("A/A false fail %d of %d (%.2f%%, Wilson 95%% %.2f%%..%.2f%%), %d by the rank test",
				fails, tc.runs, 100*float64(fails)/float64(tc.runs), 100*lo, 100*hi, byRank)
			if byRank > 0 {
				t.Errorf("%d healthy canaries failed by the rank test despite allowed_delta %v", byRank, tc.m.AllowedDelta)
			}
			if rate := float64(fails) / float64(tc.runs); rate > 0.01 {
				t.Errorf("A/A false fail rate %.2f%%, want <= 1%%", 100*rate)
			}
		})
	}
}

// TestZeroInflatedAALooks: without a tolerance both rules are the plain test re-run at
// every look, so neither holds its level over 28 looks; the rank test on zero-inflated
// counts must add no more false fails than the shift rule on continuous data does.
func TestZeroInflatedAALooks(t *testing.T) {
	const runs, start, every, looks = 300, 5, 4, 28
	m := MetricSpec{Name: "m", Direction: DirectionIncrease}
	ref, _ := aaLooks(m, 1, runs, start, every, looks, func(r *rand.Rand) float64 { return r.NormFloat64() })
	lo, hi := wilson(ref, runs)
	t.Logf("continuous, shift rule: %d of %d (Wilson 95%% %.1f%%..%.1f%%)", ref, runs, 100*lo, 100*hi)
	for i, p := range []float64{0.10, 0.30} {
		fails, byRank := aaLooks(m, uint64(i+2), runs, start, every, looks, zeroInflated(p))
		lo, hi := wilson(fails, runs)
		t.Logf("%.0f%% non-zero: %d of %d (Wilson 95%% %.1f%%..%.1f%%), %d by the rank test", 100*p, fails, runs, 100*lo, 100*hi, byRank)
		// 3 points of slack: about 1.6 standard errors of the difference at 10%.
		if float64(fails-ref)/runs > 0.03 {
			t.Errorf("%.0f%% non-zero: %d A/A false fails, the shift rule on continuous data %d", 100*p, fails, ref)
		}
		if byRank == 0 {
			t.Errorf("%.0f%% non-zero: no run reached the rank test: the test does not exercise it", 100*p)
		}
	}
}

// TestLooksCorrection: a metric without a tolerance, judged at every look of a growing
// window, keeps its false-fail rate at most 1 − Confidence over the canary when Looks
// says how many looks there are, on continuous and on zero-inflated data (the rank
// rule), and exceeds it without (the defect cmd/canaryd's TestServeRetention hit).
func TestLooksCorrection(t *testing.T) {
	const runs, start, every, looks = 400, 5, 4, 28
	draws := []struct {
		name string
		draw func(*rand.Rand) float64
	}{
		{"continuous", func(r *rand.Rand) float64 { return r.NormFloat64() }},
		{"10% non-zero", zeroInflated(0.10)},
		{"30% non-zero", zeroInflated(0.30)},
	}
	for i, d := range draws {
		t.Run(d.name, func(t *testing.T) {
			plain := MetricSpec{Name: "m", Direction: DirectionIncrease}
			corrected := plain
			corrected.Looks = looks
			seed := uint64(20 + i)
			before, _ := aaLooks(plain, seed, runs, start, every, looks, d.draw)
			after, _ := aaLooks(corrected, seed, runs, start, every, looks, d.draw)
			lo, hi := wilson(after, runs)
			t.Logf("A/A false fail over %d looks: %d of %d uncorrected, %d corrected (Wilson 95%% %.1f%%..%.1f%%)",
				looks, before, runs, after, 100*lo, 100*hi)
			// One-sided 5% test: at most 2.5% by construction; allow the sampling error.
			if lo > 0.025 {
				t.Errorf("corrected false-fail rate %d of %d: its Wilson interval lies above 2.5%%", after, runs)
			}
			if before <= after || float64(before)/runs < 0.05 {
				t.Errorf("uncorrected %d of %d, corrected %d: the test does not show the looks adding false fails", before, runs, after)
			}
		})
	}
}

func TestJudgedConfidence(t *testing.T) {
	tests := []struct {
		name string
		m    MetricSpec
		want float64
	}{
		{"one look", MetricSpec{Confidence: 0.95, Looks: 1}, 0.95},
		{"no tolerance", MetricSpec{Confidence: 0.95, Looks: 25, Direction: DirectionIncrease, AllowedIncrease: 1, AllowedDecrease: 1}, 0.998},
		{"allowed_delta", MetricSpec{Confidence: 0.95, Looks: 25, Direction: DirectionIncrease, AllowedIncrease: 1, AllowedDelta: 0.01}, 0.95},
		{"allowed_increase", MetricSpec{Confidence: 0.95, Looks: 25, Direction: DirectionIncrease, AllowedIncrease: 1.1, AllowedDecrease: 1}, 0.95},
		{"either, one side tolerated", MetricSpec{Confidence: 0.95, Looks: 25, Direction: DirectionEither, AllowedIncrease: 1.1, AllowedDecrease: 1}, 0.998},
		{"decrease tolerated", MetricSpec{Confidence: 0.95, Looks: 25, Direction: DirectionDecrease, AllowedIncrease: 1, AllowedDecrease: 0.9}, 0.95},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.JudgedConfidence(); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("JudgedConfidence() = %v, want %v", got, tc.want)
			}
		})
	}
}
