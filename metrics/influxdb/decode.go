package influxdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/canaryd/canaryd/metrics"
)

// Labels of a stream that are not the series' tags.
const (
	LabelMeasurement = "measurement"
	LabelField       = "field"
)

type answer struct {
	Results []struct {
		StatementID int      `json:"statement_id"`
		Series      []series `json:"series"`
		Error       string   `json:"error"`
		Messages    []struct {
			Level string `json:"level"`
			Text  string `json:"text"`
		} `json:"messages"`
	} `json:"results"`
	Error *string `json:"error"`
}

type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  []json.RawMessage `json:"values"`
}

// decode turns a /query answer into streams: one per series and value column.
func decode(body []byte) (metrics.Series, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return metrics.Series{}, fmt.Errorf("decode answer: %w", err)
	}
	if a.Error != nil {
		return metrics.Series{}, errors.New(*a.Error)
	}
	if a.Results == nil {
		return metrics.Series{}, errors.New("answer has no results")
	}
	var out metrics.Series
	var row []value
	for _, r := range a.Results {
		if r.Error != "" {
			return metrics.Series{}, fmt.Errorf("statement %d: %s", r.StatementID, r.Error)
		}
		for _, m := range r.Messages {
			out.Warnings = append(out.Warnings, fmt.Sprintf("influxdb: %s: %s", m.Level, m.Text))
		}
		for i := range r.Series {
			s := &r.Series[i]
			if len(s.Columns) < 2 || s.Columns[0] != "time" {
				return metrics.Series{}, fmt.Errorf("series %q: columns %v: want time and at least one value", s.Name, s.Columns)
			}
			first := len(out.Streams)
			for _, col := range s.Columns[1:] {
				labels := make(map[string]string, len(s.Tags)+2)
				for k, v := range s.Tags {
					labels[k] = v
				}
				labels[LabelMeasurement], labels[LabelField] = s.Name, col
				out.Streams = append(out.Streams, metrics.Stream{Labels: labels, Points: make([]metrics.Point, 0, len(s.Values))})
			}
			for j, raw := range s.Values {
				var err error
				if row, err = parseRow(raw, row[:0]); err != nil {
					return metrics.Series{}, fmt.Errorf("series %q: row %d: %w", s.Name, j, err)
				}
				if len(row) != len(s.Columns) {
					return metrics.Series{}, fmt.Errorf("series %q: row %d has %d values for %d columns", s.Name, j, len(row), len(s.Columns))
				}
				if row[0].null {
					return metrics.Series{}, fmt.Errorf("series %q: row %d has no time", s.Name, j)
				}
				t := int64(row[0].v)
				for c, v := range row[1:] {
					if v.null {
						continue
					}
					st := &out.Streams[first+c]
					st.Points = append(st.Points, metrics.Point{T: t, V: v.v})
				}
			}
		}
	}
	return out, nil
}

type value struct {
	v    float64
	null bool
}

// parseRow reads one row, [number|null, …], without allocating. Strings and booleans
// (non-numeric fields) are an error: a cohort's series must be numbers.
func parseRow(b []byte, dst []value) ([]value, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, errors.New("not an array")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return dst, nil
	}
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, errors.New("truncated")
		}
		j := i
		for j < len(b) && b[j] != ',' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		tok := b[i:j]
		switch {
		case string(tok) == "null":
			dst = append(dst, value{null: true})
		case len(tok) > 0 && (tok[0] == '-' || (tok[0] >= '0' && tok[0] <= '9')):
			f, err := strconv.ParseFloat(string(tok), 64)
			if err != nil {
				return nil, fmt.Errorf("value %d: %w", len(dst), err)
			}
			dst = append(dst, value{v: f})
		default:
			return nil, fmt.Errorf("value %d is not a number (%.40s): canaryd judges numeric fields only", len(dst), b[i:])
		}
		i = skipSpace(b, j)
		if i >= len(b) {
			return nil, errors.New("truncated")
		}
		if b[i] == ']' {
			return dst, nil
		}
		if b[i] != ',' {
			return nil, fmt.Errorf("unexpected %q", b[i])
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}
