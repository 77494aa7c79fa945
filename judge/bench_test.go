package judge

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// latencySamples draws log-normal-like latencies: the canary 5% slower, so both the
// interval search and the estimate do real work.
func latencySamples(n int, seed uint64) (baseline, canary []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	baseline = make([]float64, n)
	canary = make([]float64, n)
	for i := range n {
		baseline[i] = 0.1 * (1 + 0.25*r.NormFloat64()*r.NormFloat64())
		canary[i] = 0.105 * (1 + 0.25*r.NormFloat64()*r.NormFloat64())
	}
	return baseline, canary
}

func BenchmarkMannWhitney(b *testing.B) {
	for _, n := range []int{30, 60, 360, 1440, 10_000, 200_000} {
		baseline, canary := latencySamples(n, uint64(n))
		b.Run(fmt.Sprintf("n=m=%d", n), func(b *testing.B) {
			var s Scratch
			if _, err := s.MannWhitney(baseline, canary, 0.95); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.MannWhitney(baseline, canary, 0.95); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClassify50 judges one interval of a 50-metric analysis: 40 Mann-Whitney
// metrics over a 30-minute window at 15 s steps (120 points per cohort), 5 threshold
// and 5 ratio windows, then the score.
func BenchmarkClassify50(b *testing.B) {
	const points = 120
	type metric struct {
		spec      MetricSpec
		base, can []float64
	}
	var metrics []metric
	maxV, maxR := 0.02, 1.5
	for i := range 50 {
		base, can := latencySamples(points, uint64(i))
		spec := MetricSpec{Name: fmt.Sprintf("m%d", i), Group: []string{"errors", "latency", "saturation"}[i%3],
			Step: 15e9, For: 5 * 60e9, AllowedIncrease: 1.1}
		switch {
		case i >= 45:
			spec.Kind, spec.Max = KindRatio, &maxR
		case i >= 40:
			spec.Kind, spec.Max = KindThreshold, &maxV
		}
		metrics = append(metrics, metric{spec, base, can})
	}
	results := make([]MetricResult, len(metrics))
	groups := map[string]float64{"errors": 50, "latency": 30, "saturation": 20}
	var s Scratch
	b.ReportAllocs()
	for range b.N {
		for i, m := range metrics {
			results[i] = s.Classify(m.spec, m.base, m.can)
		}
		if sc := Score(results, groups, Thresholds{}); sc.Verdict == "" {
			b.Fatal("no verdict")
		}
	}
}
