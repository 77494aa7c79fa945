package judge

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// The simulated canaries of the sequential judges' tests: what production has, in small.
// Traffic follows a diurnal cycle times a random walk shared by both cohorts; the canary
// takes 5%–50% of 1–500 req/s; errors come in bursts shared by the cohorts, and
// optionally each cohort's error probability wanders per step on its own (overdispersion);
// latency drifts for both cohorts alike.

const simStep = 15 * time.Second

var simStart = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type sim struct {
	r   *rand.Rand
	src *rand.PCG
}

func newSim(seed uint64) *sim {
	src := rand.NewPCG(seed, 0x5eed)
	return &sim{r: rand.New(src), src: src}
}

func (s *sim) poisson(l float64) float64 {
	if !(l > 0) {
		return 0
	}
	return distuv.Poisson{Lambda: l, Src: s.src}.Rand()
}

func (s *sim) logUniform(lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + s.r.Float64()*(math.Log(hi)-math.Log(lo)))
}

// traffic is the shared request-rate factor: a diurnal cycle (a canary sees part of
// one) times a random walk.
type traffic struct {
	phase, walk float64
}

func (s *sim) trafficFactor(t int, tr *traffic) float64 {
	tr.walk += 0.05 * s.r.NormFloat64()
	tr.walk *= 0.98 // mean-reverting so that a long canary does not drift to nothing
	return (1 + 0.5*math.Sin(2*math.Pi*float64(t)/480+tr.phase)) * math.Exp(tr.walk)
}

// countScenario is one simulated canary of a count judge.
type countScenario struct {
	rate     float64 // requests per second, both cohorts
	share    float64 // canary share of requests
	errRate  float64 // baseline error probability
	ratio    float64 // canary/baseline error ratio from onset on (1: healthy)
	onset    int     // first step of the regression
	wander   float64 // log-sd of each cohort's own per-step error-rate factor
	persist  float64 // AR(1) coefficient of that wander per step (0: independent steps)
	ownBurst float64 // per-step chance that a cohort alone starts a burst (errors ×3, 4 steps)
	burstsOn bool    // shared error bursts
	steps    int
}

// wanderAR is one cohort's own wander: an AR(1) chain with unit variance, coefficient
// phi (phi 0 draws an independent normal per step), and its own bursts.
type wanderAR struct {
	w     float64
	burst int // steps of the current burst left
}

func (s *sim) wander(a *wanderAR, phi float64) float64 {
	a.w = phi*a.w + math.Sqrt(1-phi*phi)*s.r.NormFloat64()
	return a.w
}

// ownBurst returns the factor of a cohort's own burst at this step (3 for 4 steps once
// started with probability rate, else 1).
func (s *sim) ownBurst(a *wanderAR, rate float64) float64 {
	if rate <= 0 {
		return 1
	}
	if a.burst == 0 && s.r.Float64() < rate {
		a.burst = 4
	}
	if a.burst > 0 {
		a.burst--
		return 3
	}
	return 1
}

// randomCountScenario draws a healthy-looking service: 1–500 req/s, canary share
// 5%–50%, baseline error rate 0.1%–5%.
func (s *sim) randomCountScenario(steps int) countScenario {
	return countScenario{
		rate: s.logUniform(1, 500), share: 0.05 + 0.45*s.r.Float64(),
		errRate: s.logUniform(0.001, 0.05), ratio: 1, burstsOn: true, steps: steps,
	}
}

func (s *sim) countSteps(sc countScenario) []CountStep {
	tr := traffic{phase: 2 * math.Pi * s.r.Float64()}
	out := make([]CountStep, sc.steps)
	var wb, wc wanderAR
	for t := range out {
		n := sc.rate * simStep.Seconds() * s.trafficFactor(t, &tr)
		nb, nc := s.poisson(n*(1-sc.share)), s.poisson(n*sc.share)
		p := sc.errRate
		if sc.burstsOn && s.r.Float64() < 0.05 {
			p *= s.logUniform(3, 20) // a burst both cohorts see (a dependency failing)
		}
		pb, pc := p, p
		if sc.wander > 0 {
			pb *= math.Exp(sc.wander * s.wander(&wb, sc.persist))
			pc *= math.Exp(sc.wander * s.wander(&wc, sc.persist))
		}
		pb *= s.ownBurst(&wb, sc.ownBurst)
		pc *= s.ownBurst(&wc, sc.ownBurst)
		if t >= sc.onset {
			pc *= sc.ratio
		}
		out[t] = CountStep{
			Time:     simStart.Add(time.Duration(t) * simStep),
			Baseline: CountCohort{Errors: min(nb, s.poisson(nb*min(pb, 1))), Requests: nb},
			Canary:   CountCohort{Errors: min(nc, s.poisson(nc*min(pc, 1))), Requests: nc},
		}
	}
	return out
}

// firstFailCount adds the steps one at a time, judging after each, and returns the
// first step (0-based) whose result fails, or -1.
func firstFailCount(m MetricSpec, steps []CountStep) int {
	st, err := NewCountState(m)
	if err != nil {
		panic(err)
	}
	for t := range steps {
		if err := st.Add(steps[t : t+1]); err != nil {
			panic(err)
		}
		if st.Result(m).Failed() {
			return t
		}
	}
	return -1
}

// simBuckets are Prometheus' default histogram buckets.
var simBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}

type histScenario struct {
	rate, share float64
	median      float64 // baseline median latency, seconds
	sigma       float64 // log-sd of a request's latency
	drift       bool    // a latency drift shared by the cohorts
	noise       float64 // log-sd of each cohort's own per-step median factor
	persist     float64 // AR(1) coefficient of that noise per step
	ownBurst    float64 // per-step chance that a cohort alone starts a burst (median ×3, 4 steps)
	// The canary's regression from onset on: all requests ×scale, or the fraction tail
	// of requests ×tailScale.
	scale, tail, tailScale float64
	onset, steps           int
}

func (s *sim) randomHistScenario(steps int) histScenario {
	return histScenario{
		rate: s.logUniform(1, 500), share: 0.05 + 0.45*s.r.Float64(),
		median: s.logUniform(0.02, 0.3), sigma: 0.5 + 0.4*s.r.Float64(), drift: true,
		scale: 1, steps: steps,
	}
}

func (s *sim) histSteps(sc histScenario) []HistogramStep {
	tr := traffic{phase: 2 * math.Pi * s.r.Float64()}
	out := make([]HistogramStep, sc.steps)
	drift := 0.0
	var wb, wc wanderAR
	for t := range out {
		n := sc.rate * simStep.Seconds() * s.trafficFactor(t, &tr)
		if sc.drift {
			drift = 0.95*drift + 0.05*s.r.NormFloat64()
		}
		med := sc.median * math.Exp(drift)
		bm, cm := med, med
		if sc.noise > 0 {
			bm *= math.Exp(sc.noise * s.wander(&wb, sc.persist))
			cm *= math.Exp(sc.noise * s.wander(&wc, sc.persist))
		}
		bm *= s.ownBurst(&wb, sc.ownBurst)
		cm *= s.ownBurst(&wc, sc.ownBurst)
		bDist := distuv.LogNormal{Mu: math.Log(bm), Sigma: sc.sigma}
		cDist := distuv.LogNormal{Mu: math.Log(cm), Sigma: sc.sigma}
		cdfC := cDist.CDF
		if t >= sc.onset {
			scale, tail, tailScale := sc.scale, sc.tail, sc.tailScale
			cdfC = func(x float64) float64 {
				base := cDist.CDF(x / scale)
				if tail > 0 {
					return (1-tail)*base + tail*cDist.CDF(x/(scale*tailScale))
				}
				return base
			}
		}
		out[t] = HistogramStep{
			Time:     simStart.Add(time.Duration(t) * simStep),
			Baseline: s.bucketCounts(n*(1-sc.share), bDist.CDF),
			Canary:   s.bucketCounts(n*sc.share, cdfC),
		}
	}
	return out
}

// bucketCounts draws one step's cumulative buckets: with Poisson arrivals each bucket's
// count is an independent Poisson.
func (s *sim) bucketCounts(n float64, cdf func(float64) float64) []Bucket {
	out := make([]Bucket, len(simBuckets))
	prev, cum := 0.0, 0.0
	for i, le := range simBuckets {
		f := 1.0
		if !math.IsInf(le, 1) {
			f = cdf(le)
		}
		cum += s.poisson(n * (f - prev))
		prev = f
		out[i] = Bucket{LE: le, Count: cum}
	}
	return out
}

func firstFailHist(m MetricSpec, steps []HistogramStep) int {
	st, err := NewHistogramState(m)
	if err != nil {
		panic(err)
	}
	for t := range steps {
		if err := st.Add(steps[t : t+1]); err != nil {
			panic(err)
		}
		if st.Result(m).Failed() {
			return t
		}
	}
	return -1
}

// wilson is the Wilson score interval (95%) of k successes in n trials.
func wilson(k, n int) (lo, hi float64) {
	const z = 1.959963984540054
	p := float64(k) / float64(n)
	nn := float64(n)
	c := (p + z*z/(2*nn)) / (1 + z*z/nn)
	h := z * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn)) / (1 + z*z/nn)
	return c - h, c + h
}

func medianInt(v []int) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	w := slices.Clone(v)
	slices.Sort(w)
	if len(w)%2 == 1 {
		return float64(w[len(w)/2])
	}
	return float64(w[len(w)/2-1]+w[len(w)/2]) / 2
}
