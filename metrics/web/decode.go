package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/theory/jsonpath"

	"github.com/canaryd/canaryd/metrics"
)

// decode reads the points out of an answer.
func (p *Provider) decode(body []byte) (metrics.Series, error) {
	return decode(body, &p.c, p.cfg.TimeFormat)
}

func decode(body []byte, c *compiled, timeFormat string) (metrics.Series, error) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return metrics.Series{}, fmt.Errorf("answer is not JSON (%s): %w", snippet(body), err)
	}
	if c.errPath != nil {
		for _, e := range c.errPath.Select(doc) {
			if e == nil || e == "" || e == false {
				continue
			}
			if s, ok := e.(string); ok {
				return metrics.Series{}, fmt.Errorf("the answer says: %s", s)
			}
			b, _ := json.Marshal(e)
			return metrics.Series{}, fmt.Errorf("the answer says: %s", snippet(b))
		}
	}
	nodes := c.points.Select(doc)
	if len(nodes) == 0 && c.pointsSingular {
		return metrics.Series{}, fmt.Errorf("points %s selects nothing in the answer (%s): not the shape the config expects", c.points, snippet(body))
	}
	var out metrics.Series
	for i, n := range nodes {
		if n == nil {
			continue
		}
		arr, ok := n.([]any)
		if !ok {
			return metrics.Series{}, fmt.Errorf("points %s: match %d is %s, not an array", c.points, i, kindOf(n))
		}
		st := metrics.Stream{Points: make([]metrics.Point, 0, len(arr))}
		for j, el := range arr {
			t, err := one(c.time, el)
			if err != nil {
				return metrics.Series{}, fmt.Errorf("points %s: point %d: time %s: %w", c.points, j, c.time, err)
			}
			ms, err := parseTime(t, timeFormat)
			if err != nil {
				return metrics.Series{}, fmt.Errorf("points %s: point %d: time %s: %w", c.points, j, c.time, err)
			}
			v, err := one(c.val, el)
			if err != nil {
				return metrics.Series{}, fmt.Errorf("points %s: point %d: value %s: %w", c.points, j, c.val, err)
			}
			if v == nil {
				continue // no value in this step
			}
			f, err := parseValue(v)
			if err != nil {
				return metrics.Series{}, fmt.Errorf("points %s: point %d: value %s: %w", c.points, j, c.val, err)
			}
			st.Points = append(st.Points, metrics.Point{T: ms, V: f})
		}
		if len(nodes) > 1 {
			st.Labels = map[string]string{"match": strconv.Itoa(i)}
		}
		out.Streams = append(out.Streams, st)
	}
	return out, nil
}

func one(p *jsonpath.Path, v any) (any, error) {
	ns := p.Select(v)
	switch len(ns) {
	case 1:
		return ns[0], nil
	case 0:
		return nil, fmt.Errorf("selects nothing in %s", snippetAny(v))
	}
	return nil, fmt.Errorf("selects %d values, want one", len(ns))
}

func parseTime(v any, format string) (int64, error) {
	switch format {
	case TimeRFC3339:
		s, ok := v.(string)
		if !ok {
			return 0, fmt.Errorf("is %s, want an RFC 3339 string", kindOf(v))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, err
		}
		return t.UnixMilli(), nil
	}
	f, err := number(v)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("is not a finite number")
	}
	if format == TimeUnix {
		f *= 1000
	}
	if math.Abs(f) > 1<<62 {
		return 0, fmt.Errorf("%g is out of range", f)
	}
	return int64(math.Round(f)), nil
}

func parseValue(v any) (float64, error) { return number(v) }

// number is a JSON number or a numeric string ("1.5", "NaN", "+Inf", as Prometheus
// writes values).
func number(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", v)
		}
		return f, nil
	}
	return 0, fmt.Errorf("is %s, not a number", kindOf(v))
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func snippet(b []byte) string {
	const n = 120
	s := string(b)
	if len(s) > n {
		return fmt.Sprintf("%q…", s[:n])
	}
	return fmt.Sprintf("%q", s)
}

func snippetAny(v any) string {
	b, _ := json.Marshal(v)
	return snippet(b)
}
