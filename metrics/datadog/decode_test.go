package datadog

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/canaryd/canaryd/metrics"
)

// decodeFixture decodes a testdata file the way the client decodes a response body.
func decodeFixture(t testing.TB, name string) datadogV1.MetricsQueryResponse {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r datadogV1.MetricsQueryResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// twoSeriesWant is what testdata/two_series.json must decode to.
func twoSeriesWant() []metrics.Stream {
	return []metrics.Stream{
		{
			Labels: map[string]string{
				"host": "web-1", "service": "checkout", "track": "canary",
				LabelMetric:     "trace.http.request.duration",
				LabelScope:      "host:web-1,service:checkout,track:canary",
				LabelExpression: "avg:trace.http.request.duration{host:web-1,service:checkout,track:canary}.rollup(avg,60)",
			},
			Points: []metrics.Point{{T: 1700000000000, V: 0.125}, {T: 1700000060000, V: math.NaN()}, {T: 1700000120000, V: 0.25}},
		},
		{
			Labels: map[string]string{
				"host": "web-2", "service": "checkout", "track": "canary",
				LabelMetric:     "trace.http.request.duration",
				LabelScope:      "host:web-2,service:checkout,track:canary",
				LabelExpression: "avg:trace.http.request.duration{host:web-2,service:checkout,track:canary}.rollup(avg,60)",
			},
			Points: []metrics.Point{{T: 1700000000000, V: 0.5}, {T: 1700000060000, V: 1e-3}},
		},
	}
}

// equalStreams compares streams exactly, NaN equal to NaN.
func equalStreams(t *testing.T, got, want []metrics.Stream) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d streams, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Labels, want[i].Labels) {
			t.Errorf("stream %d labels:\n got %v\nwant %v", i, got[i].Labels, want[i].Labels)
		}
		if len(got[i].Points) != len(want[i].Points) {
			t.Errorf("stream %d: got %d points, want %d", i, len(got[i].Points), len(want[i].Points))
			continue
		}
		for j, w := range want[i].Points {
			g := got[i].Points[j]
			if g.T != w.T || !(g.V == w.V || math.IsNaN(g.V) && math.IsNaN(w.V)) {
				t.Errorf("stream %d point %d: got %+v, want %+v", i, j, g, w)
			}
		}
	}
}

func TestToSeriesFixture(t *testing.T) {
	r := decodeFixture(t, "two_series.json")
	got, err := toSeries(&r)
	if err != nil {
		t.Fatal(err)
	}
	equalStreams(t, got.Streams, twoSeriesWant())
	if len(got.Warnings) != 0 {
		t.Errorf("warnings: %v", got.Warnings)
	}
	if got.Len() != 5 || got.NonFinite() != 1 {
		t.Errorf("Len %d NonFinite %d, want 5 and 1", got.Len(), got.NonFinite())
	}
}

func TestToSeries(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     []metrics.Stream
		warnings []string
		err      string
	}{
		{name: "no series", body: `{"status":"ok","res_type":"time_series","series":[]}`},
		{name: "series absent", body: `{"status":"ok","res_type":"time_series"}`, err: `unexpected response shape: no "series" list`},
		{
			name: "stream without points is kept",
			body: `{"status":"ok","series":[{"metric":"m","scope":"*","pointlist":[]}]}`,
			want: []metrics.Stream{{Labels: map[string]string{LabelMetric: "m", LabelScope: "*"}, Points: []metrics.Point{}}},
		},
		{
			name: "malformed pairs are skipped and reported",
			body: `{"status":"ok","series":[{"scope":"host:a","pointlist":[[1000,1],[2000],[null,3],[],[1e300,4],[3000,-2.5,9]]}]}`,
			want: []metrics.Stream{{
				Labels: map[string]string{"host": "a", LabelScope: "host:a"},
				Points: []metrics.Point{{T: 1000, V: 1}, {T: 3000, V: -2.5}},
			}},
			warnings: []string{`datadog: series "host:a": skipped 4 malformed points`},
		},
		{
			name: "tag_set wins over scope, repeated scope keys are joined, bare tags kept",
			body: `{"status":"ok","series":[{"scope":"env:prod,role:a,role:b,canary,__name__:x","tag_set":["role:b"],"pointlist":[[1,2]]}]}`,
			want: []metrics.Stream{{
				Labels: map[string]string{"env": "prod", "role": "b", "canary": "", LabelScope: "env:prod,role:a,role:b,canary,__name__:x"},
				Points: []metrics.Point{{T: 1, V: 2}},
			}},
		},
		{name: "error field", body: `{"status":"ok","error":"Query timed out"}`, err: "query failed: Query timed out"},
		{name: "status error", body: `{"status":"error","message":"boom"}`, err: "query failed (status error): boom"},
		{name: "status error without message", body: `{"status":"error"}`, err: "query failed (status error): no message"},
		{name: "series of the wrong type", body: `{"status":"ok","series":"none"}`, err: "unexpected response shape"},
		{name: "pointlist of the wrong type", body: `{"status":"ok","series":[{"pointlist":[["a","b"]]}]}`, err: "series[0]: unexpected shape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r datadogV1.MetricsQueryResponse
			if err := json.Unmarshal([]byte(tc.body), &r); err != nil {
				t.Fatal(err)
			}
			got, err := toSeries(&r)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equalStreams(t, got.Streams, tc.want)
			if !reflect.DeepEqual(got.Warnings, tc.warnings) {
				t.Errorf("warnings %q, want %q", got.Warnings, tc.warnings)
			}
		})
	}
}
