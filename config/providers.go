package config

import (
	"fmt"
	"slices"

	"go.uber.org/zap"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/metrics"
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
	// kind builds it.
	kind ProviderKind
}

// RateLimit is a token bucket: QPS queries a second on average, Burst at once.
type RateLimit struct {
	QPS   float64 `yaml:"qps"`
	Burst int     `yaml:"burst"`
}

func (r RateLimit) validate(path string, errs *Errors) {
	if !(r.QPS > 0) || r.QPS > 1e6 {
		errs.Add(join(path, "qps"), "must be > 0 and at most 1000000")
	}
	if r.Burst < 1 || r.Burst > 1e6 {
		errs.Add(join(path, "burst"), "must be between 1 and 1000000")
	}
}

func parseProvider(name string, raw any, path string, kinds Kinds, errs *Errors) *Provider {
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
	if !typeOf("provider", p.Type, kinds.providerTypes(), path, errs) {
		return nil
	}
	kind := kinds.Providers[p.Type]
	p.kind = kind
	p.RateLimit = kind.RateLimit
	if rateLimit != nil {
		rlPath := join(path, "rate_limit")
		if !decodeAt(rateLimit, &p.RateLimit, rlPath, errs) {
			return nil
		}
		p.RateLimit.validate(rlPath, errs)
	}
	b, err := yaml.Marshal(rest)
	if err != nil {
		errs.Add(path, "re-encode: %v", err)
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
	if p.kind.build == nil {
		return nil, fmt.Errorf("provider %s: type %q: %w", p.Name, p.Type, errNoKind)
	}
	mp, err := p.kind.build(p.Config, logger.With(zap.String("provider", p.Name)))
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
