package eval

import (
	"github.com/canaryd/canaryd/actuators/exec"
	"github.com/canaryd/canaryd/actuators/webhook"
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
		// The shipped presets name them.
		Actuators: map[string]config.ActuatorKind{
			"exec":    config.ActuatorKindOf(exec.New, config.ActuatorDefaults{Attempts: 1}),
			"webhook": config.ActuatorKindOf(webhook.New, config.ActuatorDefaults{Attempts: 3}),
		},
	}
}
