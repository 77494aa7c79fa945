package promsim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// TestErrorsExactTail: the exact stratified test's p-value is R's, from
// testdata/oracle_golden.R (dhyper per stratum, convolved by explicit sums).
func TestErrorsExactTail(t *testing.T) {
	type stratum struct{ n, m, e int64 }
	for _, tc := range []struct {
		name   string
		strata []stratum
		x      int64
		want   float64
	}{
		{"one stratum, by hand (70+5)/495", []stratum{{5, 7, 4}}, 3, 75.0 / 495},
		{"two strata", []stratum{{5, 7, 4}, {3, 2, 2}}, 4, 0.26464646464646463},
		{"one stratum, 1,000 requests", []stratum{{200, 800, 30}}, 12, 0.0085154161847781056},
		{"four strata, one without errors", []stratum{{200, 800, 30}, {150, 900, 25}, {10, 40, 0}, {60, 60, 7}}, 22, 0.0043124448804993925},
		{"x below the support", []stratum{{5, 1, 4}}, 2, 1},
		{"far tail", []stratum{{100, 900, 40}, {100, 900, 40}}, 30, 1.3906032119239732e-11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var et errorsTest
			// The canary's errors per stratum only matter through their sum: put them
			// all in the first one.
			for i, s := range tc.strata {
				x := int64(0)
				if i == 0 {
					x = tc.x
				}
				et.add(s.n, s.m, s.e, x)
			}
			if got := et.exactP(); math.Abs(got-tc.want) > 1e-9*tc.want {
				t.Errorf("P(X ≥ %d) = %.17g, R says %.17g", tc.x, got, tc.want)
			}
		})
	}
}

// TestErrorsOverdispersed: the beta-binomial z-test's p-value is R's (the formula of
// errorsTest, computed with pnorm), and the oracle's p-value is the larger of the two
// tests'.
func TestErrorsOverdispersed(t *testing.T) {
	// R: n<-1000; m<-3000; e<-40; x<-20; k<-100; N<-n+m; p<-e/N; f<-function(j) 1+(j-1)/(k+1)
	//    g<-(m*f(n)+n*f(m))/N; V<-n*m/N*p*(1-p)*g; pnorm((x-e*n/N)/sqrt(V), lower.tail=FALSE)
	et := errorsTest{kappa: 100}
	et.add(1000, 3000, 40, 20)
	if got, want := et.overdispersedP(), 0.17825235834460232; math.Abs(got-want) > 1e-12 {
		t.Errorf("one step: %.17g, R says %.17g", got, want)
	}
	if got, want := et.exactP(), 0.0005364033257454628; math.Abs(got-want) > 1e-9*want {
		t.Errorf("one step, exact: %.17g, R's phyper says %.17g", got, want)
	}
	if got := et.pValue(); got != et.overdispersedP() {
		t.Errorf("p-value %v, want the larger, the z-test's %v", got, et.overdispersedP())
	}
	// A second step weighted by its signal over its variance: c = 1/((1−p)·g).
	et.add(50, 50, 3, 3)
	if got, want := et.overdispersedP(), 0.046494280269332534; math.Abs(got-want) > 1e-12 {
		t.Errorf("two steps: %.17g, R says %.17g", got, want)
	}
	// Without overdispersion (κ → ∞) the z-test's variance is the hypergeometric's
	// binomial limit and the exact test is the larger on few errors.
	few := errorsTest{kappa: math.Inf(1)}
	few.add(10, 90, 2, 2)
	if got, want := few.pValue(), 0.1*9.0/99; math.Abs(got-want) > 1e-12 {
		t.Errorf("2 of 2 errors in 10 of 100 requests: p %v, want C(10,2)/C(100,2) = %v", got, want)
	}
}

// TestLatencyGLS: the Kalman filter and the split into u and o give exactly the
// generalised least squares statistic of the whole model, built as one covariance
// matrix (hypergeometric per step, plus the AR(1) noise loaded on every step) and solved.
func TestLatencyGLS(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const steps, cellsN = 5, 4
	var lt latencyTest
	type stepData struct {
		l, g   []float64
		canary []int64
		base   []int64
	}
	var data []stepData
	for k := range steps {
		d := stepData{l: make([]float64, cellsN), g: make([]float64, cellsN), canary: make([]int64, cellsN), base: make([]int64, cellsN)}
		for b := range cellsN {
			d.l[b] = 0.3 * r.NormFloat64()
			d.g[b] = float64(b) - 1.5 + 0.2*r.NormFloat64()
			d.canary[b] = int64(50 + r.IntN(300))
			d.base[b] = int64(100 + r.IntN(900))
		}
		if k == 2 {
			d.canary[3] = 0 // an empty cell in one cohort
		}
		data = append(data, d)
		lt.add(d.l, d.g, d.canary, d.base)
	}
	// The same model as one matrix, each step's last cell dropped (y sums to zero).
	red := cellsN - 1
	dim := steps * red
	sigma := mat.NewSymDense(dim, nil)
	mu, y := mat.NewVecDense(dim, nil), mat.NewVecDense(dim, nil)
	loads := make([][]float64, steps)
	s2 := 2 * noiseSigma * noiseSigma / (1 - noisePhi*noisePhi)
	for k, d := range data {
		var n, total float64
		for b := range cellsN {
			n += float64(d.canary[b])
			total += float64(d.canary[b] + d.base[b])
		}
		c := n * (total - n) / (total - 1)
		pi := make([]float64, cellsN)
		for b := range cellsN {
			pi[b] = float64(d.canary[b]+d.base[b]) / total
		}
		cov := func(i, j int) float64 {
			v := -pi[i] * pi[j]
			if i == j {
				v += pi[i]
			}
			return c * v
		}
		loads[k] = make([]float64, red)
		for i := range red {
			var m, a float64
			for j := range cellsN {
				m += cov(i, j) * d.l[j]
				a += cov(i, j) * d.g[j]
			}
			mu.SetVec(k*red+i, m)
			loads[k][i] = a
			y.SetVec(k*red+i, float64(d.canary[i])-n*pi[i])
			for j := range red {
				sigma.SetSym(k*red+i, k*red+j, cov(i, j))
			}
		}
	}
	for k := range steps {
		for l := range steps {
			for i := range red {
				for j := range red {
					if k*red+i > l*red+j {
						continue
					}
					v := sigma.At(k*red+i, l*red+j) + s2*math.Pow(noisePhi, math.Abs(float64(k-l)))*loads[k][i]*loads[l][j]
					sigma.SetSym(k*red+i, l*red+j, v)
				}
			}
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(sigma) {
		t.Fatal("covariance not positive definite")
	}
	var sy, smu mat.VecDense
	if err := ch.SolveVecTo(&sy, y); err != nil {
		t.Fatal(err)
	}
	if err := ch.SolveVecTo(&smu, mu); err != nil {
		t.Fatal(err)
	}
	num, den := mat.Dot(mu, &sy), mat.Dot(mu, &smu)
	if math.Abs(lt.num-num) > 1e-9*math.Abs(num) || math.Abs(lt.den-den) > 1e-9*den {
		t.Errorf("filter: μᵀΣ⁻¹y %v, μᵀΣ⁻¹μ %v; the matrix: %v, %v", lt.num, lt.den, num, den)
	}
}

// TestOracle: on generated runs, the oracle's looks are at the end of each interval
// after the onset, its false alarms on healthy runs stay near α at the last look (each
// look is a level-α test), and it catches a large regression at once.
func TestOracle(t *testing.T) {
	l := layout()
	byName := func(name string) (int, Scenario) { return scenario(t, name) }
	t.Run("looks", func(t *testing.T) {
		si, sc := byName("errors-x10-anytime")
		for i := range 20 {
			r := Generate(1, si, sc, i, l)
			o := Oracle(r, sc, l, time.Minute)
			want := int((l.Lifetime - l.Warmup - r.Onset) / time.Minute)
			if len(o.At) != want || o.At[0] != time.Minute || o.At[len(o.At)-1] != time.Duration(want)*time.Minute {
				t.Fatalf("run %d onset %v: looks %v, want 1m … %dm", i, r.Onset, o.At, want)
			}
			if len(o.ErrorsP) != want || len(o.LatencyP) != want {
				t.Fatalf("run %d: %d and %d p-values for %d looks", i, len(o.ErrorsP), len(o.LatencyP), want)
			}
		}
		if o := Oracle(Generate(1, si, sc, 0, l), sc, l, 0); len(o.At) != 0 {
			t.Errorf("no interval: looks %v, want none", o.At)
		}
	})
	t.Run("healthy", func(t *testing.T) {
		si, sc := byName("aa")
		const runs = 400
		var errs, lat, one int
		for i := range runs {
			o := Oracle(Generate(1, si, sc, i, l), sc, l, time.Minute)
			if o.ErrorsP[len(o.ErrorsP)-1] <= 0.01 {
				errs++
			}
			if o.LatencyP[len(o.LatencyP)-1] <= 0.01 {
				lat++
			}
			if o.LatencyOneP[len(o.LatencyOneP)-1] <= 0.01 {
				one++
			}
		}
		// α = 1% of 400 is 4; 12 is beyond the binomial's 99.99th percentile.
		if errs > 12 || lat > 12 || one > 12 {
			t.Errorf("healthy runs rejected at the last look: errors test %d, latency test %d, on one boundary %d of %d (α 1%%)", errs, lat, one, runs)
		}
	})
	t.Run("regressed", func(t *testing.T) {
		for _, name := range []string{"errors-x2-busy", "latency+25%"} {
			si, sc := byName(name)
			caught := 0
			for i := range 40 {
				o := Oracle(Generate(1, si, sc, i, l), sc, l, time.Minute)
				if p := o.P(sc); p[len(p)-1] <= 0.01 {
					caught++
				}
			}
			if caught < 34 {
				t.Errorf("%s: the oracle caught %d of 40", name, caught)
			}
		}
	})
}
