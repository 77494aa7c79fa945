package promsim

import (
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// The oracle bounds what any judge could reach on a run: it knows the regression's onset
// and effect, and at each look runs the most powerful fixed-horizon test at level α of
// "the cohorts share each step's error rate (latency distribution)" against that effect,
// on the steps from the true onset to the look. Both tests condition on each step's
// margins (each cohort's requests, both cohorts' errors or bucket counts), as the count
// and histogram judges do, so the unknown base error rate, traffic and shared drift are
// no help to it either: given the margins the likelihood ratio is exp(Σ w·x) over the
// canary's counts x, and the test rejects for a large Σ w·x.
//
// For any judge valid at α (whatever its number of looks) and any look t, "the judge
// failed by t" is itself a level-α test at horizon t, so its probability is at most the
// oracle's rejection probability at t: the oracle's share of runs rejected at the last
// look bounds the judge's detection rate, and its share at each look bounds the judge's
// share detected by then. A run the oracle does not reject at the last look is one no
// valid judge is likely to catch either.
//
// Its null is the generator's own healthy model, known to the oracle: errors
// beta-binomial per step and cohort (κ), latency with each cohort's own AR(1) noise, both
// of which the judges' models leave out; the tests allow for them (errorsTest,
// latencyTest), so the oracle's false-alarm rate at any one look stays near α on the
// healthy scenarios (measured: `canaryd eval --backend prometheus --oracle`). "Most
// powerful" is exact for the binomial errors model and holds in the normal approximation
// for the others.

// OracleRun is the oracle's p-values for one run at each look.
type OracleRun struct {
	Scenario string  `json:"scenario"`
	Run      int     `json:"run"`
	Service  Service `json:"service"`
	// Onset is when the regression starts, from the end of the warmup.
	Onset time.Duration `json:"onset"`
	// At is each look's time from the onset (the end of each judged interval after it).
	At []time.Duration `json:"at"`
	// ErrorsP is the conditional test's p-value on the canary's errors at each look
	// (errorsTest); LatencyP the conditional likelihood-ratio test's on its bucket counts
	// (latencyTest), against the scenario's latency effect (+10% for scenarios without
	// one).
	ErrorsP  []float64 `json:"errors_p"`
	LatencyP []float64 `json:"latency_p"`
	// LatencyOneP is the latency test on one boundary per step: the requests above the
	// boundary where the effect moves the share of slower requests most for its noise
	// (the most informative one, chosen from the model), the rest ignored.
	LatencyOneP []float64 `json:"latency_one_boundary_p"`
}

// oracleLatency is the latency effect the oracle tests for in scenarios that have none
// (healthy ones, error regressions): the smallest one issue 14 sets a target for.
const oracleLatency = 1.10

// Oracle runs the oracle on run r of scenario sc laid out by l, with looks at the end of
// each interval after the warmup that ends after the onset.
func Oracle(r Run, sc Scenario, l Layout, interval time.Duration) OracleRun {
	out := OracleRun{Scenario: r.Scenario, Run: r.Index, Service: r.Service, Onset: r.Onset}
	if interval <= 0 {
		return out // no looks
	}
	reg := sc.Regression
	if reg.LatencyFactor <= 1 && reg.TailShare == 0 {
		reg = Regression{LatencyFactor: oracleLatency}
	}
	// Step k covers (Time(k−1), Time(k)] and is regressed when it starts at or after the
	// onset (Generate's rule).
	first := int((l.Lead+l.Warmup+r.Onset)/Step) + 1
	errs := errorsTest{kappa: r.Service.Concentration}
	var lat, one latencyTest
	bounds := Buckets()
	cells := func() []float64 { return make([]float64, len(bounds)+1) }
	p0, p1, means, w, g, hi, lo := cells(), cells(), cells(), cells(), cells(), cells(), cells()
	w1, g1 := cells(), cells()
	const h = 1e-4 // for the derivative in the log-latency
	k := first
	for look := l.Warmup + interval; look <= l.Lifetime; look += interval {
		if look <= l.Warmup+r.Onset {
			continue
		}
		last := l.StepAt(l.Start.Add(look))
		for ; k <= last && k < len(r.Canary.Requests); k++ {
			b, c := &r.Baseline, &r.Canary
			errs.add(c.Requests[k], b.Requests[k], c.Errors[k]+b.Errors[k], c.Errors[k])
			// The weights: log of the effect's cell probabilities over the unchanged
			// ones, at this step's latency (the baseline's: the canary's own would
			// already hold the effect).
			latencyCells(p0, means, bounds, b.LogMedian[k], r.Service.Sigma, 0, 1)
			mu, tail, tf := b.LogMedian[k], reg.TailShare, reg.TailFactor
			if reg.LatencyFactor > 0 {
				mu += math.Log(reg.LatencyFactor)
			}
			latencyCells(p1, means, bounds, mu, r.Service.Sigma, tail, tf)
			latencyCells(hi, means, bounds, b.LogMedian[k]+h, r.Service.Sigma, 0, 1)
			latencyCells(lo, means, bounds, b.LogMedian[k]-h, r.Service.Sigma, 0, 1)
			for i := range w {
				w[i], g[i] = 0, 0
				if p0[i] > 1e-300 && p1[i] > 1e-300 {
					w[i] = math.Log(p1[i] / p0[i])
					g[i] = (hi[i] - lo[i]) / (2 * h) / p0[i]
				}
			}
			lat.add(w, g, c.Buckets[k], b.Buckets[k])
			oneBoundary(w1, g1, p0, p1, hi, lo, h)
			one.add(w1, g1, c.Buckets[k], b.Buckets[k])
		}
		out.At = append(out.At, look-l.Warmup-r.Onset)
		out.ErrorsP = append(out.ErrorsP, errs.pValue())
		out.LatencyP = append(out.LatencyP, lat.pValue())
		out.LatencyOneP = append(out.LatencyOneP, one.pValue())
	}
	return out
}

// oneBoundary sets the weights and log derivatives of the two cells "at most bound j"
// and "above it" on every bucket, for the boundary j whose share below moves most under
// the effect for its binomial noise, (P1 − P0)² / (P0·(1 − P0)). hi and lo are the cells
// at the log-latency ± h.
func oneBoundary(w, g, p0, p1, hi, lo []float64, h float64) {
	best, bestInfo := -1, 0.0
	var c0, c1 float64
	for j := 0; j < len(p0)-1; j++ {
		c0 += p0[j]
		c1 += p1[j]
		if c0 <= 1e-12 || c0 >= 1-1e-12 {
			continue
		}
		if info := (c1 - c0) * (c1 - c0) / (c0 * (1 - c0)); info > bestInfo {
			best, bestInfo = j, info
		}
	}
	for b := range w {
		w[b], g[b] = 0, 0
	}
	if best < 0 {
		return
	}
	var b0, b1, bh, bl float64
	for j := 0; j <= best; j++ {
		b0, b1, bh, bl = b0+p0[j], b1+p1[j], bh+hi[j], bl+lo[j]
	}
	d := (bh - bl) / (2 * h)
	for b := range w {
		if b <= best {
			w[b], g[b] = math.Log(b1/b0), d/b0
		} else {
			w[b], g[b] = math.Log((1-b1)/(1-b0)), -d/(1-b0)
		}
	}
}

// oracleTest says which of the oracle's tests a scenario's regression is for.
func (sc Scenario) oracleTest() string {
	if sc.Regression.ErrorFactor > 1 {
		return "errors"
	}
	return "latency"
}

// P is the p-values of the oracle test that fits the scenario.
func (o OracleRun) P(sc Scenario) []float64 {
	if sc.oracleTest() == "errors" {
		return o.ErrorsP
	}
	return o.LatencyP
}

// errorsTest is the exact stratified conditional test of the canary's errors: given each
// step's canary requests n, baseline requests m and errors e of both, the canary's errors
// are hypergeometric under H0 (one error probability for both cohorts in the step), and
// their sum X over the steps has the convolution of those laws. A larger error
// probability in the canary (odds ratio ψ > 1 in every step) makes a large X likely: the
// likelihood ratio given the margins is ψ^X when ψ is the same in every step, so the test
// "reject for a large X" is the most powerful one at every ψ > 1 (and nearly so when ψ
// drifts a little with the base rate, as it does within the generator's bursts).
//
// The generator's errors are overdispersed (each cohort's per-step error probability is
// Beta(κp, κ(1−p)), κ known to the oracle), which makes the exact test anti-conservative
// where a step has many requests. So the oracle also computes the z-test of the canary's
// excess D = x − e·n/(n+m) with its beta-binomial variance under H0,
// V = nm/N·p(1−p)·(m·f(n) + n·f(m))/N with f(n) = 1 + (n−1)/(κ+1) and p = e/N, weighting
// each step by its signal over its variance; its p-value is the larger of the two, valid
// when either is (the exact one for few requests per step, the z-test for many).
type errorsTest struct {
	// dist is X's null law on lo, lo+1, …; entries below pruneBelow × its largest are
	// cut from both ends (a mass far below any α of interest).
	dist  []float64
	lo    int64
	x     int64 // the canary's errors
	used  bool
	kappa float64
	// num and den are Σ c·D and Σ c²·V, c = 1/((1−p)·g) (the signal over the variance,
	// up to a constant), for the overdispersed z-test.
	num, den float64
}

const pruneBelow = 1e-22

func (t *errorsTest) add(n, m, e, x int64) {
	if e <= 0 || n <= 0 || m <= 0 {
		// No errors, or one cohort took every request: the step's canary count is
		// fixed by its margins and tells nothing.
		if e > 0 && m <= 0 {
			t.lo += e
			t.x += x
		}
		return
	}
	nf, mf, ef := float64(n), float64(m), float64(e)
	total := nf + mf
	if p := ef / total; p < 1 {
		f := func(k float64) float64 { return 1 + (k-1)/(t.kappa+1) }
		g := (mf*f(nf) + nf*f(mf)) / total
		v := nf * mf / total * p * (1 - p) * g
		c := 1 / ((1 - p) * g)
		t.num += c * (float64(x) - ef*nf/total)
		t.den += c * c * v
	}
	lo, pmf := hypergeometric(n, m, e)
	t.x += x
	if !t.used {
		t.dist, t.lo, t.used = pmf, t.lo+lo, true
		return
	}
	out := make([]float64, len(t.dist)+len(pmf)-1)
	for i, a := range t.dist {
		if a == 0 {
			continue
		}
		for j, b := range pmf {
			out[i+j] += a * b
		}
	}
	t.lo += lo
	t.dist, t.lo = prune(out, t.lo)
}

// pValue is the larger of the exact test's and the overdispersed z-test's; 1 without
// evidence.
func (t *errorsTest) pValue() float64 { return math.Max(t.exactP(), t.overdispersedP()) }

// overdispersedP is the z-test's p-value; 1 without evidence.
func (t *errorsTest) overdispersedP() float64 {
	if t.den <= 0 {
		return 1
	}
	return distuv.UnitNormal.Survival(t.num / math.Sqrt(t.den))
}

// exactP is P(X ≥ x) under H0 without overdispersion; 1 without evidence.
func (t *errorsTest) exactP() float64 {
	if !t.used {
		return 1
	}
	i := t.x - t.lo
	switch {
	case i <= 0:
		return 1
	case i >= int64(len(t.dist)):
		return 0
	}
	var tail, all float64
	for j, p := range t.dist {
		all += p
		if int64(j) >= i {
			tail += p
		}
	}
	return math.Min(1, tail/all)
}

// hypergeometric is the law of the canary's errors x given n canary requests, m baseline
// requests and e errors in all: C(n,x)·C(m,e−x)/C(n+m,e) on x = lo, lo+1, …, pruned.
func hypergeometric(n, m, e int64) (int64, []float64) {
	lo, hi := max(0, e-m), min(e, n)
	out := make([]float64, hi-lo+1)
	den := lchoose(n+m, e)
	for x := lo; x <= hi; x++ {
		out[x-lo] = math.Exp(lchoose(n, x) + lchoose(m, e-x) - den)
	}
	p, from := prune(out, lo)
	return from, p
}

func lchoose(n, k int64) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// prune cuts the entries below pruneBelow × the largest from both ends of p (on lo, …).
func prune(p []float64, lo int64) ([]float64, int64) {
	var top float64
	for _, v := range p {
		top = math.Max(top, v)
	}
	cut := top * pruneBelow
	i, j := 0, len(p)
	for i < j-1 && p[i] < cut {
		i++
	}
	for j-1 > i && p[j-1] < cut {
		j--
	}
	return p[i:j], lo + int64(i)
}

// latencyTest is the conditional likelihood-ratio test on bucket counts. Given each
// step's bucket totals t_b of both cohorts (π_b = t_b/N) and the canary's requests n, the
// canary's bucket counts x are multivariate hypergeometric under H0, with covariance
// c·(diag π − ππᵀ), c = n(N−n)/(N−1). An effect that multiplies the canary's cell
// probabilities by exp(ℓ_b) (ℓ the log of the effect's cell probability over the
// unchanged one) moves the conditional mean of y = x − nπ by c·Cov_π·ℓ, locally.
//
// The generator also gives each cohort its own AR(1) log-latency noise (φ noisePhi,
// innovations noiseSigma, known to the oracle), which no conditioning removes: the
// canary's log-latency is the baseline's plus δ_k, an AR(1) with innovation variance
// 2·noiseSigma², which tilts the cells by δ·g (g = ∂ log p/∂μ). The test is the
// generalised least squares one for β = 0 against 1 in "log-tilt = β·ℓ + δ·g" per step,
// Gaussian: each step splits into u = gᵀy (mean A·δ + B·β, variance A) and the part of
// ℓᵀy orthogonal to it, o = ℓᵀy − (B/A)·u (mean and variance C − B²/A, free of δ), with
// A, B, C the step's c·Var_π(g), c·Cov_π(g, ℓ), c·Var_π(ℓ). The o parts add up; u/A
// observes δ + β·B/A with variance 1/A and goes through a Kalman filter over δ (O(1) a
// step). z = μᵀΣ⁻¹y / √(μᵀΣ⁻¹μ), its normal tail the p-value. For a shift of every
// request ℓ is nearly a multiple of g and all the evidence goes through the filter; a
// tail-only effect is mostly in o, which the noise does not reach. The counts are hundreds
// of requests and more over a look, so the normal law is close.
type latencyTest struct {
	started bool
	// The filter: δ's mean given the steps so far (for the data and, with the same gains,
	// for the effect's regressor) and its variance.
	mY, mMu, p float64
	// gap counts the steps without evidence since the last update (δ moves on).
	gap int
	// num and den are μᵀΣ⁻¹y and μᵀΣ⁻¹μ so far.
	num, den float64
}

// filter adds an observation z of δ + β·mu with variance d.
func (t *latencyTest) filter(z, d, mu float64) {
	q := 2 * noiseSigma * noiseSigma
	if !t.started {
		t.started, t.p = true, q/(1-noisePhi*noisePhi)
	} else {
		for range t.gap + 1 {
			t.mY, t.mMu = noisePhi*t.mY, noisePhi*t.mMu
			t.p = noisePhi*noisePhi*t.p + q
		}
	}
	t.gap = 0
	f := t.p + d
	eY, eMu := z-t.mY, mu-t.mMu
	t.num += eMu * eY / f
	t.den += eMu * eMu / f
	k := t.p / f
	t.mY += k * eY
	t.mMu += k * eMu
	t.p *= 1 - k
}

func (t *latencyTest) skip() {
	if t.started {
		t.gap++
	}
}

// add adds one step from the effect's log weights l, the unchanged cells' log derivative
// g in the log-latency, and both cohorts' bucket counts.
func (t *latencyTest) add(l, g []float64, canary, baseline []int64) {
	var n, total int64
	for b := range l {
		n += canary[b]
		total += canary[b] + baseline[b]
	}
	if n == 0 || n == total || total < 2 {
		t.skip()
		return
	}
	nf, tf := float64(n), float64(total)
	var ml, mg float64
	for b := range l {
		pi := float64(canary[b]+baseline[b]) / tf
		ml += pi * l[b]
		mg += pi * g[b]
	}
	var vl, vg, cgl, v, u float64
	for b := range l {
		pi := float64(canary[b]+baseline[b]) / tf
		dl, dg := l[b]-ml, g[b]-mg
		vl += pi * dl * dl
		vg += pi * dg * dg
		cgl += pi * dl * dg
		y := float64(canary[b]) - nf*pi
		v += l[b] * y
		u += g[b] * y
	}
	c := nf * (tf - nf) / (tf - 1)
	a, bb, cc := c*vg, c*cgl, c*vl
	if a <= 1e-12*math.Max(cc, 1e-300) {
		// The cells do not see a shift (every request in one bucket): only o.
		t.num += v
		t.den += cc
		t.skip()
		return
	}
	t.num += v - bb/a*u
	t.den += math.Max(0, cc-bb*bb/a)
	t.filter(u/a, 1/a, bb/a)
}

func (t *latencyTest) pValue() float64 {
	if t.den <= 0 {
		return 1
	}
	return distuv.UnitNormal.Survival(t.num / math.Sqrt(t.den))
}
