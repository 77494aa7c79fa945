package guard

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canaryd/canaryd/analysis"
)

// Metrics are the guard's own series on /metrics.
type Metrics struct {
	// Actions counts actions by their final outcome (and awaiting_approval when held).
	Actions *prometheus.CounterVec
	// Attempts counts attempts by result: success, retry (failed, will retry), failure.
	Attempts *prometheus.CounterVec
	// BreakerRefusals and CooldownSuppressions count actions the safety rules stopped.
	BreakerRefusals      *prometheus.CounterVec
	CooldownSuppressions *prometheus.CounterVec
	// VerdictToAction is the time from a canary's end to its action being done.
	VerdictToAction *prometheus.HistogramVec
	// AttemptDuration is how long one attempt took.
	AttemptDuration *prometheus.HistogramVec
	// Queued is the work waiting: canaries to plan and actions to fire or retry.
	Queued prometheus.Gauge
	// AwaitingApproval is how many actions wait for a human.
	AwaitingApproval prometheus.Gauge
	// StoreErrors counts the guard's failed store writes; PendingOutcomes is how many
	// attempts' outcomes are waiting for the store to accept them.
	StoreErrors     prometheus.Counter
	PendingOutcomes prometheus.Gauge
	// TimeToDecide is the time from a canary's start to its final verdict, approval
	// included: observed once nothing of the canary waits for approval.
	TimeToDecide *prometheus.HistogramVec
}

// NewMetrics makes the guard's metrics and registers them on reg (none when nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_actuator_actions_total",
			Help: "Actions by actuator, actuator type and outcome (succeeded, failed, refused, suppressed, dry_run, skipped, rejected, expired, abandoned, awaiting_approval).",
		}, []string{"actuator", "type", "outcome"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_actuator_attempts_total",
			Help: "Attempts by actuator and result (success, retry, failure).",
		}, []string{"actuator", "type", "result"}),
		BreakerRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_actuator_breaker_refusals_total",
			Help: "Actions refused because the actuator already acted breaker.max times on the service within breaker.window.",
		}, []string{"actuator"}),
		CooldownSuppressions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_actuator_cooldown_suppressions_total",
			Help: "Actions suppressed because their service was in its cooldown after another canary's action.",
		}, []string{"actuator"}),
		VerdictToAction: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "canaryd_actuator_verdict_to_action_seconds",
			Help:    "Time from a canary's end to its action succeeding or failing for good.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600},
		}, []string{"actuator", "outcome"}),
		AttemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "canaryd_actuator_attempt_duration_seconds",
			Help:    "Duration of one attempt of an action.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"actuator", "type"}),
		Queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_actuator_queued",
			Help: "Canaries waiting to be planned plus actions waiting to fire or be retried.",
		}),
		AwaitingApproval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_actuator_awaiting_approval",
			Help: "Actions held for approval.",
		}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canaryd_actuator_store_errors_total",
			Help: "Failed writes of the safety layer to the store (each is retried; an attempt's outcome until it is written).",
		}),
		PendingOutcomes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_actuator_pending_outcomes",
			Help: "Attempts that happened whose outcome the store has not accepted yet; canaryd is not ready while above 0.",
		}),
		TimeToDecide: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "canaryd_time_to_decide_seconds",
			Help:    "Time from a canary's start to its final verdict, a held action's approval or rejection included.",
			Buckets: analysis.LoopBuckets,
		}, []string{"analysis"}),
	}
	if reg != nil {
		reg.MustRegister(m.Actions, m.Attempts, m.BreakerRefusals, m.CooldownSuppressions,
			m.VerdictToAction, m.AttemptDuration, m.Queued, m.AwaitingApproval,
			m.StoreErrors, m.PendingOutcomes, m.TimeToDecide)
	}
	return m
}
