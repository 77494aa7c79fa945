package newrelic

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/fetch"
)

// Labels of a stream.
const (
	LabelAggregate = "aggregate" // the result's key: count, average.duration, percentile.duration.99
	LabelFacet     = "facet"     // the FACET value(s), joined by ", "
)

type answer struct {
	Data *struct {
		Actor *struct {
			Account *struct {
				NRQL *struct {
					Results []map[string]json.RawMessage `json:"results"`
				} `json:"nrql"`
			} `json:"account"`
		} `json:"actor"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// keys of a TIMESERIES result that are not values.
var notValues = map[string]bool{"beginTimeSeconds": true, "endTimeSeconds": true, "facet": true, "timestamp": true}

// decode turns NerdGraph's answer into a stream per aggregate and facet: each result of
// a TIMESERIES query is one bucket, {"beginTimeSeconds", "endTimeSeconds", "<aggregate>":
// value, "facet": …}; a bucket's time is its beginning.
func decode(body []byte) (metrics.Series, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return metrics.Series{}, fmt.Errorf("decode answer (%s): %w", fetch.Line(string(body[:min(len(body), 120)])), err)
	}
	if len(a.Errors) > 0 {
		msgs := make([]string, 0, len(a.Errors))
		for _, e := range a.Errors {
			msgs = append(msgs, e.Message)
		}
		return metrics.Series{}, errors.New(fetch.Line(strings.Join(msgs, "; ")))
	}
	if a.Data == nil || a.Data.Actor == nil || a.Data.Actor.Account == nil || a.Data.Actor.Account.NRQL == nil {
		return metrics.Series{}, errors.New("answer has no data.actor.account.nrql")
	}
	var out metrics.Series
	index := map[[2]string]int{}
	var facetKeys []string
	for i, r := range a.Data.Actor.Account.NRQL.Results {
		var begin float64
		if err := json.Unmarshal(r["beginTimeSeconds"], &begin); err != nil {
			return metrics.Series{}, fmt.Errorf("result %d has no beginTimeSeconds: a query without TIMESERIES?", i)
		}
		facet := ""
		if f, ok := r["facet"]; ok {
			facet = facetText(f)
		}
		facetKeys = facetKeys[:0]
		for k := range r {
			if !notValues[k] {
				facetKeys = append(facetKeys, k)
			}
		}
		sort.Strings(facetKeys)
		for _, k := range facetKeys {
			if len(r[k]) > 0 && r[k][0] == '"' {
				continue // a FACET attribute's own key, e.g. "appName": "checkout"
			}
			if err := addValues(&out, index, k, facet, r[k], int64(begin*1000)); err != nil {
				return metrics.Series{}, fmt.Errorf("result %d: %s: %w", i, k, err)
			}
		}
	}
	return out, nil
}

// addValues adds a result's value under key: a number, null (no point), or an object of
// numbers (percentile(x, 95, 99) gives {"95": …, "99": …}), one stream per member.
func addValues(out *metrics.Series, index map[[2]string]int, key, facet string, raw json.RawMessage, t int64) error {
	var v *float64
	if err := json.Unmarshal(raw, &v); err == nil {
		if v != nil {
			add(out, index, key, facet, metrics.Point{T: t, V: *v})
		}
		return nil
	}
	var obj map[string]*float64
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("%s is not a number or an object of numbers", fetch.Line(string(raw[:min(len(raw), 60)])))
	}
	for k, v := range obj {
		if v != nil {
			add(out, index, key+"."+k, facet, metrics.Point{T: t, V: *v})
		}
	}
	return nil
}

func add(out *metrics.Series, index map[[2]string]int, key, facet string, p metrics.Point) {
	id := [2]string{key, facet}
	i, ok := index[id]
	if !ok {
		labels := map[string]string{LabelAggregate: key}
		if facet != "" {
			labels[LabelFacet] = facet
		}
		i = len(out.Streams)
		index[id] = i
		out.Streams = append(out.Streams, metrics.Stream{Labels: labels})
	}
	out.Streams[i].Points = append(out.Streams[i].Points, p)
}

func facetText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []any
	if json.Unmarshal(raw, &list) == nil {
		parts := make([]string, len(list))
		for i, v := range list {
			parts[i] = fmt.Sprint(v)
		}
		return strings.Join(parts, ", ")
	}
	return string(raw)
}
