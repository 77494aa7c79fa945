package analysis

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are canaryd's own metrics, registered on a registry the caller owns (never
// the global one), so tests and several daemons in one process do not collide.
type Metrics struct {
	Canaries        *prometheus.GaugeVec
	Verdicts        *prometheus.CounterVec
	Score           *prometheus.GaugeVec
	Classifications *prometheus.CounterVec
	QueryDuration   *prometheus.HistogramVec
	QueryErrors     *prometheus.CounterVec
	QueryThrottled  *prometheus.CounterVec
	TimeToVerdict   *prometheus.HistogramVec
	Lag             prometheus.Histogram
	Intervals       *prometheus.CounterVec
	StoreErrors     prometheus.Counter
	// Leases (Options.Leases): held by this replica, live replicas, renewals by result.
	LeasesHeld    prometheus.Gauge
	Replicas      prometheus.Gauge
	LeaseRenewals *prometheus.CounterVec

	ReloadSuccess     prometheus.Gauge
	ReloadSuccessTime prometheus.Gauge

	// The loop's own measures, from the canary's start: to the first failing interval,
	// to the rollback's end, to the recovery; and each recovery watch's outcome.
	TimeToDetect   *prometheus.HistogramVec
	TimeToRollback *prometheus.HistogramVec
	TimeToRecover  *prometheus.HistogramVec
	Rollbacks      *prometheus.CounterVec
}

// LoopBuckets are the buckets of the loop's durations (canaryd_time_to_*_seconds): 5 s
// to about 6 h.
var LoopBuckets = prometheus.ExponentialBuckets(5, 2, 13)

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Canaries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canaryd_canaries", Help: "Canaries in the store by status.",
		}, []string{"status"}),
		Verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_verdicts_total", Help: "Canaries ended, by analysis and final status.",
		}, []string{"analysis", "status"}),
		Score: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canaryd_canary_score", Help: "Last interval's score (0-100) of each running canary; removed when the canary ends.",
		}, []string{"canary_id", "name", "analysis"}),
		Classifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_metric_classifications_total", Help: "Metric classifications by analysis, metric and class (pass, high, low, nodata, error).",
		}, []string{"analysis", "metric", "classification"}),
		QueryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canaryd_provider_query_duration_seconds", Help: "Duration of provider queries (one cohort each).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
		QueryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_provider_query_errors_total", Help: "Provider queries that failed (timeouts included).",
		}, []string{"provider"}),
		QueryThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_query_rate_limit_wait_seconds_total",
			Help: "Time queries waited for a token of a rate limit, by limit (canary: scheduler.canary_rate_limit, provider: the provider's rate_limit).",
		}, []string{"limit"}),
		TimeToVerdict: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canaryd_time_to_verdict_seconds", Help: "Time from registration to final status.",
			Buckets: prometheus.ExponentialBuckets(10, 2, 12),
		}, []string{"analysis", "status"}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canaryd_scheduler_lag_seconds", Help: "How late an interval's judging started after it was due.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		Intervals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_intervals_judged_total", Help: "Intervals judged, by analysis and the interval's verdict.",
		}, []string{"analysis", "verdict"}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canaryd_store_errors_total", Help: "Store operations of the scheduler that failed (the interval is retried).",
		}),
		LeasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_leases_held", Help: "Running canaries whose lease this replica holds (it judges those); 0 without a shared store.",
		}),
		Replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_replicas", Help: "Replicas alive on the shared store at the last lease renewal (0 without a shared store).",
		}),
		LeaseRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_lease_renewals_total", Help: "Lease renewals by result (ok, error).",
		}, []string{"result"}),
		ReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_config_last_reload_successful", Help: "Whether the last config (re)load succeeded (1) or kept the old config (0).",
		}),
		ReloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canaryd_config_last_reload_success_timestamp_seconds", Help: "When the config was last loaded successfully.",
		}),
		TimeToDetect: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canaryd_time_to_detect_seconds", Help: "Time from a canary's start to its first interval judged fail.",
			Buckets: LoopBuckets,
		}, []string{"analysis"}),
		TimeToRollback: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canaryd_time_to_rollback_seconds", Help: "Time from a failed canary's start to the end of its fail actions, when a rollback actuator succeeded.",
			Buckets: LoopBuckets,
		}, []string{"analysis"}),
		TimeToRecover: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canaryd_time_to_recover_seconds", Help: "Time from a failed canary's start to the recovery watch's check that found the service recovered.",
			Buckets: LoopBuckets,
		}, []string{"analysis"}),
		Rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canaryd_rollbacks_total", Help: "Recovery watches ended, by analysis and outcome (recovered, not_recovered, unknown).",
		}, []string{"analysis", "outcome"}),
	}
	reg.MustRegister(m.Canaries, m.Verdicts, m.Score, m.Classifications, m.QueryDuration, m.QueryErrors, m.QueryThrottled,
		m.TimeToVerdict, m.Lag, m.Intervals, m.StoreErrors, m.LeasesHeld, m.Replicas, m.LeaseRenewals, m.ReloadSuccess, m.ReloadSuccessTime,
		m.TimeToDetect, m.TimeToRollback, m.TimeToRecover, m.Rollbacks)
	for _, r := range []string{"ok", "error"} {
		m.LeaseRenewals.WithLabelValues(r)
	}
	for _, s := range Statuses {
		m.Canaries.WithLabelValues(string(s))
	}
	return m
}

// InitProviders creates the per-provider series of the providers a config names, so that
// canaryd_provider_query_errors_total{provider} reads 0 from the start instead of being
// absent until the first error (an alert on its rate sees no series otherwise).
func (m *Metrics) InitProviders(names []string) {
	for _, n := range names {
		m.QueryErrors.WithLabelValues(n)
		m.QueryDuration.WithLabelValues(n)
	}
	for _, l := range []string{"canary", "provider"} {
		m.QueryThrottled.WithLabelValues(l)
	}
}

// InitRecovery creates canaryd_rollbacks_total's series at 0 for each analysis with a
// recovery block, so that an alert on its increase sees the first not_recovered.
func (m *Metrics) InitRecovery(analyses []string) {
	for _, a := range analyses {
		for _, o := range []RecoveryOutcome{RecoveryRecovered, RecoveryNotRecovered, RecoveryUnknown} {
			m.Rollbacks.WithLabelValues(a, string(o))
		}
	}
}
