// Package actuators holds what every actuator kind shares: the Actuator interface, the
// Event a kind acts on, templates, the HTTP send-and-classify helper and config field
// errors. Each kind is a subpackage (webhook, exec, flag, slack, pagerduty, grafana,
// datadogevent); the safety layer around them (once per verdict, breaker, cooldown, dry
// run, approval, audit log) is actuators/guard. It acts on verdicts; it never decides one, and a kind never retries
// or persists anything itself: it says whether a failure is worth retrying.
package actuators
