package promsim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Regression is what a release changes in the canary cohort from its onset on.
type Regression struct {
	// ErrorFactor multiplies the canary's error probability (1 = unchanged).
	ErrorFactor float64 `json:"error_factor,omitempty"`
	// LatencyFactor multiplies every canary request's latency (1 = unchanged).
	LatencyFactor float64 `json:"latency_factor,omitempty"`
	// TailShare of the canary's requests take TailFactor times as long (a slow code path).
	TailShare  float64 `json:"tail_share,omitempty"`
	TailFactor float64 `json:"tail_factor,omitempty"`
}

func (r Regression) none() bool {
	return (r.ErrorFactor == 0 || r.ErrorFactor == 1) && (r.LatencyFactor == 0 || r.LatencyFactor == 1) && r.TailShare == 0
}

// Onset says when a regression starts, counted from the end of the warmup.
type Onset int

const (
	// OnsetWarmup: at the end of the warmup (the first judged interval sees it).
	OnsetWarmup Onset = iota
	// OnsetAnyMinute: at a whole minute drawn uniformly from the end of the warmup to
	// 5 minutes before the end of the lifetime, so late regressions are measured too.
	OnsetAnyMinute
)

// Scenario is one kind of run. A healthy scenario (AA) draws the canary exactly like its
// baseline, so every fail is a false alarm.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	AA          bool   `json:"aa"`
	// Family and Size place it on eval's plot ("errors" with the factor, "latency" with
	// the relative increase).
	Family string  `json:"family,omitempty"`
	Size   float64 `json:"size,omitempty"`
	// MinRate and MaxRate bound the service's total request rate (both cohorts, req/s, at
	// a traffic factor of 1), drawn log-uniformly.
	MinRate, MaxRate float64 `json:"-"`
	// MinCanaryRate, when set, redraws a service until the canary's own request rate
	// (Rate × Share) is at least this (req/s): issue 14 sets the errors ×2 target there.
	MinCanaryRate float64 `json:"-"`
	// Restarts: each cohort's process restarts once during the canary (counters reset).
	Restarts   bool       `json:"-"`
	Regression Regression `json:"regression"`
	Onset      Onset      `json:"-"`
}

// DefaultScenarios are healthy services (all sizes, quiet ones, restarting ones) and the
// regressions issue 14 sets targets for, from the end of the warmup and at any minute.
func DefaultScenarios() []Scenario {
	const lo, hi = 1, 500
	reg := func(name, desc, family string, size float64, r Regression, on Onset) Scenario {
		return Scenario{Name: name, Description: desc, Family: family, Size: size, MinRate: lo, MaxRate: hi, Regression: r, Onset: on}
	}
	return []Scenario{
		{Name: "aa", Description: "healthy, 1–500 req/s, canary share 5–50%", AA: true, MinRate: lo, MaxRate: hi},
		{Name: "aa-quiet", Description: "healthy quiet service, 1–2 req/s", AA: true, MinRate: 1, MaxRate: 2},
		{Name: "aa-restarts", Description: "healthy, 1–500 req/s, each cohort's counters reset once (a restart)", AA: true, MinRate: lo, MaxRate: hi, Restarts: true},
		reg("errors-x10", "canary error probability ×10 from the end of the warmup", "errors", 10, Regression{ErrorFactor: 10}, OnsetWarmup),
		reg("errors-x2", "canary error probability ×2 from the end of the warmup", "errors", 2, Regression{ErrorFactor: 2}, OnsetWarmup),
		{Name: "errors-x2-busy", Description: "canary error probability ×2 from the end of the warmup, canary traffic ≥ 5 req/s",
			MinRate: 10, MaxRate: hi, MinCanaryRate: 5, Regression: Regression{ErrorFactor: 2}, Onset: OnsetWarmup},
		reg("latency+10%", "every canary request +10% from the end of the warmup", "latency", 0.10, Regression{LatencyFactor: 1.10}, OnsetWarmup),
		reg("latency+25%", "every canary request +25% from the end of the warmup", "latency", 0.25, Regression{LatencyFactor: 1.25}, OnsetWarmup),
		reg("tail-5%x3", "5% of canary requests ×3 (tail only) from the end of the warmup", "", 0, Regression{TailShare: 0.05, TailFactor: 3}, OnsetWarmup),
		reg("errors-x10-anytime", "canary error probability ×10 from any minute up to 5m before the end", "", 0, Regression{ErrorFactor: 10}, OnsetAnyMinute),
		reg("errors-x2-anytime", "canary error probability ×2 from any minute up to 5m before the end", "", 0, Regression{ErrorFactor: 2}, OnsetAnyMinute),
		reg("latency+25%-anytime", "every canary request +25% from any minute up to 5m before the end", "", 0, Regression{LatencyFactor: 1.25}, OnsetAnyMinute),
	}
}

// Pick returns the named scenarios of DefaultScenarios, in the order given; "" is all.
func Pick(names []string) ([]Scenario, error) {
	all := DefaultScenarios()
	if len(names) == 0 {
		return all, nil
	}
	by := map[string]Scenario{}
	for _, s := range all {
		by[s.Name] = s
	}
	var out []Scenario
	for _, n := range names {
		s, ok := by[n]
		if !ok {
			return nil, fmt.Errorf("promsim: unknown scenario %q", n)
		}
		out = append(out, s)
	}
	return out, nil
}

// onset draws a run's onset; span is the judged time (lifetime − warmup).
func (s Scenario) onset(r *rand.Rand, span time.Duration) time.Duration {
	if s.AA || s.Onset == OnsetWarmup {
		return 0
	}
	last := int((span - 5*time.Minute) / time.Minute)
	if last < 0 {
		last = 0
	}
	return time.Duration(r.IntN(last+1)) * time.Minute
}
