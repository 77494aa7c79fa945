package judge

import (
	"fmt"
	"testing"
)

// BenchmarkCountInterval is one interval of a 50-metric analysis of count judges: each
// metric adds the interval's 4 new steps (1m at a 15s step) and is judged. The cost
// must stay O(new steps), whatever the number of steps already added (after).
func BenchmarkCountInterval(b *testing.B) {
	const metrics, perInterval = 50, 4
	for _, after := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("metrics=%d/after=%d", metrics, after), func(b *testing.B) {
			m := MetricSpec{Name: "errors", Kind: KindCounts, Horizon: 2000}
			s := newSim(1)
			sc := s.randomCountScenario(after + perInterval*(b.N+1))
			sc.rate = 50
			steps := s.countSteps(sc)
			states := make([]*CountState, metrics)
			for i := range states {
				states[i], _ = NewCountState(m)
				if err := states[i].Add(steps[:after]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := range b.N {
				batch := steps[after+n*perInterval : after+(n+1)*perInterval]
				for _, st := range states {
					if err := st.Add(batch); err != nil {
						b.Fatal(err)
					}
					_ = st.Result(m)
				}
			}
		})
	}
}

// BenchmarkHistogramInterval is BenchmarkCountInterval for histogram judges with
// Prometheus' 12 default buckets.
func BenchmarkHistogramInterval(b *testing.B) {
	const perInterval = 4
	for _, metrics := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("metrics=%d", metrics), func(b *testing.B) {
			m := MetricSpec{Name: "latency", Kind: KindHistogram, Horizon: 2000}
			s := newSim(1)
			sc := s.randomHistScenario(perInterval * (b.N + 1))
			sc.rate = 50
			steps := s.histSteps(sc)
			states := make([]*HistogramState, metrics)
			for i := range states {
				states[i], _ = NewHistogramState(m)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := range b.N {
				batch := steps[n*perInterval : (n+1)*perInterval]
				for _, st := range states {
					if err := st.Add(batch); err != nil {
						b.Fatal(err)
					}
					_ = st.Result(m)
				}
			}
		})
	}
}
