package judge

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// fuzzValue reads one count from fuzz bytes: mostly small counts (a byte), with codes
// for the values that matter: NaN, negative, fractional, infinite, huge, and, after a
// 0xF0 byte, any float64 bit pattern.
func fuzzValue(data []byte) (float64, []byte) {
	if len(data) == 0 {
		return 0, nil
	}
	b, data := data[0], data[1:]
	switch b {
	case 0xFF:
		return math.NaN(), data
	case 0xFE:
		return -1, data
	case 0xFD:
		return 2.6, data
	case 0xFC:
		return math.Inf(1), data
	case 0xFB:
		return 1e16, data
	case 0xF0:
		if len(data) >= 8 {
			return math.Float64frombits(binary.LittleEndian.Uint64(data)), data[8:]
		}
	}
	return float64(b), data
}

// fuzzSpec picks a spec from one byte: direction, tolerance, floor.
func fuzzSpec(kind Kind, b byte) MetricSpec {
	m := MetricSpec{Name: "fuzz", Kind: kind}
	m.Direction = []Direction{DirectionIncrease, DirectionDecrease, DirectionEither}[int(b)%3]
	if b&4 != 0 {
		m.AllowedIncrease, m.AllowedDecrease = 1.2, 0.8
	}
	if b&8 != 0 {
		m.AllowedDelta = 0.01
	}
	m.Horizon = 1 + int(b>>4)
	return m
}

// checkSequential asserts what every sequential result must be: a known
// classification, a reason, and JSON (every number finite).
func checkSequential(t *testing.T, r MetricResult) {
	switch r.Classification {
	case ClassPass, ClassHigh, ClassLow, ClassNoData, ClassError:
	default:
		t.Fatalf("classification %q", r.Classification)
	}
	if r.Reason == "" {
		t.Fatal("no reason")
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatalf("result does not encode: %v", err)
	}
}

func FuzzCountState(f *testing.F) {
	f.Add(byte(0), []byte{9, 200, 1, 20, 9, 200, 1, 20})
	f.Add(byte(1), []byte{0, 0, 0, 0, 0xFF, 3, 3, 3})
	f.Add(byte(2), []byte{1, 100, 0xFE, 10, 0xFD, 10, 1, 10})
	f.Add(byte(5), []byte{1, 0xFC, 0, 10, 0xFB, 0xFB, 0xFB, 0xFB})
	f.Add(byte(9), []byte{200, 100, 5, 4, 0, 255, 30, 31})
	f.Fuzz(func(t *testing.T, specByte byte, data []byte) {
		m := fuzzSpec(KindCounts, specByte)
		s, err := NewCountState(m)
		if err != nil {
			t.Fatal(err)
		}
		var steps []CountStep
		for i := 0; len(data) > 0 && i < 200; i++ {
			var v [4]float64
			for k := range v {
				v[k], data = fuzzValue(data)
			}
			steps = append(steps, CountStep{Time: simStart.Add(time.Duration(i) * simStep),
				Baseline: CountCohort{v[0], v[1]}, Canary: CountCohort{v[2], v[3]}})
		}
		half := len(steps) / 2
		addErr := s.Add(steps[:half])
		blob, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("state does not encode: %v", err)
		}
		var back CountState
		if err := json.Unmarshal(blob, &back); err != nil {
			t.Fatal(err)
		}
		err1, err2 := s.Add(steps[half:]), back.Add(steps[half:])
		r := s.Result(m)
		checkSequential(t, r)
		if rb := back.Result(m); !reflect.DeepEqual(r, rb) {
			t.Fatalf("resumed state differs:\n%+v\n%+v", r, rb)
		}
		if (addErr != nil || err1 != nil) != (r.Classification == ClassError) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Add errors %v, %v, %v but classification %s", addErr, err1, err2, r.Classification)
		}
	})
}

// fuzzLE maps a byte to a bucket boundary: a few shared values, +Inf, NaN (no le), and
// a duplicate-prone small set, so that every bad layout is reachable.
func fuzzLE(b byte) float64 {
	switch b % 8 {
	case 6:
		return math.Inf(1)
	case 7:
		if b > 200 {
			return math.NaN()
		}
		return math.Inf(1)
	}
	return []float64{0.01, 0.1, 0.25, 0.5, 1, 2.5}[int(b%8)]
}

func FuzzHistogramState(f *testing.F) {
	f.Add(byte(0), []byte{3, 1, 10, 3, 14, 6, 20, 3, 1, 9, 3, 12, 6, 20})
	f.Add(byte(1), []byte{2, 1, 10, 6, 5, 2, 1, 3, 6, 9})                  // non-monotone
	f.Add(byte(2), []byte{2, 1, 10, 3, 12, 2, 1, 3, 3, 5})                 // no +Inf
	f.Add(byte(3), []byte{2, 1, 0xFE, 6, 5, 2, 255, 3, 6, 9})              // negative, no le
	f.Add(byte(9), []byte{2, 1, 0xFD, 6, 0xFF, 1, 6, 0, 2, 1, 1, 6, 0xFC}) // fraction, NaN, Inf
	f.Fuzz(func(t *testing.T, specByte byte, data []byte) {
		m := fuzzSpec(KindHistogram, specByte)
		s, err := NewHistogramState(m)
		if err != nil {
			t.Fatal(err)
		}
		cohort := func() []Bucket {
			if len(data) == 0 {
				return nil
			}
			n := int(data[0] % 8)
			data = data[1:]
			var out []Bucket
			for range n {
				if len(data) == 0 {
					break
				}
				le := fuzzLE(data[0])
				var c float64
				c, data = fuzzValue(data[1:])
				out = append(out, Bucket{LE: le, Count: c})
			}
			return out
		}
		var steps []HistogramStep
		for i := 0; len(data) > 0 && i < 100; i++ {
			steps = append(steps, HistogramStep{Time: simStart.Add(time.Duration(i) * simStep), Baseline: cohort(), Canary: cohort()})
		}
		half := len(steps) / 2
		addErr := s.Add(steps[:half])
		blob, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("state does not encode: %v", err)
		}
		var back HistogramState
		if err := json.Unmarshal(blob, &back); err != nil {
			t.Fatal(err)
		}
		err1, err2 := s.Add(steps[half:]), back.Add(steps[half:])
		r := s.Result(m)
		checkSequential(t, r)
		if rb := back.Result(m); !reflect.DeepEqual(r, rb) {
			t.Fatalf("resumed state differs:\n%+v\n%+v", r, rb)
		}
		if (addErr != nil || err1 != nil) != (r.Classification == ClassError) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Add errors %v, %v, %v but classification %s: %s", addErr, err1, err2, r.Classification, r.Reason)
		}
		if len(s.Bounds) > MaxBuckets || len(s.Tests) != len(s.Bounds) {
			t.Fatalf("%d bounds, %d tests", len(s.Bounds), len(s.Tests))
		}
	})
}
