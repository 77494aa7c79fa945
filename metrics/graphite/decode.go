package graphite

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/canaryd/canaryd/metrics"
)

// LabelTarget is the label holding a series' target (its name after functions).
const LabelTarget = "target"

type series struct {
	Target     string            `json:"target"`
	Tags       map[string]string `json:"tags"`
	Datapoints []datapoint       `json:"datapoints"`
}

// datapoint is one [value, unix seconds] pair; null values are no point.
type datapoint struct {
	v, t  float64
	null  bool
	valid bool
}

// UnmarshalJSON reads [value|null, time] without allocating.
func (d *datapoint) UnmarshalJSON(b []byte) error {
	i := skip(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errors.New("datapoint is not an array")
	}
	v, i, null, err := number(b, i+1)
	if err != nil {
		return fmt.Errorf("datapoint value: %w", err)
	}
	if i >= len(b) || b[i] != ',' {
		return errors.New("datapoint is not [value, time]")
	}
	t, i, tnull, err := number(b, i+1)
	if err != nil || tnull {
		return fmt.Errorf("datapoint time: %w", errors.Join(err, errIf(tnull, "null")))
	}
	if i >= len(b) || b[i] != ']' || skip(b, i+1) != len(b) {
		return errors.New("datapoint is not [value, time]")
	}
	*d = datapoint{v: v, t: t, null: null, valid: true}
	return nil
}

func errIf(c bool, s string) error {
	if c {
		return errors.New(s)
	}
	return nil
}

// number reads a JSON number or null at b[i:], returning the index after it and the
// spaces that follow.
func number(b []byte, i int) (float64, int, bool, error) {
	i = skip(b, i)
	j := i
	for j < len(b) && b[j] != ',' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	tok := b[i:j]
	if string(tok) == "null" {
		return 0, skip(b, j), true, nil
	}
	if len(tok) == 0 || !(tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9') {
		return 0, j, false, fmt.Errorf("%.20q is not a number", tok)
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !(errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0)) {
		// graphite-web writes ±Infinity as ±1e9999, which overflows to ±Inf: kept.
		return 0, j, false, fmt.Errorf("%.20q is not a number", tok)
	}
	return f, skip(b, j), false, nil
}

func skip(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// decode turns a render answer (format=json) into a stream per series, labelled with its
// tags and target, keeping the points in [start, end] (ms).
func decode(body []byte, start, end int64) (metrics.Series, error) {
	var ss []series
	if err := json.Unmarshal(body, &ss); err != nil {
		return metrics.Series{}, fmt.Errorf("decode answer (%s): %w", snippet(body), err)
	}
	if ss == nil {
		return metrics.Series{}, fmt.Errorf("answer is not a list of series: %s", snippet(body))
	}
	var out metrics.Series
	dropped := 0
	for _, s := range ss {
		labels := make(map[string]string, len(s.Tags)+1)
		for k, v := range s.Tags {
			labels[k] = v
		}
		labels[LabelTarget] = s.Target
		st := metrics.Stream{Labels: labels, Points: make([]metrics.Point, 0, len(s.Datapoints))}
		for _, d := range s.Datapoints {
			if !d.valid {
				return metrics.Series{}, fmt.Errorf("series %q: a datapoint is not [value, time]", s.Target)
			}
			if d.null {
				continue
			}
			t := int64(d.t * 1000)
			if t < start || t > end {
				dropped++
				continue
			}
			st.Points = append(st.Points, metrics.Point{T: t, V: d.v})
		}
		out.Streams = append(out.Streams, st)
	}
	if dropped > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("graphite: %d points outside the window dropped", dropped))
	}
	return out, nil
}

func snippet(b []byte) string {
	if len(b) > 120 {
		return fmt.Sprintf("%q…", b[:120])
	}
	return fmt.Sprintf("%q", b)
}
