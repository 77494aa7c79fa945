package promsim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Step is the scrape interval of every generated series.
const Step = 15 * time.Second

// Buckets are the latency histogram's upper bounds in seconds (client_golang's
// DefBuckets, what most services export); +Inf is implied.
func Buckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Layout places every run in time: samples at Start − Lead + k·Step, k = 0 … Steps()−1.
type Layout struct {
	// Start is when every canary starts taking traffic, a multiple of Step.
	Start time.Time
	// Lead is how long the series exist before Start (rate windows reach back; a process
	// is not born with its canary), a multiple of Step.
	Lead             time.Duration
	Lifetime, Warmup time.Duration
}

// Steps is the number of samples of each series.
func (l Layout) Steps() int { return int((l.Lead+l.Lifetime)/Step) + 1 }

// Time is sample k's timestamp; step k (k ≥ 1) is what happened in (Time(k−1), Time(k)].
func (l Layout) Time(k int) time.Time { return l.Start.Add(-l.Lead + time.Duration(k)*Step) }

// StepAt is the step that ends at t (t on the grid).
func (l Layout) StepAt(t time.Time) int { return int((t.Sub(l.Start) + l.Lead) / Step) }

// Service is what one run's service is like, drawn per run.
type Service struct {
	// Rate is the total request rate of both cohorts at a traffic factor of 1 (req/s).
	Rate float64 `json:"rate"`
	// Share is the canary's share of the requests (the baseline has the rest).
	Share float64 `json:"share"`
	// ErrorProb is the base probability that a request fails with a 5xx.
	ErrorProb float64 `json:"error_prob"`
	// Concentration is the beta-binomial κ: each step's error probability of each cohort
	// is Beta(κp, κ(1−p)), so errors are overdispersed (smaller κ, more so).
	Concentration float64 `json:"concentration"`
	// Median and Sigma are the log-normal latency's median (s) and log-sd.
	Median float64 `json:"median"`
	Sigma  float64 `json:"sigma"`
	// DiurnalAmp and DiurnalPhase shape the day's traffic curve, 1 + A·sin(2πt/24h + φ).
	DiurnalAmp   float64 `json:"diurnal_amp"`
	DiurnalPhase float64 `json:"diurnal_phase"`
}

// The shared processes' parameters, per 15 s step.
const (
	walkPhi, walkSigma     = 0.99, 0.03  // log traffic factor, OU: stationary sd ≈ 0.21, ~25 min memory
	driftPhi, driftSigma   = 0.98, 0.01  // shared log-latency drift: sd ≈ 0.05
	loadCoupling           = 0.1         // log-latency per unit of log traffic factor
	noisePhi, noiseSigma   = 0.5, 0.02   // per-cohort log-latency noise, AR(1)
	burstProb, burstLength = 0.005, 4.0  // shared error bursts: start per step, mean steps
	burstMin, burstMax     = 3.0, 10.0   // a burst multiplies the error probability by U(min, max)
	maxErrorProb           = 0.5         // a cohort's per-step error probability is capped here
	minShare, maxShare     = 0.05, 0.5   // canary traffic share
	minErr, maxErr         = 0.001, 0.02 // base error probability, log-uniform
	minKappa, maxKappa     = 200.0, 5000.0
	minMedian, maxMedian   = 0.02, 0.3
	minSigma, maxSigma     = 0.3, 0.7
	minAmp, maxAmp         = 0.2, 0.5
)

// Cohort is one cohort's generated traffic: index k ≥ 1 holds what happened in step k
// (index 0 is the series' first sample, before anything was counted).
type Cohort struct {
	Requests []int64 `json:"-"`
	Errors   []int64 `json:"-"`
	// Buckets[k][b] counts the requests of step k in bucket b: (Buckets()[b−1],
	// Buckets()[b]], the last one above the largest bound (non-cumulative).
	Buckets [][]int64 `json:"-"`
	Sum     []float64 `json:"-"`
	// LogMedian and TailShare are each step's latency model (the log of the median of
	// the untouched requests, the share slowed by the tail regression): the truth the
	// histogram was drawn from.
	LogMedian []float64 `json:"-"`
	TailShare []float64 `json:"-"`
	// Restart is the step whose sample is the first after a process restart (the
	// counters start over from that step's counts); 0 is never.
	Restart int `json:"restart,omitempty"`
}

// Run is one canary's data: both cohorts of one app.
type Run struct {
	Scenario string  `json:"scenario"`
	Index    int     `json:"index"`
	App      string  `json:"app"`
	Service  Service `json:"service"`
	// Onset is when the regression starts, counted from the end of the warmup.
	Onset            time.Duration `json:"onset"`
	Baseline, Canary Cohort        `json:"-"`
}

// Generate draws run i of scenario sc (the si-th scenario of the set); the same seed, si
// and i give the same run whatever else is generated.
func Generate(seed uint64, si int, sc Scenario, i int, l Layout) Run {
	r := rand.New(rand.NewPCG(seed, uint64(si)<<32|uint64(i)))
	svc := drawService(r, sc)
	run := Run{Scenario: sc.Name, Index: i, App: appName(sc.Name, i), Service: svc, Onset: sc.onset(r, l.Lifetime-l.Warmup)}
	n := l.Steps()
	cohorts := [2]*Cohort{&run.Baseline, &run.Canary}
	for _, c := range cohorts {
		c.Requests, c.Errors, c.Sum = make([]int64, n), make([]int64, n), make([]float64, n)
		c.LogMedian, c.TailShare = make([]float64, n), make([]float64, n)
		c.Buckets = make([][]int64, n)
		c.Buckets[0] = make([]int64, len(Buckets())+1)
	}
	bounds := Buckets()
	onsetAt := l.Warmup + run.Onset // from Start
	reg := sc.Regression
	var walk, drift float64
	var noise [2]float64
	burstLeft, burstFactor := 0, 1.0
	cells := make([]float64, len(bounds)+1)
	means := make([]float64, len(bounds)+1)
	for k := 1; k < n; k++ {
		from := -l.Lead + time.Duration(k-1)*Step // the step's start, from Start
		walk = walkPhi*walk + walkSigma*r.NormFloat64()
		drift = driftPhi*drift + driftSigma*r.NormFloat64()
		day := 1 + svc.DiurnalAmp*math.Sin(2*math.Pi*from.Hours()/24+svc.DiurnalPhase)
		factor := day * math.Exp(walk)
		bf := 1.0
		if burstLeft > 0 {
			burstLeft--
			bf = burstFactor
		} else if r.Float64() < burstProb {
			// Geometric length with mean burstLength, at least one step.
			burstLeft = int(math.Log(1-r.Float64())/math.Log(1-1/burstLength)) + 1
			burstFactor = burstMin + (burstMax-burstMin)*r.Float64()
			bf = burstFactor
			burstLeft--
		}
		for ci, c := range cohorts {
			share := 1 - svc.Share
			if ci == 1 {
				share = svc.Share
			}
			active := ci == 1 && !sc.AA && !reg.none() && from >= onsetAt
			req := poisson(r, svc.Rate*factor*share*Step.Seconds())
			p := svc.ErrorProb * bf
			if active && reg.ErrorFactor > 0 {
				p *= reg.ErrorFactor
			}
			p = math.Min(p, maxErrorProb)
			q := distuv.Beta{Alpha: svc.Concentration * p, Beta: svc.Concentration * (1 - p), Src: r}.Rand()
			errs := binomial(r, req, q)
			noise[ci] = noisePhi*noise[ci] + noiseSigma*r.NormFloat64()
			mu := math.Log(svc.Median) + drift + loadCoupling*walk + noise[ci]
			tail, tailFactor := 0.0, 1.0
			if active {
				if reg.LatencyFactor > 0 {
					mu += math.Log(reg.LatencyFactor)
				}
				tail, tailFactor = reg.TailShare, reg.TailFactor
			}
			latencyCells(cells, means, bounds, mu, svc.Sigma, tail, tailFactor)
			c.Requests[k], c.Errors[k] = req, errs
			c.LogMedian[k], c.TailShare[k] = mu, tail
			c.Buckets[k] = multinomial(r, req, cells)
			for b, cnt := range c.Buckets[k] {
				c.Sum[k] += float64(cnt) * means[b]
			}
		}
	}
	if sc.Restarts {
		first := l.StepAt(l.Start) + 1
		for _, c := range cohorts {
			c.Restart = first + r.IntN(n-first)
		}
	}
	return run
}

func appName(scenario string, i int) string {
	return scenario + "." + itoa(i)
}

func itoa(i int) string { return strconv.Itoa(i) }

func drawService(r *rand.Rand, sc Scenario) Service {
	logUniform := func(lo, hi float64) float64 { return lo * math.Exp(r.Float64()*math.Log(hi/lo)) }
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	rate, share := logUniform(sc.MinRate, sc.MaxRate), uniform(minShare, maxShare)
	// Rejection keeps the draw's shape above the floor; 1,000 tries is far more than a
	// floor the scenario's bounds allow needs (at 10–500 req/s and ≥ 5 canary req/s, about
	// half the draws pass).
	for try := 0; try < 1000 && rate*share < sc.MinCanaryRate; try++ {
		rate, share = logUniform(sc.MinRate, sc.MaxRate), uniform(minShare, maxShare)
	}
	return Service{
		Rate:          rate,
		Share:         share,
		ErrorProb:     logUniform(minErr, maxErr),
		Concentration: logUniform(minKappa, maxKappa),
		Median:        logUniform(minMedian, maxMedian),
		Sigma:         uniform(minSigma, maxSigma),
		DiurnalAmp:    uniform(minAmp, maxAmp),
		DiurnalPhase:  uniform(0, 2*math.Pi),
	}
}

func poisson(r *rand.Rand, lambda float64) int64 {
	if lambda <= 0 {
		return 0
	}
	return int64(distuv.Poisson{Lambda: lambda, Src: r}.Rand())
}

func binomial(r *rand.Rand, n int64, p float64) int64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	}
	return int64(distuv.Binomial{N: float64(n), P: p, Src: r}.Rand())
}

// multinomial splits n into len(p) cells of probabilities p (summing to 1) by
// conditional binomials.
func multinomial(r *rand.Rand, n int64, p []float64) []int64 {
	out := make([]int64, len(p))
	mass := 1.0
	for i := 0; i < len(p)-1 && n > 0; i++ {
		if mass <= 0 {
			break
		}
		c := binomial(r, n, math.Min(1, p[i]/mass))
		out[i] = c
		n -= c
		mass -= p[i]
	}
	out[len(p)-1] += n
	return out
}

// latencyCells fills cells with each bucket's probability and means with the mean latency
// of a request in it, for latencies log-normal(mu, sigma) of which a share tail is
// multiplied by tailFactor.
func latencyCells(cells, means, bounds []float64, mu, sigma, tail, tailFactor float64) {
	comps := [2]struct{ w, mu float64 }{{1 - tail, mu}, {tail, mu + math.Log(math.Max(tailFactor, 1e-300))}}
	for b := range cells {
		cells[b], means[b] = 0, 0
	}
	var partial [2]float64 // each component's E[X·1{X ≤ bound}], CDF at the previous bound
	var cdf [2]float64
	for b := range cells {
		var p, e float64
		for ci, cp := range comps {
			if cp.w == 0 {
				continue
			}
			var c, pe float64
			if b < len(bounds) {
				z := (math.Log(bounds[b]) - cp.mu) / sigma
				c = distuv.UnitNormal.CDF(z)
				pe = math.Exp(cp.mu+sigma*sigma/2) * distuv.UnitNormal.CDF(z-sigma)
			} else {
				c, pe = 1, math.Exp(cp.mu+sigma*sigma/2)
			}
			p += cp.w * (c - cdf[ci])
			e += cp.w * (pe - partial[ci])
			cdf[ci], partial[ci] = c, pe
		}
		cells[b] = math.Max(p, 0)
		if p > 0 {
			means[b] = e / p
		}
	}
}
