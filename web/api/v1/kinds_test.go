package v1

import (
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators/webhook"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics/datadog"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// testKinds are the provider and actuator types this package's test configs name,
// registered as cmd/canaryd does.
func testKinds() config.Kinds {
	return config.Kinds{
		Providers: map[string]config.ProviderKind{
			"datadog":    config.ProviderKindOf(func(c datadog.Config, l *zap.Logger) (*datadog.Provider, error) { return datadog.New(c, l) }, config.RateLimit{QPS: 0.4, Burst: 20}),
			"prometheus": config.ProviderKindOf(prometheus.New, config.RateLimit{QPS: 100, Burst: 200}),
			"synthetic":  config.ProviderKindOf(synthetic.New, config.RateLimit{QPS: 10000, Burst: 10000}),
		},
		Actuators: map[string]config.ActuatorKind{
			"webhook": config.ActuatorKindOf(webhook.New, config.ActuatorDefaults{Attempts: 3}),
		},
	}
}
