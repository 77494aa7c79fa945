package config

import (
	"fmt"
	"slices"
	"sort"

	"go.uber.org/zap"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// Provider is one `providers:` entry: its kind and that kind's own Config
// (prometheus.Config, datadog.Config, synthetic.Config), decoded by the kind's package.
type Provider struct {
	Name   string
	Type   string
	Config any
	// RateLimit bounds the queries every canary together sends to this provider, so that
	// many canaries (or one catching up on a past start) queue instead of flooding it.
	RateLimit RateLimit
	// Source is the entry as YAML; two entries with the same Source build the same
	// provider, so a reload can keep the ones that did not change.
	Source []byte
}

// RateLimit is a token bucket: QPS queries a second on average, Burst at once.
type RateLimit struct {
	QPS   float64 `yaml:"qps"`
	Burst int     `yaml:"burst"`
}

func (r RateLimit) validate(path string, errs *Errors) {
	if !(r.QPS > 0) || r.QPS > 1e6 {
		errs.add(join(path, "qps"), "must be > 0 and at most 1000000")
	}
	if r.Burst < 1 || r.Burst > 1e6 {
		errs.add(join(path, "burst"), "must be between 1 and 1000000")
	}
}

// providerKind is how one provider type is decoded from YAML and built.
type providerKind struct {
	// rateLimit is the kind's default `rate_limit`, sized for what such a backend takes.
	rateLimit RateLimit
	decode    func(b []byte, path string, errs *Errors) (any, bool)
	build     func(cfg any, logger *zap.Logger) (metrics.Provider, error)
}

// providerKinds is the one place that knows every provider package: adding a backend is
// one entry here.
func providerKinds() map[string]providerKind {
	return map[string]providerKind{
		// A Prometheus server answers range queries in milliseconds; the default is
		// headroom for hundreds of canaries, not a cap on a normal load.
		"prometheus": {
			rateLimit: RateLimit{QPS: 100, Burst: 200},
			decode: func(b []byte, path string, errs *Errors) (any, bool) {
				var c prometheus.Config
				ok := decodeBytes(b, &c, path, errs)
				return c, ok
			},
			build: func(cfg any, logger *zap.Logger) (metrics.Provider, error) {
				return prometheus.New(cfg.(prometheus.Config), logger)
			},
		},
		// Datadog limits metric queries per organisation (a budget in the low thousands
		// an hour, shared with dashboards; its X-RateLimit-Limit header says what yours
		// is): the default stays under 1,500 an hour.
		"datadog": {
			rateLimit: RateLimit{QPS: 0.4, Burst: 20},
			decode: func(b []byte, path string, errs *Errors) (any, bool) {
				var c datadog.Config
				ok := decodeBytes(b, &c, path, errs)
				return c, ok
			},
			build: func(cfg any, logger *zap.Logger) (metrics.Provider, error) {
				return datadog.New(cfg.(datadog.Config), logger)
			},
		},
		// In process: the bucket only bounds CPU.
		"synthetic": {
			rateLimit: RateLimit{QPS: 10000, Burst: 10000},
			decode: func(b []byte, path string, errs *Errors) (any, bool) {
				var c synthetic.Config
				ok := decodeBytes(b, &c, path, errs)
				return c, ok
			},
			build: func(cfg any, logger *zap.Logger) (metrics.Provider, error) {
				return synthetic.New(cfg.(synthetic.Config), logger)
			},
		},
	}
}

func providerTypes() []string {
	var ts []string
	for t := range providerKinds() {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

func parseProvider(name string, raw any, path string, errs *Errors) *Provider {
	var ms yaml.MapSlice
	if !decodeAt(raw, &ms, path, errs) {
		return nil
	}
	p := &Provider{Name: name}
	var rest yaml.MapSlice
	var rateLimit any
	for _, it := range ms {
		switch it.Key {
		case "type":
			p.Type, _ = it.Value.(string)
			continue
		case "rate_limit":
			rateLimit = it.Value
			continue
		}
		rest = append(rest, it)
	}
	kind, ok := providerKinds()[p.Type]
	if !ok {
		if p.Type == "" {
			errs.add(join(path, "type"), "required, one of %v", providerTypes())
		} else {
			errs.add(join(path, "type"), "unknown provider type %q, want one of %v", p.Type, providerTypes())
		}
		return nil
	}
	p.RateLimit = kind.rateLimit
	if rateLimit != nil {
		rlPath := join(path, "rate_limit")
		if !decodeAt(rateLimit, &p.RateLimit, rlPath, errs) {
			return nil
		}
		p.RateLimit.validate(rlPath, errs)
	}
	b, err := yaml.Marshal(rest)
	if err != nil {
		errs.add(path, "re-encode: %v", err)
		return nil
	}
	if len(rest) == 0 {
		b = []byte("{}")
	}
	cfg, ok := kind.decode(b, path, errs)
	if !ok {
		return nil
	}
	p.Config = cfg
	p.Source, _ = yaml.Marshal(ms)
	return p
}

// Build makes the provider this entry describes.
func (p *Provider) Build(logger *zap.Logger) (metrics.Provider, error) {
	kind, ok := providerKinds()[p.Type]
	if !ok {
		return nil, fmt.Errorf("provider %s: unknown type %q", p.Name, p.Type)
	}
	mp, err := kind.build(p.Config, logger.With(zap.String("provider", p.Name)))
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	return mp, nil
}

// sameProvider reports whether two entries build the same provider.
func sameProvider(a, b *Provider) bool {
	return a != nil && b != nil && a.Type == b.Type && slices.Equal(a.Source, b.Source)
}

// Unchanged reports whether this provider's entry is the same as other's, so a reload
// can keep the provider already built.
func (p *Provider) Unchanged(other *Provider) bool { return sameProvider(p, other) }
