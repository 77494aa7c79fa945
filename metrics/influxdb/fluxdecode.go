package influxdb

import (
	"errors"
	"fmt"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/canaryd/canaryd/metrics"
)

// LabelResult labels a Flux stream with the name of the result (yield) it came from,
// when that is not the default _result.
const LabelResult = "result"

// maxFluxPoints bounds the points one answer may hold.
const maxFluxPoints = 10_000_000

type fluxTable struct {
	result string
	table  int64
}

// decodeFlux turns the annotated CSV the official client parses into streams: one per
// table (a result's group key), labelled with the group key's columns (but _start and
// _stop, which are the window), its points the rows' _time and _value. A row without a
// _value (null) is no point; a table without _time or _value, or with a string or
// boolean _value, is an error. It closes res.
func decodeFlux(res *api.QueryTableResult) (metrics.Series, error) {
	defer res.Close()
	var out metrics.Series
	index := map[fluxTable]int{}
	var meta *query.FluxTableMetadata
	var cur fluxTable
	st := -1
	n := 0
	for res.Next() {
		rec := res.Record()
		if rec == nil {
			// The client can report a row it made no record of (a data row before any
			// table's header, FuzzFluxDecode found): a malformed answer, not a panic.
			return metrics.Series{}, errors.New("answer has a row outside any table (malformed annotated CSV)")
		}
		if res.TableChanged() || meta == nil {
			meta = res.TableMetadata()
			if err := checkColumns(meta); err != nil {
				return metrics.Series{}, err
			}
			st = -1
		}
		vals := rec.Values()
		tk := fluxTable{result: rec.Result()}
		if t, ok := vals["table"].(int64); ok {
			tk.table = t
		}
		if st < 0 || tk != cur {
			cur = tk
			i, ok := index[tk]
			if !ok {
				i = len(out.Streams)
				index[tk] = i
				out.Streams = append(out.Streams, metrics.Stream{Labels: groupLabels(meta, vals, tk.result)})
			}
			st = i
		}
		v, ok, err := fluxNumber(vals["_value"])
		if err != nil {
			return metrics.Series{}, fmt.Errorf("result %q table %d: %v", tk.result, tk.table, err)
		}
		if !ok {
			continue
		}
		at, isTime := vals["_time"].(time.Time)
		if !isTime {
			return metrics.Series{}, fmt.Errorf("result %q table %d: a row has no _time", tk.result, tk.table)
		}
		if n++; n > maxFluxPoints {
			return metrics.Series{}, fmt.Errorf("answer has more than %d points; narrow the query", maxFluxPoints)
		}
		s := &out.Streams[st]
		s.Points = append(s.Points, metrics.Point{T: at.UnixMilli(), V: v})
	}
	if err := res.Err(); err != nil {
		return metrics.Series{}, fmt.Errorf("read answer: %w", err)
	}
	return out, nil
}

// checkColumns refuses a table canaryd cannot read as a series, saying what to change.
func checkColumns(meta *query.FluxTableMetadata) error {
	var tc, vc *query.FluxColumn
	for _, c := range meta.Columns() {
		switch c.Name() {
		case "_time":
			tc = c
		case "_value":
			vc = c
		}
	}
	switch {
	case vc == nil:
		return fmt.Errorf("a table has no _value column (columns %s): keep one value column as _value", columnNames(meta))
	case tc == nil:
		return fmt.Errorf("a table has no _time column (columns %s): aggregate per step with aggregateWindow(every: %s, …), not over the whole range", columnNames(meta), FluxWindowPeriod)
	case tc.DataType() != "dateTime:RFC3339" && tc.DataType() != "dateTime:RFC3339Nano":
		return fmt.Errorf("_time is %s, not a time", tc.DataType())
	}
	switch vc.DataType() {
	case "double", "long", "unsignedLong":
		return nil
	}
	return fmt.Errorf("_value is %s: canaryd judges numbers only (filter on _field, or map _value to a number)", vc.DataType())
}

func columnNames(meta *query.FluxTableMetadata) []string {
	var names []string
	for _, c := range meta.Columns() {
		names = append(names, c.Name())
	}
	return names
}

// groupLabels are a table's group key, without the window's bounds.
func groupLabels(meta *query.FluxTableMetadata, vals map[string]any, result string) map[string]string {
	labels := map[string]string{}
	for _, c := range meta.Columns() {
		name := c.Name()
		if !c.IsGroup() || name == "_start" || name == "_stop" || name == "result" || name == "table" {
			continue
		}
		switch v := vals[name].(type) {
		case nil:
		case string:
			labels[name] = v
		case time.Time:
			labels[name] = v.UTC().Format(time.RFC3339Nano)
		default:
			labels[name] = fmt.Sprint(v)
		}
	}
	if result != "" && result != "_result" {
		labels[LabelResult] = result
	}
	return labels
}

// fluxNumber is a _value as a float64; ok is false for a null.
func fluxNumber(v any) (f float64, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return 0, false, nil
	case float64:
		return v, true, nil
	case int64:
		return float64(v), true, nil
	case uint64:
		return float64(v), true, nil
	}
	return 0, false, fmt.Errorf("_value %v is %T, not a number", v, v)
}
