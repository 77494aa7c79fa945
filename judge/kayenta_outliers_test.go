package judge

import (
	"slices"
	"testing"
)

// Kayenta's IQR fences, checked against its DetectorSuite's IQR cases
// (spinnaker/kayenta@a69573be kayenta-judge/src/test/scala/…/DetectorSuite.scala; those
// use factor 1.5 without reduceSensitivity), and the widened fences NetflixACAJudge uses.
func TestKayentaFences(t *testing.T) {
	nist := []float64{30, 171, 184, 201, 212, 250, 265, 270, 272, 289, 305, 306, 322, 322, 336, 346,
		351, 370, 390, 404, 409, 411, 436, 437, 439, 441, 444, 448, 451, 453, 470, 480,
		482, 487, 494, 495, 499, 503, 514, 521, 522, 527, 548, 550, 559, 560, 570, 572,
		574, 578, 585, 592, 592, 607, 616, 618, 621, 629, 637, 638, 640, 656, 668, 707,
		709, 719, 737, 739, 752, 758, 766, 792, 792, 794, 802, 818, 830, 832, 843, 858,
		860, 869, 918, 925, 953, 991, 1000, 1005, 1068, 1441}
	cases := []struct {
		name     string
		data     []float64
		reduce   bool
		outliers []float64
	}{
		{"IQR Detection", []float64{21, 23, 24, 25, 50, 29, 23, 21}, false, []float64{50}},
		{"IQR Detect Two Sided", []float64{1, 1, 1, 5, -1, -1, -1, -5}, false, []float64{-5, 5}},
		{"IQR NIST Test", nist, false, []float64{1441}},
		// The 99th percentile (1109) is inside the IQR fence (1192): the same outlier.
		{"IQR NIST Test, reduced sensitivity", nist, true, []float64{1441}},
		// A collapsed IQR (Q1 = Q3 = 1) fences out every other value; the 99th
		// percentile (2.79) widens the fence to keep 2.
		{"collapsed IQR", append(slices.Repeat([]float64{1}, 20), 2, 3), false, []float64{2, 3}},
		{"collapsed IQR, reduced sensitivity", append(slices.Repeat([]float64{1}, 20), 2, 3), true, []float64{3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := slices.Sorted(slices.Values(tc.data))
			lo, hi := kayentaFences(v, 1.5, tc.reduce)
			var got []float64
			for _, f := range v {
				if f < lo || f > hi {
					got = append(got, f)
				}
			}
			if !slices.Equal(got, tc.outliers) {
				t.Errorf("outliers %v (fences %v..%v), want %v", got, lo, hi, tc.outliers)
			}
		})
	}
	kept, n := removeOutliersKayenta(append(slices.Repeat([]float64{1}, 20), 3, 2), 1.5)
	if n != 1 || len(kept) != 21 || kept[20] != 2 {
		t.Errorf("removeOutliersKayenta: kept %v, %d removed, want 3 removed", kept, n)
	}
	if kept, n := removeOutliersKayenta(nil, 3); n != 0 || len(kept) != 0 {
		t.Errorf("empty: %v %d", kept, n)
	}
}
