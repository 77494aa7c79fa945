package ui

import (
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics/prometheus"
)

// testKinds are the provider and actuator types this package's test configs name,
// registered as cmd/canaryd does.
func testKinds() config.Kinds {
	return config.Kinds{
		Providers: map[string]config.ProviderKind{
			"prometheus": config.ProviderKindOf(prometheus.New, config.RateLimit{QPS: 100, Burst: 200}),
		},
	}
}
