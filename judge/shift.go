package judge

import "math"

// The histogram judge's joint test: every bucket's evidence about one shift of the whole
// latency distribution, in one likelihood ratio.
//
// The boundary tests each look at one boundary: a regression that makes every request a
// little slower moves the share above every boundary, and the best single boundary holds
// only part of the evidence the buckets hold together (Lindon & Malek, NeurIPS 2022, test
// the whole multinomial). Given each bucket's total over both cohorts, E_k, the canary's
// count in the bucket is binomial with θ_k; with the same distribution in both cohorts
// θ_k = θ0 = n_c/(n_b+n_c) in every bucket. The alternative is a proportional-odds shift
// of the baseline's distribution, logit F_c(b) = logit F(b) − δ at every boundary (the
// canary slower for δ > 0), with F estimated from the steps before this one, so that the
// alternative is predictable and the step's likelihood ratio
//
//	Λ_t = Π_k (θ_k(δ)/θ0)^{c_k} ((1−θ_k(δ))/(1−θ0))^{b_k}
//
// has conditional mean 1 when the cohorts are alike, whatever F̂ is. When the canary is
// stochastically faster (H0 of the judge with no tolerance) the mean is at most 1: with
// Poisson bucket counts it is exp(κ Σ_k a_k (p_c(k) − p_b(k))), κ > 0, where
// a_k = θ_k(δ) − θ0 grows with k (a proportional-odds shift has a monotone likelihood
// ratio), and summing by parts that sum is Σ_k (a_k − a_{k−1})(S_c(k) − S_b(k)) ≤ 0.
// So the joint test is an e-process for the judge's H0 when the tolerated ratio is 1;
// with any other tolerance its weight is 0 (the boundary tests judge alone).
//
// The change-point and alternative mixtures, the tempering and the cap are the boundary
// tests' (see ratioTest), on the step's score for δ, L = Σ_k u_k (c_k − E_k θ0) with
// u_k = ∂ logit θ_k/∂δ at 0: its binomial variance is V = θ0(1−θ0) Σ_k u_k² E_k, a
// wander of one cohort's latency inflates it to V(1 + ψV), and ψ is estimated as the
// boundary tests estimate φ (long-run, delayed, around a recent mean; scoreDispersion).

// shiftWeight is the share of each change point's weight the histogram judge bets on the
// joint test, the rest on the boundary tests.
const shiftWeight = 0.5

// shiftTempering is the joint test's discount: the boundary tests' prior and cap, with the
// count judge's safety factor. The joint score adds every bucket's evidence, so a wander
// of one cohort's latency inflates its variance more than any one boundary's; with the
// boundary tests' safety of 2 the eval's healthy canaries whose every signal wanders
// (AR(1), φ = 0.8; latency judged alone) false-failed 1.5% instead of 0.8% without the
// joint test, with 3 they fail 0.7%. Through Prometheus (seed 2, 300 runs) latency +10%
// was caught in 82.0% with 2, 79.3% with 3, 72.7% without the joint test.
var shiftTempering = tempering{prior: 0.02, safety: 3, stepCap: 0.7}

// shiftAlternatives are the joint test's δ, mixed with equal weights: a shift of the log
// odds, where latency ×1.1 on a lognormal of log-sd 0.5–0.9 is δ ≈ 0.2–0.35 (the boundary
// tests' grid, 0.15 to 3, spent most of its weight on shifts no slowdown this small
// makes). Through Prometheus (seed 2, 300 runs) latency +10% 81.3% -> 84.3% with this
// grid, tail-only 76.3% both; the synthetic eval's aa-autocorrelated, latency alone,
// 2,000 runs: 0.5% -> 0.7%.
var shiftAlternatives = [nAlt]float64{0.12, 0.18, 0.27, 0.4, 0.6, 0.9, 1.4}

// expShift[j] is e^shiftAlternatives[j], the odds factor of the shift.
var expShift = expOf(shiftAlternatives)

// shiftSide is one side of the joint test and the share of the weight it carries (0 in
// states stored before the joint test, which resume as the boundary tests alone).
type shiftSide struct {
	Weight float64       `json:"weight"`
	P      changeProcess `json:"p"`
}

// shiftTest is the joint test of a histogram judge. Its alternatives are proportional-odds
// shifts; any family whose canary/baseline ratio of bucket shares grows with the bucket
// would keep the argument above. Lehmann's alternative, S_c(b) = S(b)^(e^−δ), which moves
// the far tail most, was tried beside it (weights 0.4 and 0.3) and caught no more
// tail-only regressions through Prometheus (75.3% of 300 runs with or without it).
type shiftTest struct {
	Up   shiftSide       `json:"up"`
	Down shiftSide       `json:"down"`
	Disp scoreDispersion `json:"dispersion"`
}

// newShiftTest starts the joint test for a spec: a side gets shiftWeight when the spec
// tests it with no tolerance.
func newShiftTest(m MetricSpec) *shiftTest {
	t := &shiftTest{Up: shiftSide{P: newChangeProcess()}, Down: shiftSide{P: newChangeProcess()}}
	if m.Direction != DirectionDecrease && m.AllowedIncrease == 1 {
		t.Up.Weight = shiftWeight
	}
	if m.Direction != DirectionIncrease && m.AllowedDecrease == 1 {
		t.Down.Weight = shiftWeight
	}
	return t
}

// oddsSlope is −∂F_c/∂δ at δ = 0 where the estimate is f.
func oddsSlope(f float64) float64 { return f * (1 - f) }

func (t *shiftTest) skip(logPi float64) {
	t.Up.P.open(logPi)
	t.Down.P.open(logPi)
}

// maxShiftBuckets is MaxBuckets finite boundaries and the +Inf bucket.
const maxShiftBuckets = MaxBuckets + 1

// add folds one step in: b and c are the cohorts' request counts per bucket (one more
// bucket than finite boundaries, the last above them all), p the bucket shares estimated
// from the steps before this one (positive, summing to 1). It returns both sides' log R.
func (t *shiftTest) add(b, c, p []float64, logPi float64, tp tempering, step int) (up, down float64) {
	var nb, nc float64
	for k := range b {
		nb += b[k]
		nc += c[k]
	}
	th0 := nc / (nb + nc)
	// F̂ at each finite boundary, and each bucket's score u_k.
	var cdf, u [maxShiftBuckets]float64
	acc := 0.0
	for k := range len(p) - 1 {
		acc += p[k]
		cdf[k] = min(acc, 1)
	}
	gPrev := 0.0
	for k := range p {
		g := 0.0
		if k < len(p)-1 {
			g = oddsSlope(cdf[k])
		}
		u[k] = (gPrev - g) / p[k]
		gPrev = g
	}
	var score, v float64
	for k := range p {
		e := b[k] + c[k]
		score += u[k] * (c[k] - e*th0)
		v += u[k] * u[k] * e
	}
	v *= th0 * (1 - th0)
	eta := 1.0
	if v > 0 {
		eta = t.Disp.eta(score, v, th0*(1-th0), tp)
	}
	side := func(s *shiftSide, sign float64) float64 {
		if s.Weight == 0 || v == 0 {
			s.P.open(logPi)
			return s.P.logR()
		}
		var llr [nAlt]float64
		for j, d := range shiftAlternatives {
			ed := expShift[j]
			if sign < 0 {
				d, ed = -d, 1/ed
			}
			llr[j] = min(eta*shiftLLR(b, c, p, cdf[:len(p)-1], th0, d, ed), tp.stepCap)
		}
		return s.P.advance(&llr, logPi, step)
	}
	return side(&t.Up, 1), side(&t.Down, -1)
}

// shiftLLR is the step's log likelihood ratio of a proportional-odds shift δ (ed = e^δ,
// the odds factor, passed too) of the bucket shares p (cdf their cumulative sums at the
// finite boundaries) against the same distribution in both cohorts (canary share th0 of the requests): with g_k = q_k/p_k,
// q the shifted shares, θ_k = th0·g_k/(th0·g_k + 1 − th0) and the bucket's term is
// c_k·log g_k − E_k·log(1 + th0(g_k − 1)).
func shiftLLR(b, c, p, cdf []float64, th0, delta, ed float64) float64 {
	// With D(F) = F + (1−F)·e^δ the shifted cumulative share is F/D(F), so bucket k's
	// shifted share is e^δ·p_k/(D_{k−1}·D_k) (D = e^δ below every boundary, 1 above
	// them all): g_k = e^δ/(D_{k−1}·D_k), a division and a log per boundary instead of
	// two divisions per bucket.
	prevD, prevLogD := ed, delta
	sum := 0.0
	for k := range p {
		d, logD := 1.0, 0.0
		if k < len(cdf) {
			d = cdf[k] + (1-cdf[k])*ed
			if c[k] > 0 || (k+1 < len(c) && c[k+1] > 0) {
				logD = math.Log(d)
			}
		}
		if e := b[k] + c[k]; e > 0 {
			g := ed / (prevD * d)
			if c[k] > 0 {
				sum += c[k] * (delta - prevLogD - logD)
			}
			sum -= e * math.Log1p(th0*(g-1))
		}
		prevD, prevLogD = d, logD
	}
	return sum
}

// scoreDispersion estimates ψ, the extra variance of the joint test's score relative to
// its binomial variance V (Var L = V(1 + ψV)), as dispersion estimates φ: from the
// squared standardised residuals and their Bartlett-weighted products with the previous
// longRunLags steps', left out for the newest estimateDelay steps, around the recent
// steps' mean score per unit variance (half-life localHalfLife).
type scoreDispersion struct {
	// longRun's Num is Σ z² − 1, Den Σ V, its residuals z = (L − V·μ̂)/√V.
	longRun
	// LocalScore and LocalVar are the decayed sums of L and V: their ratio is the recent
	// shift, around which the residuals are taken.
	LocalScore float64 `json:"local_score,omitempty"`
	LocalVar   float64 `json:"local_var,omitempty"`
}

// eta returns the tempering exponent for a step with score l and binomial variance v,
// from the previous steps only, then adds the step. v0 = θ0(1−θ0) turns the judge's
// prior φ into a prior ψ (a boundary with E events has V = E·θ0(1−θ0) and inflation
// 1 + Eφ = 1 + ψV).
func (d *scoreDispersion) eta(l, v, v0 float64, tp tempering) float64 {
	e := 1 / (1 + tp.safety*v*d.estimate(v, tp.prior/v0))
	mu := d.LocalScore / (d.LocalVar + 1)
	r := l - v*mu
	z := r / math.Sqrt(v)
	d.push(z*z-1, z, v)
	d.LocalScore = localDecay*d.LocalScore + l
	d.LocalVar = localDecay*d.LocalVar + v
	return e
}

// logMix is log((1−w)·e^a + w·e^b): the boundary tests' mean a mixed with the joint
// test b.
func logMix(a, b, w float64) float64 {
	switch {
	case w == 0:
		return a
	case a <= logZero && b <= logZero:
		return logZero
	}
	m := max(a, b)
	return m + math.Log((1-w)*math.Exp(a-m)+w*math.Exp(b-m))
}
