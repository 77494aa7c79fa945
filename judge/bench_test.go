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
