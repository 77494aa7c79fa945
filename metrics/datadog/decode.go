package datadog

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/canaryd/canaryd/metrics"
)

// Labels that do not come from tags. The double underscore keeps them apart from any tag
// key, as Prometheus does with __name__.
const (
	LabelMetric     = "__name__"
	LabelExpression = "__expression__"
	LabelScope      = "__scope__"
)

// toSeries turns a decoded V1 query response into a cohort's Series. A response with no
// series is "no data", not an error; status "error" or an error field is an error.
func toSeries(r *datadogV1.MetricsQueryResponse) (metrics.Series, error) {
	// The client's models fall back to UnparsedObject instead of failing when a field has
	// an unexpected type; without this check a changed schema would look like "no data".
	if r.UnparsedObject != nil {
		return metrics.Series{}, errors.New("unexpected response shape")
	}
	if msg := r.GetError(); msg != "" {
		return metrics.Series{}, fmt.Errorf("query failed: %s", msg)
	}
	if strings.EqualFold(r.GetStatus(), "error") {
		msg := r.GetMessage()
		if msg == "" {
			msg = "no message"
		}
		return metrics.Series{}, fmt.Errorf("query failed (status error): %s", msg)
	}
	var out metrics.Series
	if len(r.Series) == 0 {
		return out, nil
	}
	out.Streams = make([]metrics.Stream, 0, len(r.Series))
	for i := range r.Series {
		s := &r.Series[i]
		if s.UnparsedObject != nil {
			return metrics.Series{}, fmt.Errorf("series[%d]: unexpected shape", i)
		}
		points, skipped := toPoints(s.Pointlist)
		labels := seriesLabels(s)
		if skipped > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("datadog: series %q: skipped %d malformed points", labels[LabelScope], skipped))
		}
		out.Streams = append(out.Streams, metrics.Stream{Labels: labels, Points: points})
	}
	return out, nil
}

// minMs and maxMs bound the timestamps that convert to int64 exactly; anything outside
// (or NaN) is a malformed point.
const (
	minMs = -(1 << 62)
	maxMs = 1 << 62
)

// toPoints converts [timestamp_ms, value] pairs. A null value is a gap (NaN); a pair
// without a usable timestamp is skipped and counted.
func toPoints(list [][]*float64) (points []metrics.Point, skipped int) {
	points = make([]metrics.Point, 0, len(list))
	for _, pair := range list {
		if len(pair) < 2 || pair[0] == nil {
			skipped++
			continue
		}
		ts := *pair[0]
		if !(ts >= minMs && ts <= maxMs) { // also rejects NaN
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

// seriesLabels builds a stream's labels: the tags of its scope, overridden by its
// tag_set (the tags that identify it), plus the metric, expression and raw scope.
func seriesLabels(s *datadogV1.MetricsQueryMetadata) map[string]string {
	labels := make(map[string]string, len(s.TagSet)+3)
	scope := s.GetScope()
	if scope != "" {
		labels[LabelScope] = scope
		addTags(labels, strings.Split(scope, ","))
	}
	if len(s.TagSet) > 0 {
		fromSet := make(map[string]string, len(s.TagSet))
		addTags(fromSet, s.TagSet)
		for k, v := range fromSet {
			labels[k] = v
		}
	}
	if m := s.GetMetric(); m != "" {
		labels[LabelMetric] = m
	}
	if e := s.GetExpression(); e != "" {
		labels[LabelExpression] = e
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

// withRollup returns the query with ".rollup(avg,<step>)" appended when it is a single
// metric query without a rollup of its own; applied reports whether it did. Appending to
// an expression would only roll up its last term, so expressions are left alone.
func withRollup(query string, step time.Duration) (out string, applied bool) {
	q := strings.TrimSpace(query)
	if strings.Contains(q, ".rollup(") {
		return query, true // the user chose the resolution
	}
	if !singleQuery.MatchString(q) || !singleTerm(q) {
		return query, false
	}
	secs := int64((step + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return q + ".rollup(avg," + strconv.FormatInt(secs, 10) + ")", true
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
