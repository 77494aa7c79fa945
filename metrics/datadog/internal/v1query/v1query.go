// Package v1query holds the parts of the Datadog provider that are plain functions over
// the V1 query endpoint's data: pointlists to points, scope and tag_set to labels, the
// rollup that carries a step (when the config asks for it), and the cohorts' queries
// merged into one. It must never import the Datadog client, so that its
// tests and fuzz targets build in seconds instead of compiling datadogV1.
package v1query

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/metrics"
)

// Labels that do not come from tags. The double underscore keeps them apart from any tag
// key, as Prometheus does with __name__.
const (
	LabelMetric     = "__name__"
	LabelExpression = "__expression__"
	LabelScope      = "__scope__"
)

// MinMs and MaxMs bound the timestamps that convert to int64 exactly; anything outside
// (or NaN) is a malformed point.
const (
	MinMs = -(1 << 62)
	MaxMs = 1 << 62
)

// Points converts [timestamp_ms, value] pairs. A null value is a gap (NaN); a pair
// without a usable timestamp is skipped and counted.
func Points(list [][]*float64) (points []metrics.Point, skipped int) {
	points = make([]metrics.Point, 0, len(list))
	for _, pair := range list {
		if len(pair) < 2 || pair[0] == nil {
			skipped++
			continue
		}
		ts := *pair[0]
		if !(ts >= MinMs && ts <= MaxMs) { // also rejects NaN
			skipped++
			continue
		}
		v := math.NaN()
		if pair[1] != nil {
			v = *pair[1]
		}
		points = append(points, metrics.Point{T: int64(ts), V: v})
	}
	return points, skipped
}

// Labels builds a stream's labels: the tags of its scope, overridden by its tag_set (the
// tags that identify it), plus the metric, expression and raw scope. Never nil.
func Labels(metric, expression, scope string, tagSet []string) map[string]string {
	labels := make(map[string]string, len(tagSet)+3)
	if scope != "" {
		labels[LabelScope] = scope
		addTags(labels, strings.Split(scope, ","))
	}
	if len(tagSet) > 0 {
		fromSet := make(map[string]string, len(tagSet))
		addTags(fromSet, tagSet)
		for k, v := range fromSet {
			labels[k] = v
		}
	}
	if metric != "" {
		labels[LabelMetric] = metric
	}
	if expression != "" {
		labels[LabelExpression] = expression
	}
	return labels
}

// addTags adds "key:value" tags (a bare tag maps to ""); a key seen twice keeps both
// values, comma-joined in order, as a scope may filter on several values of one tag.
func addTags(labels map[string]string, tags []string) {
	for _, tag := range tags {
		tag = strings.TrimSpace(tag)
		if tag == "" || tag == "*" {
			continue
		}
		k, v, _ := strings.Cut(tag, ":")
		if k == "" || strings.HasPrefix(k, "__") {
			continue // never let a tag overwrite a reserved label
		}
		if old, ok := labels[k]; ok && old != v {
			labels[k] = old + "," + v
			continue
		}
		labels[k] = v
	}
}

// singleQuery matches the start of one metric query: [aggregator:]metric.name{ .
var singleQuery = regexp.MustCompile(`^(?:[a-z0-9]+:)?[A-Za-z][A-Za-z0-9_.]*\s*\{`)

// StepSeconds is the rollup interval for a step: whole seconds, rounded up, at least 1.
func StepSeconds(step time.Duration) int64 {
	return max(1, int64((step+time.Second-1)/time.Second))
}

// WithRollup returns the query with ".rollup(<method>,<step>)" appended when it is a
// single metric query without a rollup of its own. ok reports whether the resolution is
// set (by this rollup or the query's own); it is false for expressions, which are
// returned unchanged because a suffix would only roll up their last term.
func WithRollup(query string, step time.Duration, method string) (out string, ok bool) {
	q := strings.TrimSpace(query)
	if strings.Contains(q, ".rollup(") {
		return query, true // the user chose the resolution
	}
	if !singleQuery.MatchString(q) || !singleTerm(q) {
		return query, false
	}
	return q + ".rollup(" + method + "," + strconv.FormatInt(StepSeconds(step), 10) + ")", true
}

// singleTerm reports whether q has no arithmetic and no comma outside {} and (), i.e. it
// is one metric query with optional "by {…}" and .modifier() calls.
func singleTerm(q string) bool {
	depth := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '{', '(':
			depth++
		case '}', ')':
			depth--
			if depth < 0 {
				return false
			}
		case '+', '-', '*', '/', ',':
			if depth == 0 {
				return false
			}
		}
	}
	return depth == 0
}
