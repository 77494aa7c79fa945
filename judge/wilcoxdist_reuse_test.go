package judge

import (
	"math/rand/v2"
	"testing"
)

// TestScratchReusesDistribution: a scratch that keeps the exact distribution between
// calls of the same sizes answers as a fresh one, whatever sizes came in between.
func TestScratchReusesDistribution(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	sample := func(n int, shift float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() + shift
		}
		return v
	}
	var reused Scratch
	for _, sz := range [][2]int{{5, 5}, {5, 5}, {12, 7}, {7, 12}, {5, 5}, {30, 30}, {30, 30}, {12, 7}} {
		b, c := sample(sz[0], 0), sample(sz[1], 0.3)
		got, err := reused.MannWhitney(b, c, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		want, err := MannWhitney(b, c, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("sizes %v: reused scratch %+v, fresh %+v", sz, got, want)
		}
		if got.Method != MethodExact {
			t.Fatalf("sizes %v: method %s, want exact", sz, got.Method)
		}
	}
}
