package judge

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// histogramTempering is the histogram judge's discount (see tempering). The cap: a
// burst in one cohort alone (a GC pause, a noisy neighbour: every request of a minute
// slower) moves thousands of requests across the boundaries at once, which no
// dispersion estimate made before it can temper; capped at 0.7 a step, 0.2% of healthy
// canaries with such bursts (median ×3 for 4 steps, 1% of steps) false-fail (1.4% with
// a cap of 1, 0% with 0.5, which catches latency +10% in 77% instead of 85%). The prior
// dispersion stays the count judge's 0.02 although a latency wander moves a boundary's
// share by little: with 0.002 (and smaller alternatives than the count judge's) the
// eval's healthy canaries whose every signal wanders (AR(1), φ = 0.8) false-failed 3.3%
// instead of 0.5%. A safety factor of 3 instead of 2 costs the tail-only regressions of
// the first live recording (7 of 11 caught instead of 9).
var histogramTempering = tempering{prior: 0.02, safety: 2, stepCap: 0.7}

// MaxBuckets bounds the finite bucket boundaries a histogram judge tracks, and so the
// size of its state.
const MaxBuckets = 64

// reportQuantiles are the quantiles whose confidence sequences a histogram result shows.
var reportQuantiles = [...]float64{0.5, 0.99}

// quantileMixture is the variance (in requests/4) at which the quantiles' normal-mixture
// confidence sequence is tightest: a thousand requests.
const quantileMixture = 250.0

// Bucket is one cumulative histogram bucket: Count requests took at most LE (+Inf for
// the bucket that counts every request).
type Bucket struct {
	LE    float64 `json:"le"`
	Count float64 `json:"count"`
}

// HistogramStep is one step of a histogram judge: each cohort's bucket counts over the
// step (e.g. sum by (le) (increase(..._bucket[15s]))), in any order. A nil cohort means
// the query returned nothing at that step.
type HistogramStep struct {
	Time     time.Time `json:"time"`
	Baseline []Bucket  `json:"baseline"`
	Canary   []Bucket  `json:"canary"`
}

// ParseBuckets builds a cohort's buckets from the le label values of its series and
// their counts (the same length), naming what is wrong: a series without le, an le that
// is not a number, the same le twice.
func ParseBuckets(le []string, counts []float64) ([]Bucket, error) {
	if len(le) != len(counts) {
		return nil, fmt.Errorf("histogram: %d le values for %d counts", len(le), len(counts))
	}
	out := make([]Bucket, len(le))
	for i, s := range le {
		if s == "" {
			return nil, errors.New("histogram: a bucket series has no le label (the query must keep it: sum by (le) (...))")
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			return nil, fmt.Errorf("histogram: le=%q is not a number", s)
		}
		out[i] = Bucket{LE: v, Count: counts[i]}
	}
	return out, nil
}

// histCohort sums one cohort's counts over the steps used.
type histCohort struct {
	Below []float64 `json:"below"` // requests at most Bounds[k]
	Total float64   `json:"total"`
}

// HistogramState is a histogram judge's evidence so far: like CountState, small (it
// grows with the number of buckets, at most MaxBuckets, never with the steps), JSON,
// and exactly resumable.
//
// The test: for each finite bucket boundary b, the requests slower than b are counted
// per cohort and judged as the count judge judges errors: given the step's total of
// requests above b, the canary's share is binomial with the canary/baseline ratio of
// exceedance rates ρ_b, and a latency drift shared by the cohorts cancels. H0 is the
// stochastic order with a tolerance: ρ_b ≤ allowed_increase at every boundary (the
// canary has at most that many times the baseline's share of requests slower than any
// b). The change-detecting e-processes of the boundaries are averaged, each change
// point's weight split over the boundaries by how informative the steps before it say
// each one is (see weights: a split fixed before the steps it bets on keeps every
// average a test supermartingale), so the judge fails when the average reaches 1/alpha
// with probability at most alpha under H0, over the whole canary and however often it
// is looked at. An equal split spends most of the weight on boundaries that nearly every
// request is below or above (with the default buckets, half of them or more), which
// carry no evidence: log 11 of it, out of the ~11 a regression must gather. A
// regression of the tail only (a few percent of requests slower) moves the exceedance
// ratio of the high boundaries by a large factor, so it is found even when every step's
// p99 moves by less than a bucket. Half of each change point's weight goes instead to a
// joint test of every bucket (see shiftTest), which gathers a slowdown of every request
// from all the buckets at once; a state stored before it resumes without it.
//
// The quantiles (p50, p99) are reported as confidence sequences in bucket terms: each
// boundary's cumulative share gets a normal-mixture confidence sequence (valid when the
// latency distribution drifts: it covers the request-weighted average over the steps),
// with alpha split over boundaries and cohorts; a quantile lies above every boundary
// whose share is surely below q and at or below the first whose share is surely ≥ q.
//
// Defined answers: a cohort missing at a step, or without requests, makes the step
// missing; a bucket series without le, an le that is not a number, no +Inf bucket, a
// count that decreases as le grows, a negative or infinite count, or a step missing a
// tracked boundary is invalid: the step is skipped and the judge says error for the rest
// of the canary, naming the first problem. Counts are rounded like the count judge's.
// The tracked boundaries are those both cohorts have at the first valid step.
type HistogramState struct {
	Version         int       `json:"version"`
	AllowedIncrease float64   `json:"allowed_increase"`
	AllowedDecrease float64   `json:"allowed_decrease"`
	Direction       Direction `json:"direction"` // only the sides it tests are computed
	Horizon         int       `json:"horizon"`

	Bounds []float64 `json:"bounds"` // finite boundaries tracked, ascending

	Last        time.Time `json:"last,omitzero"`
	Steps       int       `json:"steps"`
	Informative int       `json:"informative"`
	Missing     int       `json:"missing,omitempty"`
	Rounded     int       `json:"rounded,omitempty"`
	Invalid     int       `json:"invalid,omitempty"`
	Problem     string    `json:"problem,omitempty"`

	Baseline histCohort `json:"baseline"`
	Canary   histCohort `json:"canary"`
	// Tests holds one boundary's evidence per entry of Bounds.
	Tests []ratioTest `json:"tests"`
	// Joint is the joint test of every bucket (see shiftTest); nil in states stored
	// before it, which resume as the boundary tests alone.
	Joint *shiftTest `json:"joint,omitempty"`
	// UpMax and DownMax track the running maximum of the averaged e-processes.
	UpMax    float64 `json:"up_max"`
	UpPeak   int     `json:"up_peak,omitempty"`
	DownMax  float64 `json:"down_max"`
	DownPeak int     `json:"down_peak,omitempty"`
}

// NewHistogramState starts the evidence of a histogram judge for spec m.
func NewHistogramState(m MetricSpec) (*HistogramState, error) {
	m, err := startSpec(m, KindHistogram)
	if err != nil {
		return nil, err
	}
	return &HistogramState{
		Version:         stateVersion,
		AllowedIncrease: m.AllowedIncrease,
		AllowedDecrease: m.AllowedDecrease,
		Direction:       m.Direction,
		Horizon:         m.Horizon,
		UpMax:           logZero,
		DownMax:         logZero,
		Joint:           newShiftTest(m),
	}, nil
}

// Add folds new steps into the evidence, in time order, as CountState.Add does: stale
// steps are skipped with an error wrapping ErrStaleStep, invalid ones recorded and
// returned. The cost is O(len(steps) × buckets).
func (s *HistogramState) Add(steps []HistogramStep) error {
	var errs []error
	var now stepLogR
	for _, st := range steps {
		if s.Steps > 0 && !st.Time.After(s.Last) {
			errs = append(errs, fmt.Errorf("histogram step %s: %w (%s)",
				st.Time.Format(time.RFC3339), ErrStaleStep, s.Last.Format(time.RFC3339)))
			continue
		}
		s.Last = st.Time
		s.Steps++
		logPi := changeWeight(s.Steps, s.Horizon)
		if err := s.addOne(st, logPi, &now); err != nil {
			s.Invalid++
			if s.Problem == "" {
				s.Problem = err.Error()
			}
			errs = append(errs, err)
			s.skip(logPi)
			s.current(&now)
		}
		s.track(&now)
	}
	return errors.Join(errs...)
}

// stepLogR holds each boundary's current R of both sides (zero for a side not tested),
// and the joint test's log R, as the step left them.
type stepLogR struct {
	up, down           [MaxBuckets]scaled
	jointUp, jointDown float64
}

// current fills now from the tests (zero for a side the state does not test).
func (s *HistogramState) current(now *stepLogR) {
	for k := range s.Tests {
		now.up[k], now.down[k] = s.boundaryR(k)
	}
	now.jointUp, now.jointDown = logZero, logZero
	if s.Joint != nil {
		now.jointUp, now.jointDown = s.Joint.Up.P.logR(), s.Joint.Down.P.logR()
	}
}

// boundaryR is both sides' R of boundary k, zero for a side not tested.
func (s *HistogramState) boundaryR(k int) (up, down scaled) {
	if s.Direction != DirectionDecrease {
		up = s.Tests[k].Up.mean()
	}
	if s.Direction != DirectionIncrease {
		down = s.Tests[k].Down.mean()
	}
	return up, down
}

// combined is each side's statistic: the boundary tests' mean mixed with the joint test
// (logZero for a side the state does not test: it is never decided on).
func (s *HistogramState) combined(now *stepLogR) (up, down float64) {
	k := len(s.Tests)
	up, down = logZero, logZero
	if s.Direction != DirectionDecrease {
		up = logMeanScaled(now.up[:k])
		if s.Joint != nil {
			up = logMix(up, now.jointUp, s.Joint.Up.Weight)
		}
	}
	if s.Direction != DirectionIncrease {
		down = logMeanScaled(now.down[:k])
		if s.Joint != nil {
			down = logMix(down, now.jointDown, s.Joint.Down.Weight)
		}
	}
	return up, down
}

func (s *HistogramState) skip(logPi float64) {
	var w [MaxBuckets]float64
	s.weights(logPi, w[:len(s.Tests)])
	for k := range s.Tests {
		s.Tests[k].skip(w[k])
	}
	if s.Joint != nil && len(s.Tests) > 0 {
		s.Joint.skip(logPi)
	}
}

// uniformWeight is the share of each change point's weight spread evenly over the
// boundaries; the rest goes by boundaryInfo. It keeps every boundary in the test (a
// regression of another shape than a shift of every request, e.g. the tail alone, can
// be strongest where a shift is not) at a cost of at most log 10 for that shape.
const uniformWeight = 0.1

// weights fills lw with each boundary's log change-point weight for the step about to
// be added, logPi + log(K·w_k) with Σ_k w_k = 1, w_k from the steps before it only
// (the cumulative counts in s, not yet holding this step's).
//
// Why any such weights keep the guarantee: the judge's statistic is the mean over the K
// boundaries of R_k = Σ_c π_c·K·w_{k,c}·Π_{t=c..now} Λ_{k,t} (each Λ averaged over the
// alternatives), i.e. Σ_c π_c Σ_k w_{k,c} Π Λ_{k,t}. For a change point c the product
// from c on is a test supermartingale started at c (each step's Λ has conditional mean
// ≤ 1 under H0, given the past and the step's margins), and w_{k,c} is fixed by the
// steps before c, so Σ_k w_{k,c} Π Λ is one too, starting at 1 (a convex combination
// chosen before the bet is a bet). Adding the weight not yet opened, Σ_{c>now} π_c, the
// sum is a supermartingale starting at Σ π_c ≤ 1, and Ville's inequality bounds its
// running maximum as before. Equal weights (w = 1/K) are the judge before weighting:
// a state stored by it resumes with the same meaning.
func (s *HistogramState) weights(logPi float64, lw []float64) {
	k := len(lw)
	n := s.Baseline.Total + s.Canary.Total
	if logPi <= logZero || k < 2 || n == 0 {
		for i := range lw {
			lw[i] = logPi
		}
		return
	}
	// Two estimates of each boundary's information, each normalised, share the weight
	// not spread evenly (see boundaryInfo).
	var g [2][MaxBuckets]float64
	var sum [2]float64
	var logB [MaxBuckets]float64
	for i, b := range s.Bounds {
		logB[i] = math.Log(b) // NaN for a boundary ≤ 0, which boundaryInfo does not use
	}
	for i := range lw {
		for e := range g {
			g[e][i] = s.boundaryInfo(i, n, logB[:k], e == 1)
			sum[e] += g[e][i]
		}
	}
	for i := range lw {
		w := uniformWeight / float64(k)
		for e := range g {
			share := 1 / float64(k)
			if sum[e] > 0 {
				share = g[e][i] / sum[e]
			}
			w += (1 - uniformWeight) / 2 * share
		}
		lw[i] = logPi + math.Log(float64(k)*w)
	}
}

// boundaryInfo is how much evidence boundary i gives, relative to the others, about a
// regression that makes every request a little slower (latency ×s): the share above b
// changes by log s · b·f(b)/S(b), and the conditional binomial's information is about
// N·S(b) of it, so the evidence grows as (b·f(b))²/S(b). F and S are the pooled
// cumulative shares so far (both cohorts, smoothed by half a request); b·f(b), the
// density per unit of log b (per bucket index when a boundary is not positive, as log b
// needs), has two estimates on coarse buckets: the smaller of the two buckets' next to
// b (central false), which does not credit a boundary that nearly every request is
// below with the requests of the bucket under it, and the one over both (central
// true), which keeps more weight on the high boundaries where a regression of the tail
// alone shows. In replays of the Prometheus eval's runs the first alone caught about 2
// points more of latency +10% and 3 fewer of tail-only than the second; half of each
// keeps most of both.
// logB holds the boundaries' logarithms.
func (s *HistogramState) boundaryInfo(i int, n float64, logB []float64, central bool) float64 {
	share := func(j int) float64 {
		switch {
		case j < 0:
			return 0
		case j >= len(s.Bounds):
			return 1
		}
		return (s.Baseline.Below[j] + s.Canary.Below[j] + 0.5) / (n + 1)
	}
	density := func(lo, hi int) float64 {
		if lo < 0 || hi >= len(s.Bounds) {
			return math.Inf(1) // no bucket on that side to bound it
		}
		dx := float64(hi - lo)
		if s.Bounds[lo] > 0 {
			dx = logB[hi] - logB[lo]
		}
		return (share(hi) - share(lo)) / dx
	}
	d := min(density(i-1, i), density(i, i+1))
	if central {
		d = density(max(i-1, 0), min(i+1, len(s.Bounds)-1))
	}
	if math.IsInf(d, 1) || math.IsNaN(d) {
		return 0
	}
	return d * d / (1 - share(i))
}

// track updates the running maxima of the averaged e-processes.
func (s *HistogramState) track(now *stepLogR) {
	k := len(s.Tests)
	if k == 0 {
		return
	}
	u, d := s.combined(now)
	if u > s.UpMax {
		s.UpMax, s.UpPeak = u, s.Steps
	}
	if d > s.DownMax {
		s.DownMax, s.DownPeak = d, s.Steps
	}
}

// cleanBuckets sorts a copy of one cohort's buckets into dst (or a new slice when they
// do not fit) and checks them, returning the rounded cumulative counts, whether any was
// rounded, and whether the cohort is missing. Its errors name the bucket; the caller
// names the step and the cohort.
func cleanBuckets(in, dst []Bucket) (out []Bucket, rounded, missing bool, err error) {
	if len(in) == 0 {
		return nil, false, true, nil
	}
	if len(in) <= len(dst) {
		out = dst[:len(in)]
		copy(out, in)
	} else {
		out = slices.Clone(in)
	}
	for _, b := range out {
		if math.IsNaN(b.LE) {
			return nil, false, false, errors.New("a bucket has no le")
		}
	}
	byLE := func(a, b Bucket) int { return cmp.Compare(a.LE, b.LE) }
	if !slices.IsSortedFunc(out, byLE) { // providers usually return them in order
		slices.SortFunc(out, byLE)
	}
	for i := range out {
		b := &out[i]
		if i > 0 && out[i-1].LE == b.LE {
			return nil, false, false, fmt.Errorf("le=%s appears twice", leText(b.LE))
		}
		switch {
		case math.IsNaN(b.Count):
			missing = true
			continue
		case math.IsInf(b.Count, 0):
			return nil, false, false, fmt.Errorf("le=%s count is %v: not a count", leText(b.LE), b.Count)
		case b.Count < 0:
			return nil, false, false, fmt.Errorf("le=%s count is %v: a negative increment (a counter reset the query did not correct)", leText(b.LE), b.Count)
		case b.Count > MaxCount:
			return nil, false, false, fmt.Errorf("le=%s count is %v: more than %v in one step is not a count", leText(b.LE), b.Count, float64(MaxCount))
		}
		var frac bool
		b.Count, frac = roundCount(b.Count)
		rounded = rounded || frac
		if i > 0 && b.Count < out[i-1].Count && !math.IsNaN(out[i-1].Count) {
			return nil, false, false, fmt.Errorf("non-monotone buckets: le=%s counts %v, less than le=%s's %v (buckets are cumulative)",
				leText(b.LE), b.Count, leText(out[i-1].LE), out[i-1].Count)
		}
	}
	if !math.IsInf(out[len(out)-1].LE, 1) {
		return nil, false, false, errors.New(`no le="+Inf" bucket (it counts every request)`)
	}
	return out, rounded, missing, nil
}

func leText(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (s *HistogramState) addOne(st HistogramStep, logPi float64, now *stepLogR) error {
	// The step's name is only needed for an error: a step that is fine formats nothing.
	at := func() string { return "histogram step " + st.Time.Format(time.RFC3339) }
	var bufB, bufC [MaxBuckets + 1]Bucket
	b, rb, mb, err := cleanBuckets(st.Baseline, bufB[:])
	if err != nil {
		return fmt.Errorf("%s baseline: %w", at(), err)
	}
	c, rc, mc, err := cleanBuckets(st.Canary, bufC[:])
	if err != nil {
		return fmt.Errorf("%s canary: %w", at(), err)
	}
	if mb || mc {
		s.Missing++
		s.skip(logPi)
		s.current(now)
		return nil
	}
	if s.Bounds == nil {
		if err := s.start(b, c); err != nil {
			return fmt.Errorf("%s: %w", at(), err)
		}
	}
	nb, nc := b[len(b)-1].Count, c[len(c)-1].Count
	var buf [2][MaxBuckets]float64
	belowB, belowC := buf[0][:len(s.Bounds)], buf[1][:len(s.Bounds)]
	if le, ok := countsAt(b, s.Bounds, belowB); !ok {
		return fmt.Errorf("%s baseline: no le=%s bucket, which earlier steps had", at(), leText(le))
	}
	if le, ok := countsAt(c, s.Bounds, belowC); !ok {
		return fmt.Errorf("%s canary: no le=%s bucket, which earlier steps had", at(), leText(le))
	}
	if rb || rc {
		s.Rounded++
	}
	if nb == 0 || nc == 0 {
		s.Missing++
		s.skip(logPi)
		s.current(now)
		return nil
	}
	var lw [MaxBuckets]float64
	s.weights(logPi, lw[:len(s.Bounds)])
	if s.Joint != nil {
		s.addJoint(belowB, belowC, nb, nc, logPi, now)
	}
	s.Baseline.Total += nb
	s.Canary.Total += nc
	informative := false
	off := newStepOffsets(nb, nc, s.AllowedIncrease, s.AllowedDecrease, s.Direction)
	for k := range s.Bounds {
		s.Baseline.Below[k] += belowB[k]
		s.Canary.Below[k] += belowC[k]
		x, y := nc-belowC[k], nb-belowB[k]
		if x+y == 0 {
			s.Tests[k].skip(lw[k])
			now.up[k], now.down[k] = s.boundaryR(k)
			continue
		}
		informative = true
		o := ratioObs{x: x, total: x + y, nb: nb, nc: nc}
		s.Tests[k].add(o, &off, s.Direction, lw[k], histogramTempering)
		now.up[k], now.down[k] = s.boundaryR(k)
	}
	if informative {
		s.Informative++
	}
	return nil
}

// addJoint folds the step into the joint test, with the bucket shares of the steps
// before it (both cohorts pooled, half a request added to every bucket so that each
// share is positive: before any step the buckets are equally likely).
func (s *HistogramState) addJoint(belowB, belowC []float64, nb, nc, logPi float64, now *stepLogR) {
	k := len(s.Bounds)
	var buf [3][maxShiftBuckets]float64
	b, c, p := buf[0][:k+1], buf[1][:k+1], buf[2][:k+1]
	n := s.Baseline.Total + s.Canary.Total
	prevB, prevC, prevP := 0.0, 0.0, 0.0
	for i := range k {
		b[i], c[i] = belowB[i]-prevB, belowC[i]-prevC
		pooled := s.Baseline.Below[i] + s.Canary.Below[i]
		p[i] = (pooled - prevP + 0.5) / (n + 0.5*float64(k+1))
		prevB, prevC, prevP = belowB[i], belowC[i], pooled
	}
	b[k], c[k] = nb-prevB, nc-prevC
	p[k] = (n - prevP + 0.5) / (n + 0.5*float64(k+1))
	now.jointUp, now.jointDown = s.Joint.add(b, c, p, logPi, shiftTempering, s.Steps)
}

// start fixes the tracked boundaries: the finite ones both cohorts have. Steps before
// it (all missing or invalid) carry no evidence, so the new tests start at zero, with
// the change-point weight those steps would have opened.
func (s *HistogramState) start(b, c []Bucket) error {
	var bounds []float64
	for _, x := range b[:len(b)-1] {
		if _, ok := countAt(c, x.LE); ok {
			bounds = append(bounds, x.LE)
		}
	}
	switch {
	case len(bounds) == 0:
		return errors.New("the cohorts share no finite bucket boundary: nothing to compare")
	case len(bounds) > MaxBuckets:
		return fmt.Errorf("%d finite bucket boundaries, at most %d are judged", len(bounds), MaxBuckets)
	}
	s.Bounds = bounds
	s.Baseline = histCohort{Below: make([]float64, len(bounds))}
	s.Canary = histCohort{Below: make([]float64, len(bounds))}
	s.Tests = make([]ratioTest, len(bounds))
	for k := range s.Tests {
		s.Tests[k] = newRatioTest()
		for i := 1; i < s.Steps; i++ {
			s.Tests[k].skip(changeWeight(i, s.Horizon))
		}
	}
	if s.Joint != nil {
		for i := 1; i < s.Steps; i++ {
			s.Joint.skip(changeWeight(i, s.Horizon))
		}
	}
	return nil
}

// countsAt fills dst with the cumulative counts at the sorted boundaries bounds, walking
// the sorted buckets bs once; it returns the first boundary bs has no count for.
func countsAt(bs []Bucket, bounds, dst []float64) (float64, bool) {
	j := 0
	for k, le := range bounds {
		for j < len(bs) && bs[j].LE < le {
			j++
		}
		if j == len(bs) || bs[j].LE != le || math.IsNaN(bs[j].Count) {
			return le, false
		}
		dst[k] = bs[j].Count
	}
	return 0, true
}

// countAt finds the cumulative count at boundary le in sorted buckets.
func countAt(bs []Bucket, le float64) (float64, bool) {
	i, ok := slices.BinarySearchFunc(bs, le, func(b Bucket, t float64) int { return cmp.Compare(b.LE, t) })
	if !ok || math.IsNaN(bs[i].Count) {
		return 0, false
	}
	return bs[i].Count, true
}

// Result classifies the evidence so far for spec m, as CountState.Result does.
func (s *HistogramState) Result(m MetricSpec) MetricResult {
	res := MetricResult{Name: m.Name, Group: m.Group, Groups: m.Groups, Muted: m.Muted, Kind: KindHistogram,
		Critical: m.Critical, MustHaveData: m.MustHaveData}
	m, err := checkSpec(m, KindHistogram, s.Version, s.AllowedIncrease, s.AllowedDecrease, s.Direction)
	if err != nil {
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: %v", m.Name, err)
		return res
	}
	seq := SequentialResult{
		Steps: s.Steps, Informative: s.Informative, Missing: s.Missing,
		Rounded: s.Rounded, Invalid: s.Invalid, Confidence: 1 - m.Alpha,
	}
	used := s.Steps - s.Missing - s.Invalid
	res.Baseline = CohortSummary{N: used, Missing: s.Missing}
	res.Canary = CohortSummary{N: used, Missing: s.Missing}
	var high, low bool
	if len(s.Tests) > 0 {
		var now stepLogR
		s.current(&now)
		n := len(s.Tests)
		up, down := sides(m.Direction, m.Alpha)
		nowUp, nowDown := s.combined(&now)
		u := sideEvidence{logMax: s.UpMax, logNow: nowUp, peak: s.UpPeak}
		d := sideEvidence{logMax: s.DownMax, logNow: nowDown, peak: s.DownPeak}
		high, low = decide(u, d, up, down, &seq)
		k := strongest(now.up[:n])
		if seq.Side == DirectionDecrease {
			k = strongest(now.down[:n])
		}
		t := &s.Tests[k]
		seq.Boundary = s.Bounds[k]
		seq.Dispersion = t.Disp.phi(0, histogramTempering.prior)
		if est, ok := t.Disp.ratio(); ok {
			seq.Estimate = min(est, math.MaxFloat64)
		}
		if s.Baseline.Total > 0 && s.Canary.Total > 0 {
			seq.BaselineRate = 1 - s.Baseline.Below[k]/s.Baseline.Total
			seq.CanaryRate = 1 - s.Canary.Below[k]/s.Canary.Total
		}
		diff := seq.CanaryRate - seq.BaselineRate
		high = high && diff > m.AllowedDelta
		low = low && -diff > m.AllowedDelta
		seq.Quantiles = s.quantiles(m.Alpha)
		res.Baseline.Median = seq.Quantiles[0].Baseline.Estimate
		res.Canary.Median = seq.Quantiles[0].Canary.Estimate
	}
	res.Sequential = seq

	if settle(&res, m.Name, s.Problem, s.Invalid, s.Steps, s.Missing, s.Baseline.Total > 0 && s.Canary.Total > 0, high, low) {
		return res
	}
	res.Reason = histogramReason(m, s, &res)
	return res
}

// strongest is the boundary whose current e-process is largest.
func strongest(v []scaled) int {
	best, top := 0, logZero
	for k := range v {
		if l := v[k].log(); l > top {
			best, top = k, l
		}
	}
	return best
}

// quantiles brackets the report's quantiles of each cohort by bucket boundaries.
func (s *HistogramState) quantiles(alpha float64) []QuantileInterval {
	// Each boundary of each cohort gets alpha/(2K): all brackets hold together.
	a := alpha / float64(2*len(s.Bounds))
	out := make([]QuantileInterval, len(reportQuantiles))
	for i, q := range reportQuantiles {
		out[i] = QuantileInterval{Q: q,
			Baseline: bracket(s.Bounds, &s.Baseline, q, a),
			Canary:   bracket(s.Bounds, &s.Canary, q, a)}
	}
	return out
}

// bracket bounds quantile q of one cohort. The share of requests at most b, summed
// over requests with time-varying probabilities, is a sum of independent [0,1]
// increments: its deviation from the summed probabilities has a normal-mixture
// confidence sequence (variance proxy 1/4 per request), valid at every step.
func bracket(bounds []float64, c *histCohort, q, alpha float64) BucketBracket {
	n := c.Total
	if n == 0 {
		return BucketBracket{HighUnbounded: true}
	}
	v := n/4 + quantileMixture
	r := math.Sqrt(2*v*math.Log(math.Sqrt(v/quantileMixture)/alpha)) / n
	br := BucketBracket{HighUnbounded: true}
	for k, le := range bounds {
		f := c.Below[k] / n
		if f+r < q {
			br.Low = le
		}
		if f-r >= q {
			br.High, br.HighUnbounded = le, false
			break
		}
	}
	br.Estimate = bucketQuantile(bounds, c, q)
	br.Estimate = max(br.Estimate, br.Low)
	if !br.HighUnbounded {
		br.Estimate = min(br.Estimate, br.High)
	}
	return br
}

// bucketQuantile interpolates quantile q linearly within its bucket, as Prometheus'
// histogram_quantile does (the lowest bucket starts at 0 when its boundary is positive;
// a quantile in the +Inf bucket is the largest finite boundary).
func bucketQuantile(bounds []float64, c *histCohort, q float64) float64 {
	rank := q * c.Total
	prevLE, prevCount := 0.0, 0.0
	if len(bounds) > 0 && bounds[0] <= 0 {
		prevLE = bounds[0]
	}
	for k, le := range bounds {
		if c.Below[k] >= rank {
			if c.Below[k] == prevCount {
				return le
			}
			return prevLE + (le-prevLE)*(rank-prevCount)/(c.Below[k]-prevCount)
		}
		prevLE, prevCount = le, c.Below[k]
	}
	return bounds[len(bounds)-1]
}

func histogramReason(m MetricSpec, s *HistogramState, res *MetricResult) string {
	q := res.Sequential
	unit := m.Unit
	if unit == "" {
		unit = "seconds"
	}
	b := make([]byte, 0, 256)
	b = append(append(append(b, "canary "...), m.Name...), ": "...)
	b = append(appendValue(b, q.CanaryRate, "ratio"), " of canary requests above "...)
	b = append(appendValue(b, q.Boundary, unit), " vs "...)
	b = append(appendValue(b, q.BaselineRate, "ratio"), " of baseline"...)
	if q.Estimate > 0 {
		b = append(appendRatio(append(b, " (ratio "...), q.Estimate), ')')
	}
	b = appendTrim(append(b, ", e-value "...), q.EValue)
	b = appendTrim(append(b, " of "...), q.Threshold)
	b = append(strconv.AppendInt(append(b, " over "...), int64(q.Steps), 10), " steps"...)
	if s.Joint != nil {
		side := &s.Joint.Up
		if q.Side == DirectionDecrease {
			side = &s.Joint.Down
		}
		if side.Weight > 0 {
			b = appendTrim(append(b, "; at most "...), expCapped(math.Log(side.Weight)+side.P.LogMax))
			b = append(b, " of it from every bucket's shift"...)
		}
	}
	for _, qi := range q.Quantiles {
		b = append(appendTrim(append(b, "; p"...), 100*qi.Q), " canary "...)
		b = append(appendBracket(b, qi.Canary, unit), " vs "...)
		b = appendBracket(b, qi.Baseline, unit)
	}
	switch res.Classification {
	case ClassHigh:
		b = append(appendRatio(append(b, "; slower than tolerated ("...), m.AllowedIncrease), "), evidence peaked at step "...)
		b = strconv.AppendInt(b, int64(q.PeakStep), 10)
	case ClassLow:
		b = append(appendRatio(append(b, "; faster than tolerated ("...), m.AllowedDecrease), "), evidence peaked at step "...)
		b = strconv.AppendInt(b, int64(q.PeakStep), 10)
	}
	if s.Missing > 0 {
		b = append(strconv.AppendInt(append(b, " ("...), int64(s.Missing), 10), " steps missing)"...)
	}
	return string(b)
}

// appendBracket appends a quantile's estimate and bracket: "12 ms (10 ms..25 ms)".
func appendBracket(dst []byte, br BucketBracket, unit string) []byte {
	dst = append(appendValue(dst, br.Estimate, unit), " ("...)
	if br.HighUnbounded {
		return append(appendValue(append(dst, "> "...), br.Low, unit), ')')
	}
	dst = append(appendValue(dst, br.Low, unit), ".."...)
	return append(appendValue(dst, br.High, unit), ')')
}
