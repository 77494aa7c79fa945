package v2query

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
)

func TestParseSpecAndRequest(t *testing.T) {
	start, end := time.UnixMilli(1700000000000), time.UnixMilli(1700000180000)
	for _, tc := range []struct {
		name, text, want, err string
	}{
		{"plain query", "avg:trace.http.request.duration{service:checkout,track:canary} by {host}",
			`{"data":{"type":"timeseries_request","attributes":{"from":1700000000000,"to":1700000180000,"interval":60000,"queries":[{"data_source":"metrics","name":"q","query":"avg:trace.http.request.duration{service:checkout,track:canary} by {host}"}]}}}`, ""},
		{"queries and formulas", `{"queries": [{"data_source": "metrics", "name": "e", "query": "sum:errors{track:canary}.as_count()"}, {"data_source": "metrics", "name": "h", "query": "sum:hits{track:canary}.as_count()"}], "formulas": [{"formula": "e / h"}]}`,
			`{"data":{"type":"timeseries_request","attributes":{"from":1700000000000,"to":1700000180000,"interval":60000,"queries":[{"data_source":"metrics","name":"e","query":"sum:errors{track:canary}.as_count()"},{"data_source":"metrics","name":"h","query":"sum:hits{track:canary}.as_count()"}],"formulas":[{"formula":"e / h"}]}}}`, ""},
		{"unknown key", `{"querys": []}`, "", `V2 query: json: unknown field "querys"`},
		{"no queries", `{"queries": []}`, "", "V2 query: queries is empty"},
		{"a query not an object", `{"queries": ["avg:x{*}"]}`, "", "V2 query: queries[0] is not an object"},
		{"two objects", `{"queries": [{}]} {}`, "", "V2 query: more than one JSON object"},
		{"malformed", `{"queries": [`, "", "V2 query: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSpec(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(NewRequest(s, start, end, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("request\n%s\nwant\n%s", b, tc.want)
			}
		})
	}
}

// testdata/two_series.json follows the documented example answer of POST
// /api/v2/query/timeseries (TimeseriesFormulaQueryResponse): series with group_tags,
// query_index and unit; times; one value list per series, null for a gap.
func TestDecode(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "two_series.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []metrics.Stream{
		{Labels: map[string]string{"host": "web-1", LabelQueryIndex: "0"}, Points: []metrics.Point{{T: 1700000000000, V: 0.125}, {T: 1700000060000, V: math.NaN()}, {T: 1700000120000, V: 0.25}}},
		{Labels: map[string]string{"host": "web-2", LabelQueryIndex: "0"}, Points: []metrics.Point{{T: 1700000000000, V: 0.5}, {T: 1700000060000, V: 0.75}, {T: 1700000120000, V: 1}}},
	}
	if len(got.Streams) != 2 {
		t.Fatalf("streams %+v", got.Streams)
	}
	for i := range want {
		if !reflect.DeepEqual(got.Streams[i].Labels, want[i].Labels) {
			t.Errorf("stream %d labels %v, want %v", i, got.Streams[i].Labels, want[i].Labels)
		}
		for j, p := range got.Streams[i].Points {
			w := want[i].Points[j]
			if p.T != w.T || !(p.V == w.V || math.IsNaN(p.V) && math.IsNaN(w.V)) {
				t.Errorf("stream %d point %d = %v, want %v", i, j, p, w)
			}
		}
	}

	for _, tc := range []struct{ name, body, err string }{
		{"no data is an error, not no data", `{"errors": "Error parsing query: unable to parse avg:nope{"}`, "query failed: Error parsing query"},
		{"empty object", `{}`, "unexpected response shape: no data.attributes"},
		{"values do not match series", `{"data": {"attributes": {"series": [{"group_tags": []}], "times": [1], "values": []}}}`, "1 series but 0 value lists"},
		{"values do not match times", `{"data": {"attributes": {"series": [{"group_tags": []}], "times": [1, 2], "values": [[1]]}}}`, "series 0 has 1 values for 2 times"},
		{"not JSON", `<html>502 Bad Gateway</html>`, "decode V2 answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
	// No series and no errors: no data.
	if s, err := Decode([]byte(`{"data": {"type": "timeseries_response", "attributes": {"series": [], "times": [], "values": []}}}`)); err != nil || len(s.Streams) != 0 {
		t.Errorf("empty answer: %+v %v", s, err)
	}
}
