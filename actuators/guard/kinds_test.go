package guard

import (
	"github.com/canaryd/canaryd/actuators/exec"
	"github.com/canaryd/canaryd/actuators/pagerduty"
	"github.com/canaryd/canaryd/actuators/webhook"
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
		Actuators: map[string]config.ActuatorKind{
			"exec":      config.ActuatorKindOf(exec.New, config.ActuatorDefaults{Attempts: 1}),
			"pagerduty": config.ActuatorKindOf(pagerduty.New, config.ActuatorDefaults{Notification: true, Attempts: 5}),
			"webhook":   config.ActuatorKindOf(webhook.New, config.ActuatorDefaults{Attempts: 3}),
		},
	}
}
