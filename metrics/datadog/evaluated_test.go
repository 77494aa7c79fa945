package datadog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// evaluated is the budget Datadog's answer computed from the queries asked, shaped as
// Datadog documents each endpoint's answer: GET /api/v1/query (MetricsQueryResponse: a
// series per group with its scope, tag_set and pointlist) and POST
// /api/v2/query/timeseries (TimeseriesFormulaQueryResponse: series with group_tags and
// query_index, the times shared, a value list per series). It understands the queries
// these tests send: a metric query whose scope selects track:<v> or track IN (<v>, …),
// grouped by track or not; every selected value is one series (one per value when
// grouped by track, else one for all), a point per step of the window, each value
// metricLevel(metric) + trackLevel(value). A query containing "bad(" is refused as
// Datadog refuses a query it cannot parse: HTTP 400, for the whole request. It returns
// the body and how many metric queries it answered. With alike, both cohorts' points
// are the same, metricLevel plus a little noise that depends on the time only, so that
// every judge passes.
func evaluated(r *http.Request, v2Bodies []string, alike bool) ([]byte, int, error) {
	if r.URL.Path == "/api/v1/query" {
		q := r.URL.Query()
		from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
		to, _ := strconv.ParseInt(q.Get("to"), 10, 64)
		text := q.Get("query")
		groups, err := evalGroups(text, alike)
		if err != nil {
			return nil, 0, err
		}
		type series struct {
			Metric    string       `json:"metric"`
			Scope     string       `json:"scope"`
			TagSet    []string     `json:"tag_set"`
			Pointlist [][2]float64 `json:"pointlist"`
		}
		out := struct {
			Status string   `json:"status"`
			Query  string   `json:"query"`
			Series []series `json:"series"`
		}{Status: "ok", Query: text, Series: []series{}}
		for _, g := range groups {
			s := series{Metric: g.metric, Scope: "track:" + g.track, TagSet: g.tags}
			for t := from; t <= to; t += 60 {
				s.Pointlist = append(s.Pointlist, [2]float64{float64(t * 1000), g.at(t * 1000)})
			}
			out.Series = append(out.Series, s)
		}
		b, err := json.Marshal(out)
		return b, 1, err
	}
	var req struct {
		Data struct {
			Attributes struct {
				From, To, Interval int64
				Queries            []struct{ Name, Query string }
				Formulas           []struct{ Formula string }
			}
		}
	}
	if err := json.Unmarshal([]byte(v2Bodies[len(v2Bodies)-1]), &req); err != nil {
		return nil, 0, err
	}
	a := req.Data.Attributes
	if a.Interval <= 0 {
		a.Interval = 60000
	}
	byName := map[string]string{}
	for _, q := range a.Queries {
		byName[q.Name] = q.Query
	}
	exprs := make([]string, 0, len(a.Queries))
	if len(a.Formulas) == 0 {
		for _, q := range a.Queries {
			exprs = append(exprs, q.Query)
		}
	}
	for _, f := range a.Formulas {
		q, ok := byName[f.Formula]
		if !ok {
			return nil, 0, fmt.Errorf("formula %q names no query", f.Formula)
		}
		exprs = append(exprs, q)
	}
	type series struct {
		GroupTags  []string `json:"group_tags"`
		QueryIndex int      `json:"query_index"`
	}
	var out struct {
		Data struct {
			Type       string `json:"type"`
			Attributes struct {
				Series []series     `json:"series"`
				Times  []int64      `json:"times"`
				Values [][]*float64 `json:"values"`
			} `json:"attributes"`
		} `json:"data"`
	}
	out.Data.Type = "timeseries_response"
	at := &out.Data.Attributes
	at.Series, at.Values = []series{}, [][]*float64{}
	for t := a.From; t <= a.To; t += a.Interval {
		at.Times = append(at.Times, t)
	}
	for i, text := range exprs {
		groups, err := evalGroups(text, alike)
		if err != nil {
			return nil, 0, err
		}
		for _, g := range groups {
			at.Series = append(at.Series, series{GroupTags: g.tags, QueryIndex: i})
			vals := make([]*float64, len(at.Times))
			for k := range vals {
				v := g.at(at.Times[k])
				vals[k] = &v
			}
			at.Values = append(at.Values, vals)
		}
	}
	b, err := json.Marshal(out)
	return b, len(exprs), err
}

type evalGroup struct {
	metric, track string
	tags          []string
	level         float64
	noisy         bool
}

// at is the group's value at t (Unix ms).
func (g evalGroup) at(t int64) float64 {
	if !g.noisy {
		return g.level
	}
	return g.level + math.Sin(float64(t/60000)*1.7)
}

var (
	evalMetric = regexp.MustCompile(`^(?:[a-z0-9]+:)?([A-Za-z][A-Za-z0-9_.]*)\{([^{}]*)\}(?:\s+by\s+\{([^{}]*)\})?`)
	evalIn     = regexp.MustCompile(`(?:^|[ ,])track IN \(([^()]*)\)`)
	evalOne    = regexp.MustCompile(`(?:^|[ ,])track:([a-z0-9_\-.:/]+)`)
)

func evalGroups(text string, alike bool) ([]evalGroup, error) {
	if strings.Contains(text, "bad(") {
		return nil, errors.New("Error parsing query: unexpected 'bad('")
	}
	m := evalMetric.FindStringSubmatch(text)
	if m == nil {
		return nil, fmt.Errorf("Error parsing query: %q", text)
	}
	var tracks []string
	if in := evalIn.FindStringSubmatch(m[2]); in != nil {
		for _, v := range strings.Split(in[1], ",") {
			tracks = append(tracks, strings.TrimSpace(v))
		}
	} else if one := evalOne.FindStringSubmatch(m[2]); one != nil {
		tracks = []string{one[1]}
	}
	level := func(v string) float64 {
		if alike {
			return metricLevel(m[1])
		}
		return metricLevel(m[1]) + trackLevel(v)
	}
	grouped := strings.Contains(","+strings.ReplaceAll(m[3], " ", "")+",", ",track,")
	if !grouped {
		sum := 0.0
		for _, v := range tracks {
			sum += level(v)
		}
		return []evalGroup{{metric: m[1], track: strings.Join(tracks, "|"), level: sum, noisy: alike}}, nil
	}
	var out []evalGroup
	for _, v := range tracks {
		out = append(out, evalGroup{metric: m[1], track: v, tags: []string{"track:" + v}, level: level(v), noisy: alike})
	}
	return out, nil
}

// metricLevel and trackLevel tell each metric's and cohort's points apart.
func metricLevel(metric string) float64 { return float64(10 * len(metric)) }

func trackLevel(v string) float64 {
	switch v {
	case "baseline":
		return 1
	case "canary":
		return 2
	}
	return 5
}
