package config

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestQueryLoadDefaults(t *testing.T) {
	c, err := Parse([]byte(`
providers:
  prom: {type: prometheus, address: "http://127.0.0.1:9090"}
  tuned: {type: prometheus, address: "http://127.0.0.1:9091", rate_limit: {qps: 5}}
analyses: {}
`), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MinInterval != model.Duration(10*time.Second) {
		t.Errorf("server.min_interval = %s, want 10s", c.Server.MinInterval)
	}
	if want := (RateLimit{QPS: 10, Burst: 100}); c.Scheduler.CanaryRateLimit != want {
		t.Errorf("scheduler.canary_rate_limit = %+v, want %+v", c.Scheduler.CanaryRateLimit, want)
	}
	for name, want := range map[string]RateLimit{
		"prom":  testPromRateLimit,
		"tuned": {QPS: 5, Burst: testPromRateLimit.Burst}, // what the entry leaves out is the kind's default
	} {
		if got := c.Providers[name].RateLimit; got != want {
			t.Errorf("providers.%s.rate_limit = %+v, want %+v", name, got, want)
		}
	}
}

func TestQueryLoadErrors(t *testing.T) {
	const prov = "providers: {p: {type: prometheus, address: 'http://x'}}\n"
	cases := []struct{ name, yaml, want string }{
		{"interval below min_interval", prov + "analyses: {a: {provider: p, interval: 1s, step: 1s, lifetime: 1h, metrics: [{name: m, query: q}]}}",
			"analyses.a.interval: 1s is shorter than server.min_interval (10s)"},
		{"interval below a raised min_interval", "server: {min_interval: 2m}\n" + prov + "analyses: {a: {provider: p, interval: 1m, lifetime: 1h, metrics: [{name: m, query: q}]}}",
			"analyses.a.interval: 1m is shorter than server.min_interval (2m)"},
		{"interval below the step", prov + "analyses: {a: {provider: p, interval: 30s, step: 1m, lifetime: 1h, metrics: [{name: m, query: q}]}}",
			"analyses.a.interval: 30s is shorter than the step (1m)"},
		{"zero min_interval", "server: {min_interval: 0s}\nanalyses: {}", "server.min_interval: must be > 0"},
		{"zero qps", "providers: {p: {type: prometheus, address: 'http://x', rate_limit: {qps: 0}}}\nanalyses: {}", "providers.p.rate_limit.qps: must be > 0"},
		{"zero burst", "providers: {p: {type: synthetic, rate_limit: {qps: 1, burst: 0}}}\nanalyses: {}", "providers.p.rate_limit.burst: must be between 1 and 1000000"},
		{"unknown rate_limit key", "providers: {p: {type: synthetic, rate_limit: {rps: 1}}}\nanalyses: {}", `providers.p.rate_limit: unknown field "rps"`},
		{"canary limit", "scheduler: {canary_rate_limit: {qps: -1, burst: 3}}\nanalyses: {}", "scheduler.canary_rate_limit.qps: must be > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), testKinds())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
