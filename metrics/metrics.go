// Package metrics defines how canaryd pulls a cohort's series: the Provider interface,
// the shapes of a query and its answer, and query templates. Each backend is a
// subpackage (prometheus, datadog, synthetic) behind the same interface, so the scheduler
// never knows which one it talks to. Providers fetch; they never judge.
package metrics

import (
	"context"
	"errors"
	"math"
	"time"
)

// Query is one cohort's rendered query over a time range.
type Query struct {
	// Text is the query after template rendering (PromQL, a Datadog query, or a
	// synthetic signal name).
	Text  string
	Start time.Time
	End   time.Time
	Step  time.Duration
}

// Validate reports what is wrong with a query's range, naming the field.
func (q Query) Validate() error {
	switch {
	case q.Text == "":
		return errors.New("query: text is empty")
	case q.Step <= 0:
		return errors.New("query: step must be > 0")
	case q.End.Before(q.Start):
		return errors.New("query: end is before start")
	}
	return nil
}

// Point is one sample: a Unix timestamp in milliseconds and its value. NaN and ±Inf are
// kept as they are; the judge's NaN strategy decides what they mean.
type Point struct {
	T int64
	V float64
}

// Stream is one series of a cohort with its labels, kept for the report.
type Stream struct {
	Labels map[string]string
	Points []Point
}

// Series is a provider's answer for one cohort: every matching stream, pooled by the
// judge. No streams (or streams with no points) means "no data", which is not an error.
type Series struct {
	Streams  []Stream
	Warnings []string
}

// Len is the number of points over all streams.
func (s Series) Len() int {
	n := 0
	for _, st := range s.Streams {
		n += len(st.Points)
	}
	return n
}

// AppendValues appends every point's value, stream after stream, to dst and returns it;
// pass a reused buffer to keep the scheduler's hot path free of allocations.
func (s Series) AppendValues(dst []float64) []float64 {
	for _, st := range s.Streams {
		for _, p := range st.Points {
			dst = append(dst, p.V)
		}
	}
	return dst
}

// NonFinite counts the NaN and ±Inf points, for the report.
func (s Series) NonFinite() int {
	n := 0
	for _, st := range s.Streams {
		for _, p := range st.Points {
			if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
				n++
			}
		}
	}
	return n
}

// Provider fetches the points of one cohort's series. Implementations must honour ctx
// (deadline and cancellation), return an empty Series rather than an error when the query
// matches nothing, and wrap errors with the provider's name and what the server said.
type Provider interface {
	Query(ctx context.Context, q Query) (Series, error)
}

// Pacer is a Provider that paces its own queries by what its backend announces (a
// rate-limit budget in its answers' headers). The scheduler calls Pace before each
// Query, after its token buckets and outside the query's timeout, so a budget that is
// used up delays the interval instead of failing it. Pace returns an error when the wait
// would be longer than the provider allows, or when ctx ends.
type Pacer interface {
	Pace(ctx context.Context) error
}

// Batcher is a Provider that can answer several queries in fewer requests than one each
// (both cohorts of a metric in one query, several metrics in one request), for a backend
// whose budget counts requests. The scheduler sends the queries of one canary's interval
// through QueryBatch, at once, when the provider implements it, and through Query when
// not. QueryBatch returns one Result per query, in order, each as Query would have
// answered it (a query's own failure is its Result's Err, not the others').
type Batcher interface {
	QueryBatch(ctx context.Context, qs []Query) []Result
}

// Result is one query's answer in a batch.
type Result struct {
	Series Series
	Err    error
}
