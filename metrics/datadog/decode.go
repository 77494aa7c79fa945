package datadog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v1query"
)

// Labels of a stream that do not come from Datadog tags.
const (
	LabelMetric     = v1query.LabelMetric     // the series' metric name
	LabelExpression = v1query.LabelExpression // the expression Datadog evaluated for it
	LabelScope      = v1query.LabelScope      // its raw scope, "tag:value,…"
)

// toSeries turns a decoded V1 query response into a cohort's Series. A response with an
// empty series list is "no data", not an error; one without the list, status "error" or
// an error field is an error.
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
	// "series": [] is no data; no series list at all is not an answer to a query (a
	// proxy's or another endpoint's JSON), and must not pass for no data.
	if !r.HasSeries() {
		return metrics.Series{}, errors.New(`unexpected response shape: no "series" list`)
	}
	if len(r.Series) == 0 {
		return out, nil
	}
	out.Streams = make([]metrics.Stream, 0, len(r.Series))
	for i := range r.Series {
		s := &r.Series[i]
		if s.UnparsedObject != nil {
			return metrics.Series{}, fmt.Errorf("series[%d]: unexpected shape", i)
		}
		points, skipped := v1query.Points(s.Pointlist)
		if skipped > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("datadog: series %q: skipped %d malformed points", s.GetScope(), skipped))
		}
		out.Streams = append(out.Streams, metrics.Stream{
			Labels: v1query.Labels(s.GetMetric(), s.GetExpression(), s.GetScope(), s.TagSet),
			Points: points,
		})
	}
	return out, nil
}
