// Package v2query holds the parts of the Datadog provider that are plain functions over
// the V2 timeseries endpoint (POST /api/v2/query/timeseries, documented at
// https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-data-across-multiple-products):
// the request body built from a metric's query, and the answer turned into a Series. It
// never imports the Datadog client (its datadogV2 package costs minutes and gigabytes to
// compile; see the provider's package doc), so the shapes are written here after the
// documented API.
package v2query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v1query"
)

// LabelQueryIndex names which query or formula of the request a stream answers ("0",
// "1", …): with formulas, the formula's index.
const LabelQueryIndex = "__query_index__"

// Spec is what a metric's query says in V2 form: the request's queries and formulas,
// as the API takes them. A query that is not JSON is one metrics query named "q".
type Spec struct {
	Queries  []json.RawMessage `json:"queries"`
	Formulas []json.RawMessage `json:"formulas,omitempty"`
}

// IsJSON reports whether a rendered query is written in V2 form (a JSON object).
func IsJSON(text string) bool { return strings.HasPrefix(strings.TrimSpace(text), "{") }

// ParseSpec reads a metric's query: a JSON object {"queries": […], "formulas": […]} (each
// query an object of the API's, e.g. {"data_source": "metrics", "name": "a", "query":
// "avg:…{…}"}), or a plain metrics query.
func ParseSpec(text string) (Spec, error) {
	if !IsJSON(text) {
		q, err := json.Marshal(map[string]string{"data_source": "metrics", "name": "q", "query": strings.TrimSpace(text)})
		if err != nil {
			return Spec{}, err
		}
		return Spec{Queries: []json.RawMessage{q}}, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("V2 query: %w (want {\"queries\": [{\"data_source\": \"metrics\", \"name\": \"a\", \"query\": \"…\"}], \"formulas\": [{\"formula\": \"a\"}]})", err)
	}
	if dec.More() {
		return Spec{}, errors.New("V2 query: more than one JSON object")
	}
	if len(s.Queries) == 0 {
		return Spec{}, errors.New("V2 query: queries is empty")
	}
	for i, q := range s.Queries {
		if b := bytes.TrimSpace(q); len(b) == 0 || b[0] != '{' {
			return Spec{}, fmt.Errorf("V2 query: queries[%d] is not an object", i)
		}
	}
	for i, f := range s.Formulas {
		if b := bytes.TrimSpace(f); len(b) == 0 || b[0] != '{' {
			return Spec{}, fmt.Errorf("V2 query: formulas[%d] is not an object", i)
		}
	}
	return s, nil
}

// Request is the body of POST /api/v2/query/timeseries.
type Request struct {
	Data RequestData `json:"data"`
}

// RequestData is the request's data object.
type RequestData struct {
	Type       string            `json:"type"` // timeseries_request
	Attributes RequestAttributes `json:"attributes"`
}

// RequestAttributes are the window, the step and the queries.
type RequestAttributes struct {
	From     int64             `json:"from"`               // Unix ms
	To       int64             `json:"to"`                 // Unix ms
	Interval int64             `json:"interval,omitempty"` // ms between points: the step
	Queries  []json.RawMessage `json:"queries"`
	Formulas []json.RawMessage `json:"formulas,omitempty"`
}

// NewRequest is the request for spec over [start, end] at step (the step is Datadog's
// interval: no .rollup() is written into the queries).
func NewRequest(s Spec, start, end time.Time, step time.Duration) Request {
	return Request{Data: RequestData{Type: "timeseries_request", Attributes: RequestAttributes{
		From: start.UnixMilli(), To: end.UnixMilli(), Interval: step.Milliseconds(),
		Queries: s.Queries, Formulas: s.Formulas,
	}}}
}

// response is the answer's shape (TimeseriesFormulaQueryResponse).
type response struct {
	Data *struct {
		Type       string `json:"type"`
		Attributes *struct {
			Series []struct {
				GroupTags  []string `json:"group_tags"`
				QueryIndex *int     `json:"query_index"`
			} `json:"series"`
			Times  []*float64   `json:"times"`
			Values [][]*float64 `json:"values"`
		} `json:"attributes"`
	} `json:"data"`
	Errors string `json:"errors"`
}

// Decode turns an answer into streams, one per series, its points at the answer's times
// (a null value is a gap, NaN; a null or out-of-range time is skipped and counted in a
// warning). An answer without its data is an error, not "no data"; an errors text
// without series is an error too.
func Decode(body []byte) (metrics.Series, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return metrics.Series{}, fmt.Errorf("decode V2 answer: %w", err)
	}
	if r.Data == nil || r.Data.Attributes == nil {
		if r.Errors != "" {
			return metrics.Series{}, fmt.Errorf("query failed: %s", r.Errors)
		}
		return metrics.Series{}, errors.New("unexpected response shape: no data.attributes")
	}
	a := r.Data.Attributes
	if len(a.Series) == 0 && r.Errors != "" {
		return metrics.Series{}, fmt.Errorf("query failed: %s", r.Errors)
	}
	if len(a.Values) != len(a.Series) {
		return metrics.Series{}, fmt.Errorf("unexpected response shape: %d series but %d value lists", len(a.Series), len(a.Values))
	}
	var out metrics.Series
	if r.Errors != "" {
		out.Warnings = append(out.Warnings, "datadog: "+r.Errors)
	}
	times := make([]int64, len(a.Times))
	bad := make([]bool, len(a.Times))
	skippedTimes := 0
	for i, t := range a.Times {
		if t == nil || math.IsNaN(*t) || *t < v1query.MinMs || *t > v1query.MaxMs {
			bad[i] = true
			skippedTimes++
			continue
		}
		times[i] = int64(*t)
	}
	if skippedTimes > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("datadog: skipped %d malformed timestamps", skippedTimes))
	}
	for i, s := range a.Series {
		vals := a.Values[i]
		if len(vals) != len(a.Times) {
			return metrics.Series{}, fmt.Errorf("unexpected response shape: series %d has %d values for %d times", i, len(vals), len(a.Times))
		}
		labels := v1query.Labels("", "", "", s.GroupTags)
		if s.QueryIndex != nil {
			labels[LabelQueryIndex] = strconv.Itoa(*s.QueryIndex)
		}
		pts := make([]metrics.Point, 0, len(vals))
		for j, v := range vals {
			if bad[j] {
				continue
			}
			p := metrics.Point{T: times[j], V: math.NaN()}
			if v != nil {
				p.V = *v
			}
			pts = append(pts, p)
		}
		out.Streams = append(out.Streams, metrics.Stream{Labels: labels, Points: pts})
	}
	return out, nil
}
