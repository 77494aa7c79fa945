package config

import (
	"context"
	"fmt"
	"net/url"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
)

func templateData(track string) metrics.TemplateData {
	return metrics.TemplateData{Cohort: map[string]string{"track": track}}
}

// The test kinds stand in for real backends, which config must not import: a
// "prometheus" provider with an address, a "synthetic" one with no keys, a "webhook"
// actuator with a url and a "slack" notification one.
var testPromRateLimit = RateLimit{QPS: 100, Burst: 200}

func testKinds() Kinds {
	return Kinds{
		Providers: map[string]ProviderKind{
			"prometheus": ProviderKindOf(newTestProvider[testAddrConfig], testPromRateLimit),
			"synthetic":  ProviderKindOf(newTestProvider[testEmptyConfig], RateLimit{QPS: 1000, Burst: 1000}),
		},
		Actuators: map[string]ActuatorKind{
			"webhook": ActuatorKindOf(newTestActuator[testURLConfig], ActuatorDefaults{Attempts: 3}),
			"slack":   ActuatorKindOf(newTestActuator[testURLConfig], ActuatorDefaults{Notification: true, Attempts: 5}),
		},
	}
}

type testAddrConfig struct {
	Address string `yaml:"address"`
}

func (c *testAddrConfig) Validate() field.Errors {
	var es field.Errors
	if u, err := url.Parse(c.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		es.Add("address", "scheme must be http or https")
	}
	return es
}

type testEmptyConfig struct{}

func (*testEmptyConfig) Validate() field.Errors { return nil }

type testURLConfig struct {
	URL string `yaml:"url"`
}

func (c *testURLConfig) Validate() field.Errors {
	var es field.Errors
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		es.Add("url", "URL scheme must be http or https")
	}
	return es
}

type testProvider struct{ cfg any }

func (testProvider) Query(context.Context, metrics.Query) (metrics.Series, error) {
	return metrics.Series{}, nil
}

func newTestProvider[C any](c C, _ *zap.Logger) (testProvider, error) {
	return testProvider{cfg: c}, nil
}

type testActuator struct{ cfg any }

func (testActuator) Render(actuators.Event) (actuators.Request, error) {
	return actuators.Request{}, nil
}
func (testActuator) Act(context.Context, actuators.Event) (actuators.Result, error) {
	return actuators.Result{}, fmt.Errorf("test actuator")
}

func newTestActuator[C any](c C, _ actuators.Options) (testActuator, error) {
	return testActuator{cfg: c}, nil
}
