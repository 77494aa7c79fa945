package synthetic

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
)

// maxPoints bounds one query's work (points over all its streams).
const maxPoints = 5_000_000

// Provider generates series from a Config. It holds no state between queries and is safe
// for concurrent use.
type Provider struct {
	seed    int64
	signals map[string]signalDef
	regs    map[string]map[string]Regression
	// rb, when set, holds the simulated rollbacks its cohorts' points follow.
	rb *Rollbacks
}

var _ metrics.Provider = (*Provider)(nil)

// WithRollbacks is New for a provider whose cohorts follow the simulated rollbacks rb
// records (the synthetic_rollback actuator's).
func WithRollbacks(rb *Rollbacks) func(Config, *zap.Logger) (*Provider, error) {
	return func(cfg Config, logger *zap.Logger) (*Provider, error) {
		p, err := New(cfg, logger)
		if p != nil {
			p.rb = rb
		}
		return p, err
	}
}

// New checks cfg and resolves each signal's model. A nil logger logs nothing.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("synthetic config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	sigs := defaultSignals()
	for name, def := range sigs {
		if o, ok := cfg.Signals[name]; ok {
			if o.Level != nil {
				def.level = *o.Level
			}
			if o.Noise != nil {
				def.noise = *o.Noise
			}
			if o.Autocorrelation != nil {
				def.phi = *o.Autocorrelation
			}
		}
		if def.kind == kindLatency {
			def.spread = sampleSpread(def.quantile)
		}
		sigs[name] = def
	}
	logger.Debug("synthetic provider ready", zap.Int64("seed", cfg.Seed), zap.Int("cohorts_with_regressions", len(cfg.Regressions)))
	return &Provider{seed: cfg.Seed, signals: sigs, regs: cfg.Regressions}, nil
}

// Ping always succeeds: the synthetic provider is in the process.
func (p *Provider) Ping(ctx context.Context) error { return ctx.Err() }

// Query parses q.Text (see Spec for the language) and generates the points at q.Start,
// q.Start+q.Step, … up to q.End for each stream. Regressions with an After take effect
// at q.Start+After.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := ctx.Err(); err != nil {
		return metrics.Series{}, fmt.Errorf("synthetic: %w", err)
	}
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("synthetic: %w", err)
	}
	spec, err := ParseQuery(q.Text)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("synthetic: query %q: %w", q.Text, err)
	}
	if q.Step < time.Millisecond {
		return metrics.Series{}, fmt.Errorf("synthetic: step %s is below 1ms", q.Step)
	}
	startMs, stepMs := q.Start.UnixMilli(), q.Step.Milliseconds()
	n := (q.End.UnixMilli()-startMs)/stepMs + 1
	kind := p.signals[spec.Signal].kind
	perStream := int64(1)
	if kind == kindBuckets {
		perStream = int64(len(bucketBounds()) + 1)
	}
	if total := n * int64(spec.Streams) * perStream; total > maxPoints {
		return metrics.Series{}, fmt.Errorf("synthetic: query %q asks for %d points, more than %d", q.Text, total, maxPoints)
	}
	seed := p.seed
	if spec.HasSeed {
		seed = spec.Seed
	}
	g := newGen(startMs, stepMs, int(n))
	model := modelSignal(spec.Signal)
	sig := p.resolve(spec.Cohort, model, startMs)
	sig.def.kind = kind
	var req, p99 cohortSignal
	if kind != kindRequests && kind != kindRequestCount && kind != kindSaturation {
		req = p.resolve(spec.Cohort, "request_rate", startMs)
	}
	if kind == kindBuckets {
		p99 = p.resolve(spec.Cohort, "latency_p99", startMs)
	}
	if ms, ok := p.rb.lookup(spec.App, spec.Cohort); ok {
		for _, cs := range []*cohortSignal{&sig, &req, &p99} {
			cs.rollbackMs, cs.rolledBack = ms, true
		}
	}
	base := mix(mix(mix(uint64(seed))^hashString(spec.App)) ^ hashString(spec.Cohort))
	out := metrics.Series{Streams: make([]metrics.Stream, 0, spec.Streams*int(perStream))}
	for s := range spec.Streams {
		if err := ctx.Err(); err != nil {
			return metrics.Series{}, fmt.Errorf("synthetic: %w", err)
		}
		key := mix(base + uint64(s+1)*golden)
		labels := map[string]string{"signal": spec.Signal, "cohort": spec.Cohort, "stream": strconv.Itoa(s)}
		if spec.App != "" {
			labels["app"] = spec.App
		}
		if kind != kindBuckets {
			out.Streams = append(out.Streams, metrics.Stream{Labels: labels, Points: g.points(key, model, sig, req)})
			continue
		}
		bounds := bucketBounds()
		for b, pts := range g.buckets(key, sig, p99, req) {
			l := maps.Clone(labels)
			l["le"] = "+Inf"
			if b < len(bounds) {
				l["le"] = strconv.FormatFloat(bounds[b], 'g', -1, 64)
			}
			out.Streams = append(out.Streams, metrics.Stream{Labels: l, Points: pts})
		}
	}
	return out, nil
}

// cohortSignal is one signal's model for one cohort: the defaults, the cohort's
// regression, and when the regression starts.
type cohortSignal struct {
	def     signalDef
	reg     Regression
	phi     float64
	onsetMs int64
	// rolledBack: the cohort was rolled back at rollbackMs; its regression ends there
	// unless it survives rollbacks.
	rolledBack bool
	rollbackMs int64
}

func (p *Provider) resolve(cohort, signal string, anchorMs int64) cohortSignal {
	cs := cohortSignal{def: p.signals[signal], reg: DefaultRegression()}
	if r, ok := p.regs[cohort][signal]; ok {
		cs.reg = r
	}
	cs.phi = cs.def.phi
	if cs.reg.Autocorrelation > 0 {
		cs.phi = cs.reg.Autocorrelation
	}
	cs.onsetMs = anchorMs + time.Duration(cs.reg.After).Milliseconds()
	return cs
}

// at is the level and noise scale at time t (ms): the regression's from its onset on.
func (cs *cohortSignal) at(t int64) (level, noise float64, active bool) {
	if t < cs.onsetMs || (cs.rolledBack && t >= cs.rollbackMs && !cs.reg.SurvivesRollback) {
		return cs.def.level, cs.def.noise, false
	}
	return cs.def.level*cs.reg.Ratio + cs.reg.Shift, cs.def.noise * cs.reg.Noise, true
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
