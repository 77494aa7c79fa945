package synthetic

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/canaryd/canaryd/metrics"
)

const golden = 0x9e3779b97f4a7c15

// mix is splitmix64's finaliser: a bijection that spreads every input bit over the output.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// pointSource is a splitmix64 stream, reseeded at every point from (key, timestamp) so
// that each draw depends on nothing but them.
type pointSource struct{ s uint64 }

func (p *pointSource) Uint64() uint64 {
	p.s += golden
	return mix(p.s)
}

func (p *pointSource) reset(key uint64, t int64) { p.s = mix(key ^ uint64(t)*golden) }

// Purposes: each random quantity of a signal draws from its own key.
const (
	purposeNoise = iota + 1
	purposeCount
	purposeSample
	purposeMissing
	purposeBurst
)

// gen generates one query's points. It is built per query: its buffers are not shared.
type gen struct {
	startMs, stepMs int64
	n               int
	stepSec         float64
	src             pointSource
	rng             *rand.Rand
	noise, aux      []float64
	bursts          []bool
}

func newGen(startMs, stepMs int64, n int) *gen {
	g := &gen{startMs: startMs, stepMs: stepMs, n: n, stepSec: float64(stepMs) / 1000}
	g.rng = rand.New(&g.src)
	return g
}

func (g *gen) t(i int) int64 { return g.startMs + int64(i)*g.stepMs }

func subKey(key uint64, signal string, purpose int) uint64 {
	return mix(key ^ hashString(signal) ^ uint64(purpose)*0xd1b54a32d192ed03)
}

func (g *gen) normal(key uint64, t int64) float64 {
	g.src.reset(key, t)
	return g.rng.NormFloat64()
}

func (g *gen) uniform(key uint64, t int64) float64 {
	return float64(mix(key^uint64(t)*golden)>>11) / (1 << 53)
}

// arLead is how many steps before the first point an AR(1) chain starts, so that the
// truncated weight phi^lead is below 1e-4 of a point's noise.
func arLead(phi float64) int {
	if phi <= 0 {
		return 0
	}
	return int(math.Ceil(math.Log(1e-4) / math.Log(phi)))
}

// process fills dst with unit-variance noise: independent normals, or an AR(1) chain
// with coefficient phi started arLead(phi) steps before the first point. A query that
// starts at the same time and ends later repeats the same values.
func (g *gen) process(dst []float64, key uint64, phi float64) []float64 {
	dst = grow(dst, g.n)
	if phi <= 0 {
		for i := range dst {
			dst[i] = g.normal(key, g.t(i))
		}
		return dst
	}
	lead := arLead(phi)
	c := math.Sqrt(1 - phi*phi)
	e := g.normal(key, g.t(-lead))
	for j := -lead + 1; j < g.n; j++ {
		e = phi*e + c*g.normal(key, g.t(j))
		if j >= 0 {
			dst[j] = e
		}
	}
	return dst
}

// burstMask marks the points inside a burst: one starts at a point with probability rate
// (at or after the onset when the regression has an after) and covers length points. A
// burst that started before a query's first point still covers it, so a window queried
// in parts reads the bursts a whole query does.
func (g *gen) burstMask(key uint64, cs *cohortSignal) []bool {
	b := cs.reg.Burst
	if b.Rate <= 0 {
		return nil
	}
	g.bursts = growBool(g.bursts, g.n)
	left := 0 // points of the current burst still to cover
	for j := -(b.Length - 1); j < g.n; j++ {
		t := g.t(j)
		if (cs.reg.After == 0 || t >= cs.onsetMs) && g.uniform(key, t) < b.Rate {
			left = b.Length
		}
		if j >= 0 {
			g.bursts[j] = left > 0
		}
		if left > 0 {
			left--
		}
	}
	return g.bursts
}

// counts fills dst with each step's request count for the cohort's request model.
func (g *gen) counts(dst []float64, key uint64, cs *cohortSignal) []float64 {
	const name = "request_rate"
	g.noise = g.process(g.noise, subKey(key, name, purposeNoise), cs.phi)
	burst := g.burstMask(subKey(key, name, purposeBurst), cs)
	ck := subKey(key, name, purposeCount)
	dst = grow(dst, g.n)
	for i := range dst {
		t := g.t(i)
		level, noise, _ := cs.at(t)
		r := math.Max(level, 0) * math.Exp(noise*g.noise[i])
		if burst != nil && burst[i] {
			r *= cs.reg.Burst.Factor
		}
		dst[i] = 0
		if lambda := r * g.stepSec; lambda > 0 {
			g.src.reset(ck, t)
			dst[i] = distuv.Poisson{Lambda: lambda, Src: &g.src}.Rand()
		}
	}
	return dst
}

// points makes one stream's points of signal. req is the cohort's request_rate model,
// which error rates and latencies depend on: few requests make them noisy.
func (g *gen) points(key uint64, signal string, cs, req cohortSignal) []metrics.Point {
	pts := make([]metrics.Point, g.n)
	var n []float64
	switch cs.def.kind {
	case kindRequests, kindRequestCount:
		n = g.counts(g.aux, key, &cs)
		g.aux = n
	case kindErrors, kindErrorCount, kindErrorTotal, kindLatency:
		n = g.counts(g.aux, key, &req)
		g.aux = n
	}
	if cs.def.kind != kindRequests && cs.def.kind != kindRequestCount {
		g.noise = g.process(g.noise, subKey(key, signal, purposeNoise), cs.phi)
	}
	burst := g.burstMask(subKey(key, signal, purposeBurst), &cs)
	countKey := subKey(key, signal, purposeCount)
	sampleKey := subKey(key, signal, purposeSample)
	missKey := subKey(key, signal, purposeMissing)
	for i := range pts {
		t := g.t(i)
		level, noise, active := cs.at(t)
		factor := 1.0
		if burst != nil && burst[i] {
			factor = cs.reg.Burst.Factor
		}
		var v float64
		switch cs.def.kind {
		case kindRequests:
			v = n[i] / g.stepSec
		case kindRequestCount:
			v = n[i]
		case kindErrors:
			if n[i] == 0 {
				v = math.NaN() // 0/0, as PromQL's division gives
				break
			}
			p := math.Min(math.Max(level, 0)*math.Exp(noise*g.noise[i])*factor, 1)
			g.src.reset(countKey, t)
			v = distuv.Binomial{N: n[i], P: p, Src: &g.src}.Rand() / n[i]
		case kindErrorCount, kindErrorTotal:
			if n[i] > 0 {
				p := math.Min(math.Max(level, 0)*math.Exp(noise*g.noise[i])*factor, 1)
				g.src.reset(countKey, t)
				v = distuv.Binomial{N: n[i], P: p, Src: &g.src}.Rand()
			}
			if cs.def.kind == kindErrorCount {
				v /= g.stepSec
			}
		case kindLatency:
			if n[i] == 0 {
				v = math.NaN() // no request, no quantile
				break
			}
			sd := cs.def.spread / math.Sqrt(n[i])
			v = math.Max(level, 0) * math.Exp(noise*g.noise[i]+sd*g.normal(sampleKey, t)) * factor
		case kindSaturation:
			v = math.Min(math.Max((level+noise*g.noise[i])*factor, 0), 1)
		}
		if active && cs.reg.Missing > 0 && g.uniform(missKey, t) < cs.reg.Missing {
			v = math.NaN()
		}
		pts[i] = metrics.Point{T: t, V: v}
	}
	return pts
}

// minSpread is latency_bucket's spread (sd of log latency) when latency_p99's level is
// not above latency_p50's: a narrow distribution rather than an undefined one.
const minSpread = 1e-3

// buckets makes one stream's latency histogram: a series per bound of bucketBounds and
// +Inf, each step's value the requests at most that bound (cumulative). A step's
// requests are request_rate's counts (req); each request's latency is lognormal with the
// median latency_p50 gives at that step (its level, regression, process noise and
// bursts: p50) and the spread that puts the p99 at latency_p99's level (p99's level
// and regression); they are binned by a multinomial draw. latency_p50's missing
// fraction makes every bucket of a step NaN.
func (g *gen) buckets(key uint64, p50, p99, req cohortSignal) [][]metrics.Point {
	bounds := bucketBounds()
	n := g.counts(g.aux, key, &req)
	g.aux = n
	const name = "latency_p50"
	g.noise = g.process(g.noise, subKey(key, name, purposeNoise), p50.phi)
	burst := g.burstMask(subKey(key, name, purposeBurst), &p50)
	sampleKey := subKey(key, "latency_bucket", purposeSample)
	missKey := subKey(key, name, purposeMissing)
	z99 := distuv.UnitNormal.Quantile(0.99)
	out := make([][]metrics.Point, len(bounds)+1)
	for b := range out {
		out[b] = make([]metrics.Point, g.n)
	}
	for i := range g.n {
		t := g.t(i)
		level, noise, active := p50.at(t)
		hi, _, _ := p99.at(t)
		median := math.Max(level, 0) * math.Exp(noise*g.noise[i])
		if burst != nil && burst[i] {
			median *= p50.reg.Burst.Factor
		}
		spread := minSpread
		if level > 0 && hi > level {
			spread = math.Max(math.Log(hi/level)/z99, minSpread)
		}
		missing := active && p50.reg.Missing > 0 && g.uniform(missKey, t) < p50.reg.Missing
		g.src.reset(sampleKey, t)
		left, below, prev := n[i], 0.0, 0.0 // requests not yet binned, binned, P(latency <= last bound)
		for b := range out {
			var v float64
			switch {
			case missing:
				v = math.NaN()
			case b == len(bounds):
				v = n[i]
			default:
				cdf := 0.0
				if median > 0 {
					cdf = distuv.UnitNormal.CDF(math.Log(bounds[b]/median) / spread)
				} else {
					cdf = 1
				}
				// The requests in (bounds[b-1], bounds[b]] among those above bounds[b-1]:
				// a multinomial drawn as a chain of binomials.
				if left > 0 && prev < 1 {
					k := 0.0
					switch p := (cdf - prev) / (1 - prev); {
					case p >= 1:
						k = left
					case p > 0:
						k = distuv.Binomial{N: left, P: p, Src: &g.src}.Rand()
					}
					left -= k
					below += k
				}
				prev = cdf
				v = below
			}
			out[b][i] = metrics.Point{T: t, V: v}
		}
	}
	return out
}

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

func growBool(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	return b[:n]
}
