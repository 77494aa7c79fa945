package judge

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMannWhitneyProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	sizes := [][2]int{{3, 3}, {5, 12}, {30, 30}, {49, 20}, {50, 50}, {80, 300}, {1000, 700}}
	for _, sz := range sizes {
		for _, rounded := range []bool{false, true} {
			base := make([]float64, sz[0])
			can := make([]float64, sz[1])
			for i := range base {
				base[i] = 100 + 10*r.NormFloat64()
			}
			for i := range can {
				can[i] = 104 + 10*r.NormFloat64()
			}
			if rounded {
				for i := range base {
					base[i] = math.Round(base[i])
				}
				for i := range can {
					can[i] = math.Round(can[i])
				}
			}
			fwd, err := MannWhitney(base, can, 0.9)
			if err != nil {
				t.Fatal(err)
			}
			if fwd.PValue < 0 || fwd.PValue > 1 {
				t.Errorf("%v: p = %v outside [0,1]", sz, fwd.PValue)
			}
			if !(fwd.CILow <= fwd.Estimate && fwd.Estimate <= fwd.CIHigh) {
				t.Errorf("%v: estimate %v outside its interval [%v, %v]", sz, fwd.Estimate, fwd.CILow, fwd.CIHigh)
			}
			tol := 0.0
			if fwd.Method == MethodNormal {
				tol = rootTol * 4 // each side of each of the two runs
			}
			// Swapping the cohorts negates the shift and mirrors the interval.
			rev, err := MannWhitney(can, base, 0.9)
			if err != nil {
				t.Fatal(err)
			}
			// The interval bounds are order statistics: exactly mirrored. R's normal-branch
			// estimate is wherever its root finder first lands between the two middle
			// differences, so mirrored only up to the gap between them.
			gap := 0.0
			if fwd.Method == MethodNormal {
				var s Scratch
				xs, ys := sortedCopy(&s.x, can), sortedCopy(&s.y, base)
				s.sel.reset(xs, ys)
				nm := len(xs) * len(ys)
				mid := s.sel.kth((nm + 1) / 2)
				gap = s.sel.nextAfter(mid, (nm+1)/2) - s.sel.kth(nm/2) + 2*tol
			}
			if math.Abs(rev.Estimate+fwd.Estimate) > gap || rev.CILow != -fwd.CIHigh || rev.CIHigh != -fwd.CILow {
				t.Errorf("%v rounded=%v: swapped gives %v [%v, %v], want the mirror of %v [%v, %v]",
					sz, rounded, rev.Estimate, rev.CILow, rev.CIHigh, fwd.Estimate, fwd.CILow, fwd.CIHigh)
			}
			if math.Abs(rev.PValue-fwd.PValue) > 1e-12 {
				t.Errorf("%v: swapped p = %v, want %v", sz, rev.PValue, fwd.PValue)
			}
			// Adding c to every canary point adds c to the shift and its interval (c an
			// integer so that rounded data keeps its ties exactly).
			const c = 7
			shifted := make([]float64, len(can))
			for i, v := range can {
				shifted[i] = v + c
			}
			sh, err := MannWhitney(base, shifted, 0.9)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(sh.Estimate-fwd.Estimate-c) > tol+1e-9 || math.Abs(sh.CILow-fwd.CILow-c) > tol+1e-9 || math.Abs(sh.CIHigh-fwd.CIHigh-c) > tol+1e-9 {
				t.Errorf("%v: +%d gives %v [%v, %v] from %v [%v, %v]", sz, c, sh.Estimate, sh.CILow, sh.CIHigh, fwd.Estimate, fwd.CILow, fwd.CIHigh)
			}
		}
	}
}

func TestMannWhitneyEdgeCases(t *testing.T) {
	tests := []struct {
		name          string
		base, can     []float64
		conf          float64
		wantErr       string
		wantEstimate  float64
		wantLow       float64
		wantHigh      float64
		wantP         float64
		wantMethod    Method
		checkEstimate bool
	}{
		{name: "empty baseline", base: nil, can: []float64{1}, conf: 0.95, wantErr: "baseline: empty sample"},
		{name: "empty canary", base: []float64{1}, can: []float64{}, conf: 0.95, wantErr: "canary: empty sample"},
		{name: "NaN", base: []float64{1, math.NaN()}, can: []float64{1}, conf: 0.95, wantErr: "baseline[1] is NaN"},
		{name: "Inf", base: []float64{1}, can: []float64{2, math.Inf(-1)}, conf: 0.95, wantErr: "canary[1] is -Inf"},
		{name: "confidence 1", base: []float64{1}, can: []float64{2}, conf: 1, wantErr: "confidence 1 must be in (0, 1)"},
		{name: "confidence NaN", base: []float64{1}, can: []float64{2}, conf: math.NaN(), wantErr: "must be in (0, 1)"},
		// One point each: R's exact test says W=1, p=1, and the only difference is
		// both the estimate and the interval.
		{name: "one point each", base: []float64{1}, can: []float64{3}, conf: 0.95, wantMethod: MethodExact,
			wantP: 1, wantEstimate: 2, wantLow: 2, wantHigh: 2, checkEstimate: true},
		// All equal: no shift, p = 1 (R answers NaN and stops).
		{name: "all equal", base: []float64{5, 5, 5}, can: []float64{5, 5}, conf: 0.95, wantMethod: MethodNormal,
			wantP: 1, checkEstimate: true},
		// Two constant cohorts: every difference is 2; p from R's
		// wilcox.test(c(5,5,5), c(3,3,3,3)).
		{name: "constant cohorts", base: []float64{3, 3, 3, 3}, can: []float64{5, 5, 5}, conf: 0.95, wantMethod: MethodNormal,
			wantP: 0.024744672046398939, wantEstimate: 2, wantLow: 2, wantHigh: 2, checkEstimate: true},
		{name: "huge values", base: []float64{1e308, -1e308, 5e307}, can: []float64{1e308, 1.7e308, -1.7e308, 3},
			conf: 0.95, wantErr: "overflow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MannWhitney(tc.base, tc.can, tc.conf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != tc.wantMethod {
				t.Errorf("method = %s, want %s", got.Method, tc.wantMethod)
			}
			if math.Abs(got.PValue-tc.wantP) > 1e-12 {
				t.Errorf("p = %.17g, want %.17g", got.PValue, tc.wantP)
			}
			if tc.checkEstimate && (got.Estimate != tc.wantEstimate || got.CILow != tc.wantLow || got.CIHigh != tc.wantHigh) {
				t.Errorf("estimate %v [%v, %v], want %v [%v, %v]", got.Estimate, got.CILow, got.CIHigh, tc.wantEstimate, tc.wantLow, tc.wantHigh)
			}
		})
	}
	if _, err := MannWhitney(nil, []float64{1}, 0.9); !errors.Is(err, ErrEmptySample) {
		t.Errorf("empty sample error %v does not wrap ErrEmptySample", err)
	}
}

// The exact null distribution against counts worked by hand and by symmetry.
func TestWilcoxDist(t *testing.T) {
	var d wilcoxDist
	d.build(2, 3, nil)
	// U for m=2, n=3 over the C(5,2)=10 assignments: 0,1,2,2,3,3,4,4,5,6 → counts.
	want := []uint64{1, 1, 2, 2, 2, 1, 1}
	for u, w := range want {
		if d.counts[u].hi != 0 || d.counts[u].lo != w {
			t.Errorf("count[%d] = %v, want %d", u, d.counts[u], w)
		}
	}
	// The largest case R's exact branch meets: 49 and 49, total C(98,49).
	d.build(49, 49, nil)
	if got, want := d.total.float(), 2.5477612258980856e28; math.Abs(got-want)/want > 1e-15 {
		t.Errorf("total = %v, want C(98,49) = %v", got, want)
	}
	for u := range 49 * 49 / 2 {
		if d.counts[u] != d.counts[49*49-u] {
			t.Fatalf("distribution not symmetric at %d", u)
		}
	}
	if p := d.cdf(49 * 49); p != 1 {
		t.Errorf("cdf(max) = %v", p)
	}
}

func TestPairSelectorMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][2]int{{1, 1}, {1, 9}, {7, 1}, {13, 17}, {60, 45}, {200, 300}} {
		for _, ties := range []bool{false, true} {
			x := make([]float64, sz[0])
			y := make([]float64, sz[1])
			for i := range x {
				x[i] = r.NormFloat64()
			}
			for i := range y {
				y[i] = r.NormFloat64()
			}
			if ties {
				for i := range x {
					x[i] = math.Round(x[i] * 2)
				}
				for i := range y {
					y[i] = math.Round(y[i] * 2)
				}
			}
			var s Scratch
			xs, ys := sortedCopy(&s.x, x), sortedCopy(&s.y, y)
			all := make([]float64, 0, len(x)*len(y))
			for _, a := range xs {
				for _, b := range ys {
					all = append(all, a-b)
				}
			}
			sorted := sortedCopy(new([]float64), all)
			s.sel.reset(xs, ys)
			for k := 1; k <= len(sorted); k += max(1, len(sorted)/97) {
				if got := s.sel.kth(k); got != sorted[k-1] {
					t.Fatalf("%v ties=%v: kth(%d) = %v, want %v", sz, ties, k, got, sorted[k-1])
				}
			}
			if got := s.sel.kth(len(sorted)); got != sorted[len(sorted)-1] {
				t.Fatalf("%v: kth(last) = %v, want %v", sz, got, sorted[len(sorted)-1])
			}
		}
	}
}
