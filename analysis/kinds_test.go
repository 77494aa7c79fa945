package analysis_test

import (
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// testKinds are the provider and actuator types this package's test configs name,
// registered as cmd/canaryd does.
func testKinds() config.Kinds {
	return config.Kinds{
		Providers: map[string]config.ProviderKind{
			"prometheus": config.ProviderKindOf(prometheus.New, config.RateLimit{QPS: 100, Burst: 200}),
			"synthetic":  config.ProviderKindOf(synthetic.New, config.RateLimit{QPS: 10000, Burst: 10000}),
		},
	}
}
