package eval

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/metrics/synthetic"
)

// Cohorts is what one run injects: each cohort's regressions by signal, and when the
// canary's regression starts, counted from the end of the warmup (the synthetic
// provider's After).
type Cohorts struct {
	Baseline, Canary map[string]synthetic.Regression
	Onset            time.Duration
}

// Scenario is one kind of run. A healthy scenario (AA) has a canary drawn exactly like its
// baseline, so every fail is a false alarm; the others inject a regression that a good
// analysis must catch.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	AA          bool   `json:"aa"`
	// Family and Size place the scenario on the plot: "errors" with the error-rate factor,
	// "latency" with the relative increase; "" for scenarios not plotted.
	Family string  `json:"family,omitempty"`
	Size   float64 `json:"size,omitempty"`
	// Make draws one run's cohorts; span is the time after the warmup to the end of the
	// lifetime, for regressions that start at a random minute.
	Make func(r *rand.Rand, span time.Duration) Cohorts `json:"-"`
}

// latencySignals are the latency quantiles a latency regression moves together: a slower
// release shifts the whole distribution, not one quantile.
var latencySignals = []string{"latency_p50", "latency_p90", "latency_p99"}

// modelSignals are every signal the synthetic provider models (errors_per_second is a view
// of error_rate).
var modelSignals = []string{"request_rate", "error_rate", "latency_p50", "latency_p90", "latency_p99", "saturation"}

type cohortRegs map[string]synthetic.Regression

func (c cohortRegs) set(signal string, f func(r *synthetic.Regression)) cohortRegs {
	r, ok := c[signal]
	if !ok {
		r = synthetic.DefaultRegression()
	}
	f(&r)
	c[signal] = r
	return c
}

// service describes how both cohorts' series behave (a property of the service, not of
// the release): it returns fresh regressions for one cohort.
type service func() cohortRegs

func plainService() cohortRegs { return cohortRegs{} }

func autocorrelated(phi float64) service {
	return func() cohortRegs {
		c := cohortRegs{}
		for _, s := range modelSignals {
			c.set(s, func(r *synthetic.Regression) { r.Autocorrelation = phi })
		}
		return c
	}
}

func bursty() cohortRegs {
	c := cohortRegs{}
	for _, s := range append([]string{"error_rate"}, latencySignals...) {
		c.set(s, func(r *synthetic.Regression) { r.Burst = synthetic.Burst{Rate: 0.01, Factor: 3, Length: 4} })
	}
	return c
}

func missing() cohortRegs {
	c := cohortRegs{}
	for _, s := range modelSignals {
		c.set(s, func(r *synthetic.Regression) { r.Missing = 0.1 })
	}
	return c
}

// lowTraffic is a service at 2 requests per second per instance instead of 100: 30
// requests a 15 s step, so error rates and quantiles are noisy and often undefined.
func lowTraffic() cohortRegs {
	return cohortRegs{}.set("request_rate", func(r *synthetic.Regression) { r.Ratio = 0.02 })
}

func errorsTimes(k float64) func(c cohortRegs) {
	return func(c cohortRegs) { c.set("error_rate", func(r *synthetic.Regression) { r.Ratio *= k }) }
}

func latencyPlus(frac float64) func(c cohortRegs) {
	return func(c cohortRegs) {
		for _, s := range latencySignals {
			c.set(s, func(r *synthetic.Regression) { r.Ratio *= 1 + frac })
		}
	}
}

func moreNoise(k float64) func(c cohortRegs) {
	return func(c cohortRegs) {
		for _, s := range latencySignals {
			c.set(s, func(r *synthetic.Regression) { r.Noise *= k })
		}
	}
}

// atRandomMinute delays every regression of the canary to a whole minute drawn uniformly
// in the first half of the judged span.
func atRandomMinute(r *rand.Rand, span time.Duration, c cohortRegs) time.Duration {
	minutes := int(span / 2 / time.Minute)
	after := time.Duration(r.IntN(max(minutes, 1))+1) * time.Minute
	if after >= span {
		after = span / 2
	}
	for s, reg := range c {
		reg.After = model.Duration(after)
		c[s] = reg
	}
	return after
}

func scenario(name, desc, family string, size float64, svc service, change func(cohortRegs), step bool) Scenario {
	return Scenario{
		Name: name, Description: desc, AA: change == nil, Family: family, Size: size,
		Make: func(r *rand.Rand, span time.Duration) Cohorts {
			out := Cohorts{Baseline: svc(), Canary: svc()}
			if change == nil {
				return out
			}
			delta := cohortRegs{}
			change(delta)
			if step {
				out.Onset = atRandomMinute(r, span, delta)
			}
			for s, d := range delta {
				cohortRegs(out.Canary).set(s, func(reg *synthetic.Regression) {
					reg.Ratio *= d.Ratio
					reg.Noise *= d.Noise
					reg.After = d.After
				})
			}
			return out
		},
	}
}

// DefaultScenarios are the runs of issue 9: healthy services of several kinds, error-rate
// and latency regressions of several sizes, a regression at a random minute, more noise,
// and regressions on autocorrelated, gappy and low-traffic services.
func DefaultScenarios() []Scenario {
	ar := autocorrelated(0.8)
	var out []Scenario
	out = append(out,
		scenario("aa", "healthy: canary drawn like the baseline", "", 0, plainService, nil, false),
		scenario("aa-autocorrelated", "healthy, every signal AR(1) with φ=0.8 per step in both cohorts", "", 0, ar, nil, false),
		scenario("aa-bursty", "healthy, error and latency bursts ×3 for 4 steps at 1% of steps in both cohorts", "", 0, bursty, nil, false),
		scenario("aa-missing", "healthy, 10% of points missing (NaN) in both cohorts", "", 0, missing, nil, false),
		scenario("aa-low-traffic", "healthy, 2 req/s per instance in both cohorts", "", 0, lowTraffic, nil, false),
	)
	for _, k := range []float64{1.5, 2, 5, 10} {
		out = append(out, scenario(fmt.Sprintf("errors-x%g", k), fmt.Sprintf("canary error rate ×%g from the end of the warmup", k),
			"errors", k, plainService, errorsTimes(k), false))
	}
	for _, p := range []float64{0.10, 0.25, 0.60} {
		out = append(out, scenario(fmt.Sprintf("latency+%g%%", 100*p), fmt.Sprintf("canary p50, p90 and p99 latency +%g%% from the end of the warmup", 100*p),
			"latency", p, plainService, latencyPlus(p), false))
	}
	out = append(out,
		scenario("errors-x5-step", "canary error rate ×5 from a random minute in the first half of the judged span", "", 0, plainService, errorsTimes(5), true),
		scenario("latency+60%-step", "canary latency +60% from a random minute in the first half of the judged span", "", 0, plainService, latencyPlus(0.6), true),
		scenario("latency-noise-x3", "canary latency noise ×3, same median", "", 0, plainService, moreNoise(3), false),
		scenario("errors-x10-autocorrelated", "error rate ×10 on the autocorrelated service", "", 0, ar, errorsTimes(10), false),
		scenario("latency+25%-autocorrelated", "latency +25% on the autocorrelated service", "", 0, ar, latencyPlus(0.25), false),
		scenario("errors-x10-missing", "error rate ×10 with 10% of points missing", "", 0, missing, errorsTimes(10), false),
		scenario("errors-x10-low-traffic", "error rate ×10 on the low-traffic service", "", 0, lowTraffic, errorsTimes(10), false),
	)
	return out
}
