package judge

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// shiftCase is a bucket layout the joint test's exact checks run on.
type shiftCase struct {
	name string
	p    []float64 // the estimated bucket shares (sum 1)
	th0  float64   // the canary's share of the step's requests
}

var shiftCases = []shiftCase{
	{"two buckets, small canary", []float64{0.7, 0.3}, 0.05},
	{"default-like buckets, even split", []float64{0.01, 0.04, 0.15, 0.3, 0.25, 0.15, 0.06, 0.03, 0.007, 0.002, 0.0009, 0.0001}, 0.5},
	{"a near-empty top bucket, 20% canary", []float64{0.2, 0.5, 0.29, 0.009, 0.001}, 0.2},
}

func cumulative(p []float64) []float64 {
	out := make([]float64, len(p)-1)
	acc := 0.0
	for k := range out {
		acc += p[k]
		out[k] = acc
	}
	return out
}

// bucketTerm is e^(bucket k's term of shiftLLR) for x canary and e−x baseline requests
// in bucket k and none elsewhere.
func bucketTerm(sc shiftCase, k int, x, e, delta float64) float64 {
	b, c := make([]float64, len(sc.p)), make([]float64, len(sc.p))
	b[k], c[k] = e-x, x
	return math.Exp(shiftLLR(b, c, sc.p, cumulative(sc.p), sc.th0, delta, math.Exp(delta)))
}

// TestShiftLLRHasMeanOneWhenTheCohortsAreAlike: with the same distribution in both
// cohorts each bucket's canary count is binomial(E_k, th0) given the bucket's total, and
// the joint likelihood ratio's conditional mean, computed exactly by summing over every
// count, is 1 for every alternative and every estimated shape (the estimate may be
// wrong: the guarantee does not depend on it).
func TestShiftLLRHasMeanOneWhenTheCohortsAreAlike(t *testing.T) {
	for _, sc := range shiftCases {
		t.Run(sc.name, func(t *testing.T) { testMeanOne(t, sc) })
	}
}

func testMeanOne(t *testing.T, sc shiftCase) {
	for _, d := range altLogRatios {
		for _, delta := range []float64{d, -d} {
			mean := 1.0
			for k := range sc.p {
				e := float64(3 + 7*k%11) // a few requests per bucket
				bin := distuv.Binomial{N: e, P: sc.th0}
				sum := 0.0
				for x := 0.0; x <= e; x++ {
					sum += bin.Prob(x) * bucketTerm(sc, k, x, e, delta)
				}
				mean *= sum
			}
			if math.Abs(mean-1) > 1e-9 {
				t.Errorf("δ %v: conditional mean %v, want 1", delta, mean)
			}
		}
	}
}

// TestShiftLLRUnderStochasticOrder: with each bucket's requests Poisson (canary n_c·q_k,
// baseline n_b·p_k), the joint likelihood ratio of a slowdown has mean
// exp(Σ_k μ_k (r_k − 1)), r_k the mean of one request's factor. It must be at most 1
// when the canary is stochastically faster, whatever its shape (a shift, a lighter tail,
// a mixture), and above 1 when it is slower: the judge's H0 with no tolerance.
func TestShiftLLRUnderStochasticOrder(t *testing.T) {
	shift := func(p []float64, delta float64) []float64 { // proportional odds
		cdf := cumulative(p)
		q := make([]float64, len(p))
		prev := 0.0
		for k := range q {
			fc := 1.0
			if k < len(cdf) {
				fc = cdf[k] / (cdf[k] + (1-cdf[k])*math.Exp(delta))
			}
			q[k], prev = fc-prev, fc
		}
		return q
	}
	slowTail := func(p []float64) []float64 { // a tenth of the second-highest bucket's requests one bucket up
		q := append([]float64(nil), p...)
		n := len(q)
		q[n-1], q[n-2] = q[n-1]+q[n-2]/10, q[n-2]*0.9
		return q
	}
	lighterTail := func(p []float64) []float64 { // the top buckets' requests moved to the lowest
		q := append([]float64(nil), p...)
		n := len(q)
		moved := q[n-1]/2 + q[n-2]/2
		q[n-1], q[n-2], q[0] = q[n-1]/2, q[n-2]/2, q[0]+moved
		return q
	}
	for _, sc := range shiftCases {
		canaries := []struct {
			name   string
			q      []float64
			slower bool
		}{
			{"faster by a shift", shift(sc.p, -0.3), false},
			{"faster in the tail only", lighterTail(sc.p), false},
			{"alike", sc.p, false},
			{"slower by a shift", shift(sc.p, 0.3), true},
			{"slower in the tail only", slowTail(sc.p), true},
		}
		for _, cn := range canaries {
			t.Run(sc.name+"/"+cn.name, func(t *testing.T) {
				nc, nb := sc.th0*1000, (1-sc.th0)*1000
				for _, d := range altLogRatios {
					logMean := 0.0
					for k := range sc.p {
						mu := nc*cn.q[k] + nb*sc.p[k]
						theta := nc * cn.q[k] / mu
						r := theta*bucketTerm(sc, k, 1, 1, d) + (1-theta)*bucketTerm(sc, k, 0, 1, d)
						logMean += mu * (r - 1)
					}
					if cn.slower != (logMean > 1e-12) {
						t.Errorf("δ %v: log mean %v (slower canary: %v)", d, logMean, cn.slower)
					}
				}
			})
		}
	}
}

// TestShiftWeights: the joint test is bet on only for a side tested with no tolerance.
func TestShiftWeights(t *testing.T) {
	cases := []struct {
		name     string
		m        MetricSpec
		up, down float64
	}{
		{"increase", MetricSpec{Name: "l", Kind: KindHistogram}, 1, 0},
		{"either", MetricSpec{Name: "l", Kind: KindHistogram, Direction: DirectionEither}, 1, 1},
		{"decrease", MetricSpec{Name: "l", Kind: KindHistogram, Direction: DirectionDecrease}, 0, 1},
		{"a tolerated increase", MetricSpec{Name: "l", Kind: KindHistogram, AllowedIncrease: 1.2}, 0, 0},
		{"either with a tolerated decrease", MetricSpec{Name: "l", Kind: KindHistogram, Direction: DirectionEither, AllowedDecrease: 0.8}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewHistogramState(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if s.Joint == nil {
				t.Fatal("no joint test")
			}
			if jt := s.Joint; jt.Up.Weight != tc.up*shiftWeight || jt.Down.Weight != tc.down*shiftWeight {
				t.Errorf("weights up %v down %v, want %v and %v", jt.Up.Weight, jt.Down.Weight, tc.up*shiftWeight, tc.down*shiftWeight)
			}
		})
	}
}

// TestHistogramStateStoredBeforeTheJointTest: a state stored before the joint test has
// no "joint" key; it resumes as the boundary tests alone, step for step what that
// judge gave, and a new state's joint test catches a slowdown of every request sooner.
func TestHistogramStateStoredBeforeTheJointTest(t *testing.T) {
	m := MetricSpec{Name: "latency", Kind: KindHistogram}
	s := newSim(61)
	sc := s.randomHistScenario(120)
	sc.rate, sc.share, sc.scale = 40, 0.2, 1.1
	steps := s.histSteps(sc)

	boundaryOnly, _ := NewHistogramState(m)
	boundaryOnly.Joint = nil
	stored, _ := NewHistogramState(m)
	stored.Joint = nil
	joint, _ := NewHistogramState(m)
	failAt := map[string]int{}
	for i := 0; i < len(steps); i += 4 {
		for name, st := range map[string]*HistogramState{"boundary only": boundaryOnly, "joint": joint} {
			if err := st.Add(steps[i : i+4]); err != nil {
				t.Fatal(err)
			}
			if _, ok := failAt[name]; !ok && st.Result(m).Failed() {
				failAt[name] = i + 4
			}
		}
		if err := stored.Add(steps[i : i+4]); err != nil {
			t.Fatal(err)
		}
		blob, _ := json.Marshal(stored)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(blob, &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["joint"]; ok {
			t.Fatal("a state without the joint test stored a joint key")
		}
		var back HistogramState
		if err := json.Unmarshal(blob, &back); err != nil {
			t.Fatal(err)
		}
		stored = &back
		if a, b := boundaryOnly.Result(m), stored.Result(m); !reflect.DeepEqual(a, b) {
			t.Fatalf("after step %d the stored state differs from the boundary tests alone:\n%+v\n%+v", i+4, a, b)
		}
	}
	t.Logf("latency +10%% at 8 canary req/s: failed at step %d with the joint test, %d without (0: never)", failAt["joint"], failAt["boundary only"])
	if failAt["joint"] == 0 || (failAt["boundary only"] != 0 && failAt["joint"] >= failAt["boundary only"]) {
		t.Errorf("joint test failed at step %d, the boundary tests alone at %d: want sooner", failAt["joint"], failAt["boundary only"])
	}
}
