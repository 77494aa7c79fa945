// Package actuators holds the Actuator interface, one subpackage per kind (webhook, exec,
// flag, slack, pagerduty) and the safety layer around them: once per verdict, circuit
// breaker, cooldown, dry run and the audit log. It acts on verdicts; it never decides one.
package actuators
