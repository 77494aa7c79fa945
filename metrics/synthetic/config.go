package synthetic

import (
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"math"
	"sort"

	"github.com/prometheus/common/model"
)

// Config is a synthetic provider's YAML configuration:
//
//	seed: 7
//	signals: {latency_p50: {level: 0.12}}
//	regressions:
//	  canary:
//	    latency_p99: {ratio: 1.6}
//	    error_rate: {ratio: 10, after: 5m}
type Config struct {
	// Seed makes the provider's series; a query's seed= overrides it.
	Seed int64 `yaml:"seed"`
	// Signals overrides the default level or noise of a signal, by signal name.
	Signals map[string]SignalConfig `yaml:"signals,omitempty"`
	// Regressions maps a cohort name (what the query's cohort= says) and a signal name to
	// the regression that cohort shows on that signal.
	Regressions map[string]map[string]Regression `yaml:"regressions,omitempty"`
}

// SignalConfig overrides a signal's model; an omitted field keeps the default.
type SignalConfig struct {
	// Level is the signal's median without regressions (req/s, ratio, seconds or
	// utilisation, depending on the signal).
	Level *float64 `yaml:"level,omitempty"`
	// Noise is the signal's noise scale: the sd of log(value) for request_rate and the
	// latencies, the sd of log of the error-rate overdispersion, the absolute sd of saturation.
	Noise *float64 `yaml:"noise,omitempty"`
	// Autocorrelation is the AR(1) coefficient of the signal's noise in every cohort, per
	// step (0, the default, is independent points); a regression may set its own.
	Autocorrelation *float64 `yaml:"autocorrelation,omitempty"`
}

// Regression is what a cohort does differently on one signal, from After on.
type Regression struct {
	// Shift is added to the signal's level, Ratio multiplies it (shift after ratio).
	Shift float64 `yaml:"shift,omitempty"`
	Ratio float64 `yaml:"ratio,omitempty"`
	// After delays the regression: it applies to points at or after the query's start plus
	// After (a step change in the middle of the canary). The scheduler always queries from
	// the canary's start plus warmup, so After counts from the end of the warmup; a wall
	// clock anchor would make a demo's regression happen once, whenever the file said.
	After model.Duration `yaml:"after,omitempty"`
	// Noise multiplies the signal's noise scale.
	Noise float64 `yaml:"noise,omitempty"`
	// Missing is the fraction of points that are NaN (a scrape gap, a division by zero).
	Missing float64 `yaml:"missing,omitempty"`
	// Autocorrelation is the AR(1) coefficient of the noise per step (0 = the signal's,
	// independent points by default). Unlike the rest it holds over the whole series: it
	// describes the process, not a change.
	Autocorrelation float64 `yaml:"autocorrelation,omitempty"`
	// Burst makes short spikes.
	Burst Burst `yaml:"burst,omitempty"`
	// SurvivesRollback keeps the regression after the cohort is rolled back (Rollbacks):
	// a regression the deploy did not cause, which the rollback does not help.
	SurvivesRollback bool `yaml:"survives_rollback,omitempty"`
}

// Burst is a spike starting at a point with probability Rate, multiplying the value by
// Factor for Length points.
type Burst struct {
	Rate   float64 `yaml:"rate,omitempty"`
	Factor float64 `yaml:"factor,omitempty"`
	Length int     `yaml:"length,omitempty"`
}

// maxAutocorrelation keeps the AR(1) sum short: each point sums the noise of the last
// log(1e-4)/log(φ) steps (≈ 180 at 0.95).
const maxAutocorrelation = 0.95

// DefaultConfig returns what an omitted key means: seed 0, default signals, no regressions.
func DefaultConfig() Config { return Config{} }

// DefaultRegression is a regression that changes nothing (ratio 1, noise 1) with bursts,
// when a rate is set, of ×3 for 3 points: what an omitted YAML key means. Build
// regressions in Go from it, not from the zero value (whose ratio 0 is invalid).
func DefaultRegression() Regression {
	return Regression{Ratio: 1, Noise: 1, Burst: Burst{Factor: 3, Length: 3}}
}

// UnmarshalYAML sets the defaults, then decodes the given keys onto them; config (and
// New) then call Validate.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML sets a regression's defaults (ratio 1, noise 1, bursts ×3 for 3 points).
func (r *Regression) UnmarshalYAML(unmarshal func(any) error) error {
	*r = DefaultRegression()
	type plain Regression
	return unmarshal((*plain)(r))
}

// Validate reports every invalid field by its YAML path.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	for _, name := range sortedKeys(c.Signals) {
		path := "signals." + name
		if !knownSignal(name) {
			es.Add(path, "unknown signal, want one of %v", SignalNames())
			continue
		}
		if m := modelSignal(name); m != name {
			es.Add(path, "a view of %s, configure %s instead", m, m)
			continue
		}
		s := c.Signals[name]
		if s.Level != nil && (*s.Level < 0 || math.IsNaN(*s.Level) || math.IsInf(*s.Level, 0)) {
			es.Add(path+".level", "must be a finite number >= 0")
		} else if (name == "error_rate" || name == "saturation") && s.Level != nil && *s.Level > 1 {
			es.Add(path+".level", "must be <= 1")
		}
		if s.Noise != nil && (*s.Noise < 0 || math.IsNaN(*s.Noise) || *s.Noise > 5) {
			es.Add(path+".noise", "must be in [0, 5]")
		}
		if a := s.Autocorrelation; a != nil && !(*a >= 0 && *a <= maxAutocorrelation) {
			es.Add(path+".autocorrelation", "must be in [0, %v]", maxAutocorrelation)
		}
	}
	for _, cohort := range sortedKeys(c.Regressions) {
		if cohort == "" {
			es.Add("regressions", "a cohort name must not be empty")
			continue
		}
		for _, name := range sortedKeys(c.Regressions[cohort]) {
			path := fmt.Sprintf("regressions.%s.%s", cohort, name)
			if !knownSignal(name) {
				es.Add(path, "unknown signal, want one of %v", SignalNames())
				continue
			}
			if m := modelSignal(name); m != name {
				es.Add(path, "a view of %s, configure %s instead", m, m)
				continue
			}
			es.AddAll(path, c.Regressions[cohort][name].validate())
		}
	}
	return es
}

func (r Regression) validate() field.Errors {
	var es field.Errors
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(r.Shift) {
		es.Add("shift", "must be finite")
	}
	if !(r.Ratio > 0) || !finite(r.Ratio) {
		es.Add("ratio", "must be > 0")
	}
	if r.After < 0 {
		es.Add("after", "must be >= 0")
	}
	if !(r.Noise > 0) || r.Noise > 100 {
		es.Add("noise", "must be in (0, 100]")
	}
	if !(r.Missing >= 0 && r.Missing < 1) {
		es.Add("missing", "must be in [0, 1)")
	}
	if !(r.Autocorrelation >= 0 && r.Autocorrelation <= maxAutocorrelation) {
		es.Add("autocorrelation", "must be in [0, %v]", maxAutocorrelation)
	}
	if !(r.Burst.Rate >= 0 && r.Burst.Rate <= 1) {
		es.Add("burst.rate", "must be in [0, 1]")
	}
	if !(r.Burst.Factor > 0) || !finite(r.Burst.Factor) {
		es.Add("burst.factor", "must be > 0")
	}
	if r.Burst.Length < 1 || r.Burst.Length > 1000 {
		es.Add("burst.length", "must be in [1, 1000]")
	}
	return es
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
