package synthetic

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// signalKind says how a signal's points are made from its level and noise.
type signalKind int

const (
	kindRequests     signalKind = iota // requests per second, counted over each step
	kindErrors                         // errors / requests over each step
	kindErrorCount                     // errors per second, counted over each step
	kindLatency                        // a latency quantile over each step's requests
	kindSaturation                     // a utilisation in [0, 1], additive noise
	kindRequestCount                   // requests counted over each step (not per second)
	kindErrorTotal                     // errors counted over each step (not per second)
	kindBuckets                        // cumulative latency histogram buckets over each step
)

// signalDef is a signal's model without regressions.
type signalDef struct {
	kind signalKind
	// level is the median value; noise the process noise (sd of log value for the
	// multiplicative signals, absolute sd for saturation).
	level, noise float64
	// view names the signal whose model and draws this one shows differently.
	view string
	// phi is the AR(1) coefficient of the noise, per step.
	phi float64
	// quantile is the latency quantile (0.5, 0.9, 0.99) and spread its sampleSpread.
	quantile, spread float64
}

// requestSpread is the sd of log latency across single requests: a lognormal request
// latency with median 50 ms puts p90 at 108 ms and p99 at 202 ms, the default levels.
const requestSpread = 0.6

// defaultSignals is every signal and its defaults. A fresh map per call keeps the
// package free of mutable globals.
func defaultSignals() map[string]signalDef {
	const p50 = 0.050
	q := func(p float64) float64 { return p50 * math.Exp(requestSpread*distuv.UnitNormal.Quantile(p)) }
	return map[string]signalDef{
		"request_rate": {kind: kindRequests, level: 100, noise: 0.1},
		"error_rate":   {kind: kindErrors, level: 0.005, noise: 0.3},
		// errors_per_second is a view of error_rate: the same errors, divided by the step
		// instead of by the requests; error_rate's settings and regressions apply to it.
		"errors_per_second": {kind: kindErrorCount, view: "error_rate"},
		"latency_p50":       {kind: kindLatency, level: p50, noise: 0.05, quantile: 0.5},
		"latency_p90":       {kind: kindLatency, level: q(0.9), noise: 0.05, quantile: 0.9},
		"latency_p99":       {kind: kindLatency, level: q(0.99), noise: 0.05, quantile: 0.99},
		"saturation":        {kind: kindSaturation, level: 0.45, noise: 0.03},
		// The per-step counts the sequential judges read (issue 14): requests and errors
		// are the same draws as request_rate and error_rate, counted instead of divided,
		// and latency_bucket the step's requests binned by a lognormal latency whose
		// median follows latency_p50 and whose spread makes its p99 latency_p99's level.
		"requests":       {kind: kindRequestCount, view: "request_rate"},
		"errors":         {kind: kindErrorTotal, view: "error_rate"},
		"latency_bucket": {kind: kindBuckets, view: "latency_p50"},
	}
}

// SignalNames lists the signals a query may ask for, sorted.
func SignalNames() []string {
	defs := defaultSignals()
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// knownSignal is on every query's path, so it is a switch rather than a lookup in
// defaultSignals' fresh map (TestSignalTables keeps the two in step).
func knownSignal(name string) bool {
	switch name {
	case "request_rate", "error_rate", "errors_per_second", "latency_p50", "latency_p90", "latency_p99", "saturation",
		"requests", "errors", "latency_bucket":
		return true
	}
	return false
}

// modelSignal is the signal whose model name uses: itself, or the one it is a view of.
func modelSignal(name string) string {
	switch name {
	case "errors_per_second", "errors":
		return "error_rate"
	case "requests":
		return "request_rate"
	case "latency_bucket":
		return "latency_p50"
	}
	return name
}

// bucketBounds are latency_bucket's finite upper bounds in seconds: client_golang's
// DefBuckets, what most services export (and what the Prometheus eval generates).
func bucketBounds() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// sampleSpread is the sd of the log of a quantile estimated from n requests, times
// sqrt(n): the asymptotic sd of a sample quantile, sqrt(q(1-q))/pdf(z_q), on the log
// scale of a lognormal with spread requestSpread. Few requests make a noisy quantile.
func sampleSpread(q float64) float64 {
	z := distuv.UnitNormal.Quantile(q)
	return requestSpread * math.Sqrt(q*(1-q)) / distuv.UnitNormal.Prob(z)
}
