package judge

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// floatsFrom turns fuzz bytes into two samples: 8 bytes per float64 (any bit pattern:
// NaN, ±Inf, subnormals, huge values), the first byte splitting them.
func floatsFrom(data []byte) (a, b []float64) {
	if len(data) == 0 {
		return nil, nil
	}
	split := int(data[0])
	data = data[1:]
	var all []float64
	for len(data) >= 8 && len(all) < 400 {
		all = append(all, math.Float64frombits(binary.LittleEndian.Uint64(data)))
		data = data[8:]
	}
	split = min(split, len(all))
	return all[:split], all[split:]
}

func encodeFloats(split byte, v ...float64) []byte {
	out := []byte{split}
	for _, f := range v {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(f))
	}
	return out
}

func FuzzMannWhitney(f *testing.F) {
	f.Add(encodeFloats(3, 1, 2, 3, 4, 5, 6), 0.95)
	f.Add(encodeFloats(1, 7, 7), 0.9)
	f.Add(encodeFloats(2, 1, 1, 1, 1), 0.8)
	f.Add(encodeFloats(2, math.NaN(), 1, 2, 3), 0.95)
	f.Add(encodeFloats(1, math.Inf(1), 1), 0.95)
	f.Add(encodeFloats(0, 1, 2), 0.95)
	f.Add(encodeFloats(2, 1e308, -1e308, 1e308, -1e308), 0.95)
	f.Add(encodeFloats(2, 5e-324, 0, -5e-324, 0), 0.5)
	f.Add(encodeFloats(3, 1, 2, 3, 4), 1.5)
	// Zero-inflated: most pairs 0 − 0, an interval collapsed to [0, 0].
	f.Add(encodeFloats(20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 2, 0, 0, 1, 0, 0, 3, 0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1), 0.95)
	f.Fuzz(func(t *testing.T, data []byte, conf float64) {
		base, can := floatsFrom(data)
		var s Scratch
		res, err := s.MannWhitney(base, can, conf)
		if err != nil {
			return // a clear error is a defined result
		}
		if !(res.PValue >= 0 && res.PValue <= 1) {
			t.Fatalf("p = %v outside [0, 1] for %v vs %v", res.PValue, base, can)
		}
		if !(res.CILow <= res.CIHigh) {
			t.Fatalf("interval [%v, %v] inverted for %v vs %v", res.CILow, res.CIHigh, base, can)
		}
		if !(res.CILow <= res.Estimate && res.Estimate <= res.CIHigh) {
			t.Fatalf("estimate %v outside [%v, %v] for %v vs %v", res.Estimate, res.CILow, res.CIHigh, base, can)
		}
		if !isFinite(res.Estimate) || !isFinite(res.U) {
			t.Fatalf("non-finite result %+v without an error", res)
		}
		if res.NBaseline != len(base) || res.NCanary != len(can) {
			t.Fatalf("sizes %d/%d, want %d/%d", res.NBaseline, res.NCanary, len(base), len(can))
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add(encodeFloats(3, 1, 2, 3, 4, 5, 6), uint8(0), uint8(0), 1.1, 0.5, int64(0))
	f.Add(encodeFloats(2, 0, 0, 1, 1), uint8(1), uint8(2), 1.0, 2.0, int64(60))
	f.Add(encodeFloats(2, math.NaN(), 1, math.Inf(1), 3), uint8(2), uint8(1), 1.0, 1.5, int64(30))
	f.Fuzz(func(t *testing.T, data []byte, kind, dir uint8, allowed, bound float64, forSec int64) {
		base, can := floatsFrom(data)
		kinds := []Kind{KindMannWhitney, KindThreshold, KindRatio}
		dirs := []Direction{DirectionIncrease, DirectionDecrease, DirectionEither}
		m := MetricSpec{
			Name: "fuzz", Kind: kinds[int(kind)%3], Direction: dirs[int(dir)%3],
			AllowedIncrease: allowed, Max: &bound, For: time.Duration(forSec) * time.Second,
			Step: 10 * time.Second, RemoveOutliers: kind%2 == 0, NaNStrategy: []NaNStrategy{NaNRemove, NaNZero}[int(dir)%2],
		}
		if m.Kind == KindRatio && len(base) != len(can) {
			base = base[:min(len(base), len(can))]
			can = can[:len(base)]
		}
		res := Classify(m, base, can)
		switch res.Classification {
		case ClassPass, ClassHigh, ClassLow, ClassNoData, ClassError:
		default:
			t.Fatalf("unknown classification %q", res.Classification)
		}
		if res.Reason == "" {
			t.Fatal("empty reason")
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("result does not encode: %v (%+v)", err, res)
		}
		sc := Score([]MetricResult{res}, nil, Thresholds{})
		if !(sc.Score >= 0 && sc.Score <= 100) {
			t.Fatalf("score %v outside 0..100", sc.Score)
		}
	})
}
