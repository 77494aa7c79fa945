package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// ErrEmptySample is returned when a cohort has no points.
var ErrEmptySample = errors.New("empty sample")

// rootTol is the tol.root the answers converge to (R's default, 1e-4, is an absolute
// tolerance larger than the whole range of latency differences in seconds).
const rootTol = 1e-12

// exactLimit: R uses the exact distribution when both samples are smaller than this.
const exactLimit = 50

// Scratch holds the buffers of a Mann-Whitney test so that repeated calls allocate
// nothing once the buffers have grown to the largest samples seen. A Scratch is not safe
// for concurrent use; give each goroutine its own (the zero value is ready).
type Scratch struct {
	x, y  []float64 // sorted copies: x the canary, y the baseline (R's argument order)
	dist  wilcoxDist
	dbuf  []u128
	sel   pairSelector
	clean [2][]float64 // Classify's cleaned cohorts
}

// MannWhitney compares two cohorts as R's
// wilcox.test(canary, baseline, conf.int=TRUE, conf.level=confidence, correct=TRUE,
// tol.root=1e-12) does, with one difference: the estimate always lies in its interval
// (see MannWhitneyResult.Estimate). It allocates its scratch space; see
// Scratch.MannWhitney to reuse it.
func MannWhitney(baseline, canary []float64, confidence float64) (MannWhitneyResult, error) {
	var s Scratch
	return s.MannWhitney(baseline, canary, confidence)
}

// MannWhitney is the allocation-free form of the package function: the same answers,
// with buffers kept in s between calls.
func (s *Scratch) MannWhitney(baseline, canary []float64, confidence float64) (MannWhitneyResult, error) {
	if !(confidence > 0 && confidence < 1) {
		return MannWhitneyResult{}, fmt.Errorf("mann-whitney: confidence %v must be in (0, 1)", confidence)
	}
	if len(baseline) == 0 {
		return MannWhitneyResult{}, fmt.Errorf("mann-whitney: baseline: %w", ErrEmptySample)
	}
	if len(canary) == 0 {
		return MannWhitneyResult{}, fmt.Errorf("mann-whitney: canary: %w", ErrEmptySample)
	}
	if err := checkFinite("baseline", baseline); err != nil {
		return MannWhitneyResult{}, err
	}
	if err := checkFinite("canary", canary); err != nil {
		return MannWhitneyResult{}, err
	}
	s.x = append(s.x[:0], canary...)
	s.y = append(s.y[:0], baseline...)
	slices.Sort(s.x)
	slices.Sort(s.y)
	x, y := s.x, s.y
	nx, ny := float64(len(x)), float64(len(y))

	res := MannWhitneyResult{NBaseline: len(y), NCanary: len(x), Confidence: confidence}
	rankSum, tieTerm, ties := rankSumTies(x, y, 0)
	res.U = rankSum - nx*(nx+1)/2
	alpha := 1 - confidence
	s.sel.reset(x, y)
	nm := len(x) * len(y)

	if len(x) < exactLimit && len(y) < exactLimit && !ties {
		res.Method = MethodExact
		s.dbuf = s.dist.build(len(x), len(y), s.dbuf)
		var p float64
		if res.U > nx*ny/2 {
			p = s.dist.sf(res.U - 1)
		} else {
			p = s.dist.cdf(res.U)
		}
		res.PValue = min(2*p, 1)

		qu := s.dist.quantile(alpha / 2)
		if qu == 0 {
			qu = 1
		}
		ql := nm - qu
		res.CILow = s.sel.kth(qu)
		res.CIHigh = s.sel.kth(ql + 1)
		achieved := 2 * s.dist.cdf(float64(qu-1))
		if achieved-alpha > alpha/2 {
			res.Confidence = 1 - achieved
		}
		res.Estimate = s.medianDiff(nm)
		return checkOverflow(res)
	}

	res.Method = MethodNormal
	sigma := wilcoxSigma(nx, ny, tieTerm)
	if sigma == 0 {
		// Every point of both cohorts is the same value: no shift, nothing to test. R
		// answers NaN here; a defined "no difference" is what a judge needs.
		res.PValue = 1
		return res, nil
	}
	z := res.U - nx*ny/2
	z = (z - sign(z)*0.5) / sigma
	norm := distuv.UnitNormal
	// 2·min(Φ(z), 1−Φ(z)) = 2·Φ(−|z|), which keeps tiny p-values instead of 1−1.
	res.PValue = 2 * norm.CDF(-math.Abs(z))

	mumin := x[0] - y[len(y)-1]
	mumax := x[len(x)-1] - y[0]
	if mumin == mumax {
		// All differences are one value (constant cohorts): it is the shift and both
		// bounds. R's root finder cannot start on an empty bracket and stops with an error.
		res.Estimate, res.CILow, res.CIHigh = mumin, mumin, mumin
		return checkOverflow(res)
	}
	baseTies := tieTermOf(x) + tieTermOf(y)
	w := func(d float64, correct bool) float64 {
		dz, tt := shiftedStat(x, y, d, baseTies)
		dz -= nx * ny / 2
		corr := 0.0
		if correct {
			corr = sign(dz) * 0.5
		}
		return (dz - corr) / wilcoxSigma(nx, ny, tt)
	}
	wMin, wMax := w(mumin, true), w(mumax, true)
	// Between two consecutive differences no x − d ties with a y, so W(d)'s tie
	// correction there counts the ties within each cohort only: not sigma, which also
	// counts the ties between the cohorts at d = 0 and so is smaller on tied data.
	sigmaOpen := wilcoxSigma(nx, ny, baseTies)
	res.CILow = s.normalBound(norm.Quantile(1-alpha/2), wMin, wMax, sigmaOpen)
	res.CIHigh = s.normalBound(norm.Quantile(alpha/2), wMin, wMax, sigmaOpen)

	wNoCorr := func(d float64) float64 { return w(d, false) }
	fLo, fHi := wNoCorr(mumin), wNoCorr(mumax)
	if fLo*fHi > 0 {
		return res, fmt.Errorf("mann-whitney: shift estimate: no sign change between %g and %g", mumin, mumax)
	}
	res.Estimate = zeroin(wNoCorr, mumin, mumax, fLo, fHi, rootTol, 1000)
	if res.Estimate < res.CILow || res.Estimate > res.CIHigh {
		// R's root can stop up to its tolerance outside an interval that collapsed onto
		// the middle differences (most pairs tied: [0, 0] with a root at 6e-13). The
		// estimate is then the Hodges-Lehmann median of the differences, as in the exact
		// branch: the middle order statistics, which the interval always contains.
		res.Estimate = min(max(s.medianDiff(nm), res.CILow), res.CIHigh)
	}
	return checkOverflow(res)
}

// checkOverflow refuses results whose differences left float64's range (values near
// ±1.8e308), rather than report an infinite shift.
func checkOverflow(res MannWhitneyResult) (MannWhitneyResult, error) {
	if !isFinite(res.Estimate) || !isFinite(res.CILow) || !isFinite(res.CIHigh) {
		return res, errors.New("mann-whitney: values too large: their differences overflow float64")
	}
	return res, nil
}

// normalBound is the point where R's standardised, continuity-corrected W(d) crosses zq,
// with R's rule at the ends of [mumin, mumax]. Between the pairwise differences W(d) is
// a step function of how many differences exceed d, so the crossing is an order
// statistic of the differences: it is selected exactly instead of searched for. R's
// uniroot, run to convergence (tol.root = 1e-12), stops within its tolerance of this
// same point.
func (s *Scratch) normalBound(zq, wMin, wMax, sigma float64) float64 {
	nx, ny := len(s.x), len(s.y)
	if wMin-zq <= 0 {
		return s.x[0] - s.y[ny-1]
	}
	if wMax-zq >= 0 {
		return s.x[nx-1] - s.y[0]
	}
	nm := nx * ny
	half := float64(nm) / 2
	// Smallest count g of differences above d for which W(d) > zq.
	above := func(g int) bool {
		dz := float64(g) - half
		return (dz-sign(dz)*0.5)/sigma > zq
	}
	lo, hi := 0, nm // above(hi) holds since W(mumin) > zq; find the first g that does
	for lo < hi {
		mid := lo + (hi-lo)/2
		if above(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	// R decides the ends with the exact W at mumin and mumax, ties included; the counts
	// above assume none, so at the ends they may disagree by a tie: stay in the range.
	return s.sel.kth(min(max(nm-lo+1, 1), nm))
}

// superiority is the rank test's effect, the probability of superiority U/(n·m): the
// share of the pairs (canary point, baseline point) in which the canary is higher, ties
// counting half; 1/2 when the cohorts do not differ. lo and hi bound it at confidence
// with the normal approximation of U the p-value uses (tie and continuity correction at
// shift 0), so that lo > 1/2 exactly when the two-sided test rejects upwards. It reads
// the sorted cohorts the last MannWhitney call left in s.
func (s *Scratch) superiority(u, confidence float64) (ps, lo, hi float64) {
	nx, ny := float64(len(s.x)), float64(len(s.y))
	nm := nx * ny
	_, tieTerm, _ := rankSumTies(s.x, s.y, 0)
	half := distuv.UnitNormal.Quantile(1-(1-confidence)/2) * wilcoxSigma(nx, ny, tieTerm)
	return u / nm, (u - 0.5 - half) / nm, (u + 0.5 + half) / nm
}

// medianDiff is median(outer(x, y, "-")) computed by selection.
func (s *Scratch) medianDiff(nm int) float64 {
	if nm%2 == 1 {
		return s.sel.kth((nm + 1) / 2)
	}
	a := s.sel.kth(nm / 2)
	b := s.sel.nextAfter(a, nm/2)
	if m := (a + b) / 2; !math.IsInf(m, 0) {
		return m
	}
	return a/2 + b/2
}

// rankSumTies merges sorted x − d and sorted y and returns the rank sum of the x points
// (average ranks for ties, as R's rank), the tie term Σ(t³ − t) over groups of equal
// values, and whether any tie exists.
func rankSumTies(x, y []float64, d float64) (rankSum, tieTerm float64, ties bool) {
	i, j, pos := 0, 0, 0
	n, m := len(x), len(y)
	for i < n || j < m {
		var v float64
		switch {
		case j == m:
			v = x[i] - d
		case i == n:
			v = y[j]
		default:
			v = min(x[i]-d, y[j])
		}
		cx, cy := 0, 0
		for i < n && x[i]-d == v {
			cx++
			i++
		}
		for j < m && y[j] == v {
			cy++
			j++
		}
		t := cx + cy
		if cx > 0 {
			rankSum += float64(cx) * (float64(pos) + float64(t+1)/2)
		}
		if t > 1 {
			ties = true
			ft := float64(t)
			tieTerm += ft*ft*ft - ft
		}
		pos += t
	}
	return rankSum, tieTerm, ties
}

// shiftedStat is the Mann-Whitney statistic of x − d against y, Σ_i #(y < x_i − d) plus
// half the ties, and the tie term of the merged sample, the two things R's W(d) ranks
// the merged sample for. One staircase walk counts them; only when x − d ties with y or
// rounding merges distinct x values does the tie term need the full merge.
func shiftedStat(x, y []float64, d, baseTies float64) (stat, tieTerm float64) {
	m := len(y)
	lt, le := 0, 0 // y[:lt] < x_i − d, y[:le] <= x_i − d
	var below, equal int
	prev := math.NaN()
	for i, xi := range x {
		v := xi - d
		if v == prev && xi != x[i-1] {
			rs, tt, _ := rankSumTies(x, y, d)
			return rs - float64(len(x))*float64(len(x)+1)/2, tt
		}
		prev = v
		for lt < m && y[lt] < v {
			lt++
		}
		le = max(le, lt)
		for le < m && y[le] <= v {
			le++
		}
		below += lt
		equal += le - lt
	}
	if equal > 0 {
		rs, tt, _ := rankSumTies(x, y, d)
		return rs - float64(len(x))*float64(len(x)+1)/2, tt
	}
	return float64(below), baseTies
}

// tieTermOf is Σ(t³ − t) over the groups of equal values of a sorted sample.
func tieTermOf(v []float64) float64 {
	var term float64
	for i := 0; i < len(v); {
		j := i + 1
		for j < len(v) && v[j] == v[i] {
			j++
		}
		if t := float64(j - i); t > 1 {
			term += t*t*t - t
		}
		i = j
	}
	return term
}

// wilcoxSigma is the standard deviation of U under the null, with R's tie correction.
func wilcoxSigma(nx, ny, tieTerm float64) float64 {
	return math.Sqrt((nx * ny / 12) * ((nx + ny + 1) - tieTerm/((nx+ny)*(nx+ny-1))))
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func checkFinite(name string, v []float64) error {
	for i, f := range v {
		if !isFinite(f) {
			return fmt.Errorf("mann-whitney: %s[%d] is %v: remove or replace missing points first", name, i, f)
		}
	}
	return nil
}
