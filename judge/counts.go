package judge

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	// KindCounts judges the canary/baseline error-rate ratio from per-step error and
	// request counts with an anytime-valid test (CountState).
	KindCounts Kind = "counts"
	// KindHistogram judges whether the canary's latency distribution is stochastically
	// larger from per-step histogram bucket counts (HistogramState).
	KindHistogram Kind = "histogram"
)

// Defaults of the sequential judges.
const (
	DefaultAlpha   = 0.01
	DefaultHorizon = 120
	// MaxCount bounds one step's count (float64 counts integers exactly up to 2^53).
	MaxCount = 1e15
	// MaxHorizon bounds Horizon: beyond a day of 15-second steps the change-point weight
	// per step is too thin to detect anything.
	MaxHorizon = 10_000
)

// stateVersion is the layout of the stored states; a state of another version is refused.
const stateVersion = 1

// The confidence sequence for the ratio is read off a grid of log ρ: gridSize points
// gridStep apart, centred on ρ = 1 (×1/32 to ×32, 9% apart).
const (
	gridSize = 81
	gridStep = math.Ln2 / 8
	// gridPriorSD is the spread, in log ρ, of the mixture the confidence sequence uses.
	gridPriorSD = 1.5
)

// CountCohort is one cohort's counts over one step.
type CountCohort struct {
	Errors   float64 `json:"errors"`
	Requests float64 `json:"requests"`
}

// CountStep is one step of a count judge: both cohorts' errors and requests over the
// same interval of time (e.g. increase(...[15s]) at a 15s step). NaN means the query
// returned nothing for that cohort at that step.
type CountStep struct {
	Time     time.Time   `json:"time"`
	Baseline CountCohort `json:"baseline"`
	Canary   CountCohort `json:"canary"`
}

// CountState is a count judge's evidence so far. It is small (a few hundred numbers,
// whatever the number of steps), encodes as JSON, and resumes exactly: a state decoded
// from its JSON gives the same results and the same updates as the original.
//
// The test: given each step's total errors E_t, the canary's errors are
// Binomial(E_t, θ_t) with logit θ_t = log ρ + log(n_c/n_b), ρ the canary/baseline error
// rate ratio, so a traffic swing or error burst shared by both cohorts cancels. H0
// "ρ ≤ allowed_increase" is tested by a change-detecting mixture e-process (see
// sequential.go) that fails when it reaches 1/alpha: the probability of a false fail
// over the whole canary is at most alpha, however many intervals look at it, and a
// regression that starts late is detected as fast as one that starts at once.
// direction decrease tests ρ ≥ allowed_decrease, either both sides with alpha/2 each.
// allowed_delta is an absolute floor: a fail also needs the canary's error rate to exceed
// the baseline's by more than it (a gate that can only turn a fail into a pass, so the
// guarantee is kept). The reported interval for ρ is a confidence sequence: it covers the
// ratio at every look with probability ≥ 1 − alpha (the ratio of the whole canary, when
// it is constant).
//
// Defined answers: a step where a cohort's query returned nothing (NaN) or had no
// requests is missing and skipped; a step without errors carries no evidence (but keeps
// the change-point clock); a count that is not an integer (increase() extrapolates) is
// rounded; a negative increment (a counter reset the query did not correct), an infinite
// value or more errors than requests is invalid: the step is skipped and the judge says
// error for the rest of the canary, naming the first such step.
type CountState struct {
	Version int `json:"version"`
	// The settings the evidence is gathered against; Result refuses a spec with another
	// direction or tolerance. The horizon stays the one the state started with.
	AllowedIncrease float64   `json:"allowed_increase"`
	AllowedDecrease float64   `json:"allowed_decrease"`
	Direction       Direction `json:"direction"` // only the sides it tests are computed
	Horizon         int       `json:"horizon"`

	// Last is the newest step added: Add refuses steps at or before it.
	Last        time.Time `json:"last,omitzero"`
	Steps       int       `json:"steps"`       // steps added, missing and invalid included
	Informative int       `json:"informative"` // steps with at least one error
	Missing     int       `json:"missing,omitempty"`
	Rounded     int       `json:"rounded,omitempty"` // steps with a count that was not an integer
	Invalid     int       `json:"invalid,omitempty"`
	Problem     string    `json:"problem,omitempty"` // the first invalid step, as a sentence

	// Baseline and Canary sum the counts of the steps used.
	Baseline CountCohort `json:"baseline"`
	Canary   CountCohort `json:"canary"`

	Test ratioTest `json:"test"`
	// Grid is the tempered log-likelihood of log ρ at the grid points, shifted so that
	// its maximum is 0.
	Grid [gridSize]float64 `json:"grid"`
}

// startSpec is m with its defaults, checked to be a valid spec of the judge kind whose
// evidence is being started.
func startSpec(m MetricSpec, kind Kind) (MetricSpec, error) {
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return m, err
	}
	if m.Kind != kind {
		return m, fmt.Errorf("type: %q is not %s", m.Kind, kind)
	}
	return m, nil
}

// NewCountState starts the evidence of a count judge for spec m.
func NewCountState(m MetricSpec) (*CountState, error) {
	m, err := startSpec(m, KindCounts)
	if err != nil {
		return nil, err
	}
	return &CountState{
		Version:         stateVersion,
		AllowedIncrease: m.AllowedIncrease,
		AllowedDecrease: m.AllowedDecrease,
		Direction:       m.Direction,
		Horizon:         m.Horizon,
		Test:            newRatioTest(),
	}, nil
}

// Add folds new steps into the evidence, in time order. Steps at or before the newest
// one already added are skipped with an error wrapping ErrStaleStep (a replay after a
// restart cannot count twice); invalid steps are skipped, recorded, and returned as an
// error. The valid steps of a batch are added whatever the others are. The cost is
// O(len(steps)).
func (s *CountState) Add(steps []CountStep) error {
	var errs []error
	for _, st := range steps {
		if s.Steps > 0 && !st.Time.After(s.Last) {
			errs = append(errs, fmt.Errorf("counts step %s: %w (%s)",
				st.Time.Format(time.RFC3339), ErrStaleStep, s.Last.Format(time.RFC3339)))
			continue
		}
		s.Last = st.Time
		s.Steps++
		logPi := changeWeight(s.Steps, s.Horizon)
		if err := s.addOne(st, logPi); err != nil {
			s.Invalid++
			if s.Problem == "" {
				s.Problem = err.Error()
			}
			errs = append(errs, err)
			s.Test.skip(logPi)
		}
	}
	return errors.Join(errs...)
}

// countTempering is the count judge's discount (see tempering). The cap: a burst of
// errors in one cohort alone (×3 for a minute), before any dispersion has been seen,
// adds at most 2 a step, so the test needs five steps to fail at alpha 1% (with 3,
// 3.2% of healthy canaries with such bursts false-failed); an errors ×10 regression
// still fails in the second interval it is seen in.
var countTempering = tempering{prior: 0.05, safety: 3, stepCap: 2}

func (s *CountState) addOne(st CountStep, logPi float64) error {
	v := [4]float64{st.Baseline.Errors, st.Baseline.Requests, st.Canary.Errors, st.Canary.Requests}
	names := [4]string{"baseline errors", "baseline requests", "canary errors", "canary requests"}
	at := st.Time.Format(time.RFC3339)
	missing, rounded := false, false
	for i, f := range v {
		switch {
		case math.IsNaN(f):
			missing = true
		case math.IsInf(f, 0):
			return fmt.Errorf("counts step %s: %s is %v: not a count", at, names[i], f)
		case f < 0:
			return fmt.Errorf("counts step %s: %s is %v: a negative increment (a counter reset the query did not correct, or a query that is not an increase)", at, names[i], f)
		case f > MaxCount:
			return fmt.Errorf("counts step %s: %s is %v: more than %v in one step is not a count", at, names[i], f, float64(MaxCount))
		default:
			r, frac := roundCount(f)
			v[i], rounded = r, rounded || frac
		}
	}
	if missing {
		s.Missing++
		s.Test.skip(logPi)
		return nil
	}
	for i := 0; i < 4; i += 2 {
		if v[i] > v[i+1] {
			return fmt.Errorf("counts step %s: %s %v exceed its requests %v", at, names[i], v[i], v[i+1])
		}
	}
	if rounded {
		s.Rounded++
	}
	eb, nb, ec, nc := v[0], v[1], v[2], v[3]
	if nb == 0 || nc == 0 {
		s.Missing++ // no traffic in a cohort: nothing to compare
		s.Test.skip(logPi)
		return nil
	}
	s.Baseline.Errors += eb
	s.Baseline.Requests += nb
	s.Canary.Errors += ec
	s.Canary.Requests += nc
	if eb+ec == 0 {
		s.Test.skip(logPi)
		return nil
	}
	s.Informative++
	o := ratioObs{x: ec, total: eb + ec, nb: nb, nc: nc}
	off := newStepOffsets(nb, nc, s.AllowedIncrease, s.AllowedDecrease, s.Direction)
	eta := s.Test.add(o, &off, s.Direction, logPi, countTempering)
	if s.Direction != DirectionDecrease {
		s.Test.Up.track(s.Steps)
	}
	if s.Direction != DirectionIncrease {
		s.Test.Down.track(s.Steps)
	}
	// As in changeProcess.update: log-likelihood x·log u − E·log(1+u), u = ρ·n_c/n_b;
	// x·log(n_c/n_b) is the same at every grid point and drops out.
	top := logZero
	r := nc / nb
	for g := range s.Grid {
		s.Grid[g] += eta * (o.x*gridLogRatio(g) - o.total*math.Log1p(gridRatio[g]*r))
		top = max(top, s.Grid[g])
	}
	for g := range s.Grid {
		s.Grid[g] -= top
	}
	return nil
}

func gridLogRatio(g int) float64 { return float64(g-gridSize/2) * gridStep }

// gridRatio[g] is e^gridLogRatio(g).
var gridRatio = func() (r [gridSize]float64) {
	for g := range r {
		r[g] = math.Exp(gridLogRatio(g))
	}
	return r
}()

// gridLogPrior is the log weight of grid point g in the confidence sequence's mixture.
func gridLogPrior(g int) float64 {
	x := gridLogRatio(g) / gridPriorSD
	return -x*x/2 - gridLogNorm
}

var gridLogNorm = func() float64 {
	v := make([]float64, gridSize)
	for g := range v {
		x := gridLogRatio(g) / gridPriorSD
		v[g] = -x * x / 2
	}
	return logSumExp(v)
}()

// ratioCS returns the confidence sequence for ρ at level 1 − alpha: the ratios whose
// mixture e-value (a fixed prior over the grid against the point) stays below 1/alpha.
// The log-likelihood is concave in log ρ, so the set is an interval; it is widened to
// the grid points just outside it, which contain the exact interval. A bound at the
// grid's end is open: low 0, or high unbounded.
func ratioCS(grid *[gridSize]float64, alpha float64) (low, high float64, unbounded bool) {
	var w [gridSize]float64
	for g := range grid {
		w[g] = grid[g] + gridLogPrior(g)
	}
	cut := logSumExp(w[:]) + math.Log(alpha)
	lo, hi := -1, -1
	for g := range grid {
		if grid[g] > cut {
			if lo < 0 {
				lo = g
			}
			hi = g
		}
	}
	if lo > 0 {
		low = math.Exp(gridLogRatio(lo - 1))
	}
	if hi < gridSize-1 {
		high = math.Exp(gridLogRatio(hi + 1))
	} else {
		unbounded = true
	}
	return low, high, unbounded
}

// checkSpec returns m with defaults when it is a valid spec of kind and matches the
// settings the state was started with.
// The horizon is not compared: it is the state's from its start (a reload that changes
// the lifetime does not change how the evidence so far was weighted).
func checkSpec(m MetricSpec, kind Kind, version int, inc, dec float64, dir Direction) (MetricSpec, error) {
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("invalid judge: %w", err)
	}
	var diffs []string
	if m.Kind != kind {
		diffs = append(diffs, fmt.Sprintf("type %s, the state is %s", m.Kind, kind))
	}
	if version != stateVersion {
		diffs = append(diffs, fmt.Sprintf("state version %d, this canaryd reads %d", version, stateVersion))
	}
	if m.AllowedIncrease != inc {
		diffs = append(diffs, fmt.Sprintf("allowed_increase %v, the evidence was gathered against %v", m.AllowedIncrease, inc))
	}
	if m.Direction != dir {
		diffs = append(diffs, fmt.Sprintf("direction %s, the evidence was gathered for %s", m.Direction, dir))
	}
	if m.AllowedDecrease != dec {
		diffs = append(diffs, fmt.Sprintf("allowed_decrease %v, the evidence was gathered against %v", m.AllowedDecrease, dec))
	}
	if len(diffs) > 0 {
		return m, fmt.Errorf("%w: %s", ErrStateMismatch, strings.Join(diffs, "; "))
	}
	return m, nil
}

// Result classifies the evidence so far for spec m (the spec the state was started
// with, or one that differs only in alpha, allowed_delta, horizon, critical and the
// descriptive fields; a different direction, allowed_increase or allowed_decrease is an
// error wrapping ErrStateMismatch, since the evidence was gathered for the old ones:
// only the sides the direction tests are computed). It does not change the state.
func (s *CountState) Result(m MetricSpec) MetricResult {
	res := MetricResult{Name: m.Name, Group: m.Group, Groups: m.Groups, Muted: m.Muted, Kind: KindCounts,
		Critical: m.Critical, MustHaveData: m.MustHaveData}
	m, err := checkSpec(m, KindCounts, s.Version, s.AllowedIncrease, s.AllowedDecrease, s.Direction)
	if err != nil {
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: %v", m.Name, err)
		return res
	}
	seq := SequentialResult{
		Steps: s.Steps, Informative: s.Informative, Missing: s.Missing,
		Rounded: s.Rounded, Invalid: s.Invalid, Confidence: 1 - m.Alpha,
		Dispersion: s.Test.Disp.phi(0, countTempering.prior),
	}
	used := s.Steps - s.Missing - s.Invalid
	res.Baseline = CohortSummary{N: used, Missing: s.Missing, Median: rate(s.Baseline)}
	res.Canary = CohortSummary{N: used, Missing: s.Missing, Median: rate(s.Canary)}
	seq.BaselineRate, seq.CanaryRate = res.Baseline.Median, res.Canary.Median
	seq.Low, seq.High, seq.HighUnbounded = ratioCS(&s.Grid, m.Alpha)
	if est, ok := s.Test.Disp.ratio(); ok {
		seq.Estimate = clampTo(est, seq.Low, seq.High, seq.HighUnbounded)
	}
	up, down := sides(m.Direction, m.Alpha)
	high, low := decide(s.Test.Up.evidence(), s.Test.Down.evidence(), up, down, &seq)
	// The absolute floor: a significant ratio still passes when the rates differ by less.
	diff := seq.CanaryRate - seq.BaselineRate
	high = high && diff > m.AllowedDelta
	low = low && -diff > m.AllowedDelta
	res.Sequential = seq

	if settle(&res, m.Name, s.Problem, s.Invalid, s.Steps, s.Missing, s.Baseline.Requests > 0 && s.Canary.Requests > 0, high, low) {
		return res
	}
	res.Reason = countReason(m, s, &res)
	return res
}

// settle classifies a sequential result: error when steps were invalid, nodata when a
// cohort never had requests, else high, low or pass from the decision. It reports whether
// the result is already final (error or nodata) and needs no further reason.
func settle(res *MetricResult, name, problem string, invalid, steps, missing int, bothHaveData, high, low bool) bool {
	switch {
	case invalid > 0:
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: %s (%d invalid steps skipped)", name, problem, invalid)
		return true
	case !bothHaveData:
		res.Classification = ClassNoData
		res.Reason = fmt.Sprintf("%s: no data: %d steps, none with requests in both cohorts (%d missing)",
			name, steps, missing)
		return true
	case high:
		res.Classification = ClassHigh
	case low:
		res.Classification = ClassLow
	default:
		res.Classification = ClassPass
	}
	return false
}

// sideEvidence is one side's e-process as decide needs it.
type sideEvidence struct {
	logMax, logNow float64
	peak           int
}

func (p *changeProcess) evidence() sideEvidence {
	return sideEvidence{logMax: p.LogMax, logNow: p.logR(), peak: p.MaxStep}
}

// decide compares each tested side's running maximum with its threshold (log values,
// +Inf for a side not tested) and fills the evidence fields of seq from the side that is
// closest to (or past) its threshold.
func decide(u, d sideEvidence, up, down float64, seq *SequentialResult) (high, low bool) {
	high = u.logMax >= up
	low = d.logMax >= down
	p, thr, side := u, up, DirectionIncrease
	if math.IsInf(up, 1) || (!math.IsInf(down, 1) && d.logMax-down > u.logMax-up) {
		p, thr, side = d, down, DirectionDecrease
	}
	seq.Side = side
	seq.EValue = expCapped(p.logMax)
	seq.EValueNow = expCapped(p.logNow)
	seq.Threshold = math.Exp(thr)
	seq.PeakStep = p.peak
	return high, low
}

func expCapped(l float64) float64 { return math.Exp(min(max(l, -700), 700)) }

func clampTo(v, lo, hi float64, unbounded bool) float64 {
	v = max(v, lo)
	if !unbounded {
		v = min(v, hi)
	}
	if math.IsInf(v, 1) {
		v = math.MaxFloat64
	}
	return v
}

func rate(c CountCohort) float64 {
	if c.Requests == 0 {
		return 0
	}
	return c.Errors / c.Requests
}

func countReason(m MetricSpec, s *CountState, res *MetricResult) string {
	q := res.Sequential
	b := make([]byte, 0, 256)
	b = append(append(append(b, "canary "...), m.Name...), ' ')
	b = append(appendValue(b, q.CanaryRate, "ratio"), " vs "...)
	b = append(appendValue(b, q.BaselineRate, "ratio"), " baseline ("...)
	b = append(appendCount(b, s.Canary.Errors), " of "...)
	b = append(appendCount(b, s.Canary.Requests), " requests vs "...)
	b = append(appendCount(b, s.Baseline.Errors), " of "...)
	b = append(appendCount(b, s.Baseline.Requests), ')')
	switch {
	case s.Informative == 0:
		b = append(b, ", no errors yet"...)
	case s.Baseline.Errors == 0:
		// The estimate is clamped to the largest float here: say what it means instead.
		b = append(b, ", ratio unbounded (the baseline had no errors; "...)
		b = append(appendRatioRange(append(appendConfidence(b, q.Confidence), " CS "...), q), ')')
	default:
		b = append(appendRatio(append(b, ", ratio "...), q.Estimate), " ("...)
		b = append(appendRatioRange(append(appendConfidence(b, q.Confidence), " CS "...), q), ')')
	}
	b = appendTrim(append(b, ", e-value "...), q.EValue)
	b = appendTrim(append(b, " of "...), q.Threshold)
	b = append(strconv.AppendInt(append(b, " over "...), int64(q.Steps), 10), " steps"...)
	switch res.Classification {
	case ClassHigh:
		b = appendRatio(append(b, "; higher than tolerated ("...), m.AllowedIncrease)
	case ClassLow:
		b = appendRatio(append(b, "; lower than tolerated ("...), m.AllowedDecrease)
	}
	if res.Classification == ClassHigh || res.Classification == ClassLow {
		if m.AllowedDelta > 0 {
			b = appendValue(append(b, ", ±"...), m.AllowedDelta, "ratio")
		}
		b = strconv.AppendInt(append(b, "), evidence peaked at step "...), int64(q.PeakStep), 10)
	}
	if s.Missing > 0 || s.Rounded > 0 {
		b = strconv.AppendInt(append(b, " ("...), int64(s.Missing), 10)
		b = append(strconv.AppendInt(append(b, " steps missing, "...), int64(s.Rounded), 10), " rounded)"...)
	}
	return string(b)
}

// appendCount appends a count as %v prints it.
func appendCount(dst []byte, v float64) []byte { return strconv.AppendFloat(dst, v, 'g', -1, 64) }

func formatRatio(r float64) string { return string(appendRatio(nil, r)) }

// appendRatio appends a ratio as "×1.5".
func appendRatio(dst []byte, r float64) []byte { return appendTrim(append(dst, "×"...), r) }

// appendRatioRange appends a confidence sequence for a ratio: "×0.8..×1.6", "≥ ×2".
func appendRatioRange(dst []byte, q SequentialResult) []byte {
	if q.HighUnbounded {
		return appendRatio(append(dst, "≥ "...), q.Low)
	}
	return appendRatio(append(appendRatio(dst, q.Low), ".."...), q.High)
}

// appendConfidence appends a confidence level as a percentage: "99%", "99.5%".
func appendConfidence(dst []byte, c float64) []byte {
	prec := 1
	if math.Round(1000*c) == 10*math.Round(100*c) {
		prec = 0
	}
	return append(strconv.AppendFloat(dst, 100*c, 'f', prec, 64), '%')
}
