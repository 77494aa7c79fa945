package main

import (
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators/datadogevent"
	"github.com/canaryd/canaryd/actuators/exec"
	"github.com/canaryd/canaryd/actuators/flag"
	"github.com/canaryd/canaryd/actuators/grafana"
	"github.com/canaryd/canaryd/actuators/pagerduty"
	"github.com/canaryd/canaryd/actuators/slack"
	"github.com/canaryd/canaryd/actuators/synthrollback"
	"github.com/canaryd/canaryd/actuators/webhook"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics/cloudwatch"
	"github.com/canaryd/canaryd/metrics/datadog"
	"github.com/canaryd/canaryd/metrics/gcm"
	"github.com/canaryd/canaryd/metrics/graphite"
	"github.com/canaryd/canaryd/metrics/influxdb"
	"github.com/canaryd/canaryd/metrics/newrelic"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/synthetic"
	"github.com/canaryd/canaryd/metrics/web"
)

// kinds is every provider and actuator type the binary knows: adding one is its folder
// under metrics/ or actuators/ and one line here.
func kinds() config.Kinds { return kindsWith(synthetic.NewRollbacks()) }

// kindsWith is kinds whose synthetic providers and synthetic_rollback actuators share
// sim, the simulated rollbacks (one per daemon, so that a reload keeps them).
func kindsWith(sim *synthetic.Rollbacks) config.Kinds {
	return config.Kinds{
		Providers: map[string]config.ProviderKind{
			// A Prometheus server answers range queries in milliseconds: headroom for
			// hundreds of canaries, not a cap on a normal load.
			"prometheus": config.ProviderKindOf(prometheus.New, config.RateLimit{QPS: 100, Burst: 200}),
			// Datadog limits metric queries per organisation (a budget in the low
			// thousands an hour, shared with dashboards; its X-RateLimit-Limit header says
			// what yours is): the default stays under 1,500 an hour. (New's options are for
			// tests.)
			"datadog": config.ProviderKindOf(func(c datadog.Config, l *zap.Logger) (*datadog.Provider, error) { return datadog.New(c, l) }, config.RateLimit{QPS: 0.4, Burst: 20}),
			// GetMetricData's default quota is 50 requests a second per account and
			// region, shared with dashboards and alarms, and each metric asked costs money.
			"cloudwatch": config.ProviderKindOf(func(c cloudwatch.Config, l *zap.Logger) (*cloudwatch.Provider, error) { return cloudwatch.New(c, l) }, config.RateLimit{QPS: 10, Burst: 50}),
			// A self-hosted InfluxDB 1.x answers like Prometheus: the same headroom.
			"influxdb": config.ProviderKindOf(influxdb.New, config.RateLimit{QPS: 100, Burst: 200}),
			// graphite-web renders from whisper files on its own disk: a self-hosted
			// server's headroom, below Prometheus' (each render reads files).
			"graphite": config.ProviderKindOf(graphite.New, config.RateLimit{QPS: 50, Burst: 100}),
			// Cloud Monitoring's read quota is per project (6,000 time-series queries a
			// minute by default), shared with dashboards: a tenth of it.
			"gcm": config.ProviderKindOf(gcm.New, config.RateLimit{QPS: 10, Burst: 50}),
			// NerdGraph limits NRQL per account (concurrent queries, and a query budget
			// shared with dashboards and alerts): well under its limits by default.
			"newrelic": config.ProviderKindOf(newrelic.New, config.RateLimit{QPS: 5, Burst: 25}),
			// Any HTTP/JSON service, sized for none in particular: modest unless the entry
			// says what its service takes.
			"web": config.ProviderKindOf(web.New, config.RateLimit{QPS: 10, Burst: 50}),
			// In process: the bucket only bounds CPU.
			"synthetic": config.ProviderKindOf(synthetic.WithRollbacks(sim), config.RateLimit{QPS: 10000, Burst: 10000}),
		},
		Actuators: map[string]config.ActuatorKind{
			"webhook": config.ActuatorKindOf(webhook.New, config.ActuatorDefaults{Attempts: 3}),
			// A command is run once unless it exits with a retry code: a rollback that
			// failed half-way is for a human to look at.
			"exec":          config.ActuatorKindOf(exec.New, config.ActuatorDefaults{Attempts: 1}),
			"flag":          config.ActuatorKindOf(flag.New, config.ActuatorDefaults{Attempts: 3}),
			"slack":         config.ActuatorKindOf(slack.New, config.ActuatorDefaults{Notification: true, Attempts: 3}),
			"pagerduty":     config.ActuatorKindOf(pagerduty.New, config.ActuatorDefaults{Notification: true, Attempts: 5}),
			"grafana":       config.ActuatorKindOf(grafana.New, config.ActuatorDefaults{Notification: true, Attempts: 3}),
			"datadog_event": config.ActuatorKindOf(datadogevent.New, config.ActuatorDefaults{Notification: true, Attempts: 3}),
			// The demo's rollback: it rolls a synthetic provider's cohort back in memory.
			"synthetic_rollback": config.ActuatorKindOf(synthrollback.New(sim), config.ActuatorDefaults{Attempts: 1}),
		},
	}
}
