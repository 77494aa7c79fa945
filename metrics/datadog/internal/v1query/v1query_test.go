package v1query

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
)

func f64(v float64) *float64 { return &v }

func TestPoints(t *testing.T) {
	tests := []struct {
		name    string
		list    [][]*float64
		want    []metrics.Point
		skipped int
	}{
		{name: "empty", list: nil, want: []metrics.Point{}},
		{
			name: "ms timestamps exact, null is NaN",
			list: [][]*float64{{f64(1700000000000), f64(0.125)}, {f64(1700000060000), nil}, {f64(1700000120000), f64(-3e-9)}},
			want: []metrics.Point{{T: 1700000000000, V: 0.125}, {T: 1700000060000, V: math.NaN()}, {T: 1700000120000, V: -3e-9}},
		},
		{
			name:    "short pairs, null or out-of-range timestamps skipped",
			list:    [][]*float64{{f64(1000)}, {nil, f64(1)}, {}, {f64(1e300), f64(2)}, {f64(math.NaN()), f64(3)}, {f64(2000), f64(4), f64(5)}},
			want:    []metrics.Point{{T: 2000, V: 4}},
			skipped: 5,
		},
		{
			name: "infinities in values are kept",
			list: [][]*float64{{f64(1), f64(math.Inf(1))}},
			want: []metrics.Point{{T: 1, V: math.Inf(1)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := Points(tc.list)
			if skipped != tc.skipped {
				t.Errorf("skipped %d, want %d", skipped, tc.skipped)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.T != w.T || !(g.V == w.V || math.IsNaN(g.V) && math.IsNaN(w.V)) {
					t.Errorf("point %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name                      string
		metric, expression, scope string
		tagSet                    []string
		want                      map[string]string
	}{
		{name: "nothing", want: map[string]string{}},
		{
			name:   "scope and tag_set",
			metric: "http.hits", expression: "sum:http.hits{app:web,host:a}", scope: "app:web,host:a", tagSet: []string{"host:a"},
			want: map[string]string{"app": "web", "host": "a", LabelMetric: "http.hits", LabelExpression: "sum:http.hits{app:web,host:a}", LabelScope: "app:web,host:a"},
		},
		{
			name:  "wildcard scope adds no tags",
			scope: "*",
			want:  map[string]string{LabelScope: "*"},
		},
		{
			name:  "repeated keys joined, bare tags kept, values with colons kept whole",
			scope: "role:a, role:b,canary,url:http://x",
			want:  map[string]string{"role": "a,b", "canary": "", "url": "http://x", LabelScope: "role:a, role:b,canary,url:http://x"},
		},
		{
			name:  "tag_set wins over scope",
			scope: "role:a,role:b", tagSet: []string{"role:b"},
			want: map[string]string{"role": "b", LabelScope: "role:a,role:b"},
		},
		{
			name:   "tags never overwrite reserved labels",
			metric: "m", scope: "__name__:evil,:empty", tagSet: []string{"__scope__:evil"},
			want: map[string]string{LabelMetric: "m", LabelScope: "__name__:evil,:empty"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Labels(tc.metric, tc.expression, tc.scope, tc.tagSet)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestWithRollup(t *testing.T) {
	tests := []struct {
		name  string
		query string
		step  time.Duration
		want  string
		ok    bool
	}{
		{"plain", "avg:system.cpu.user{*}", time.Minute, "avg:system.cpu.user{*}.rollup(avg,60)", true},
		{"group by and modifier", "sum:http.requests{app:web,track:canary} by {host}.as_count()", 15 * time.Second, "sum:http.requests{app:web,track:canary} by {host}.as_count().rollup(avg,15)", true},
		{"percentile aggregator, tag values with dashes", "p99:trace.http.request{service:check-out,env:prod-eu}", 10 * time.Second, "p99:trace.http.request{service:check-out,env:prod-eu}.rollup(avg,10)", true},
		{"no aggregator, surrounding space", "  system.load.1{*}  ", 30 * time.Second, "system.load.1{*}.rollup(avg,30)", true},
		{"sub-second step rounds up to 1s", "avg:m{*}", 300 * time.Millisecond, "avg:m{*}.rollup(avg,1)", true},
		{"fractional step rounds up", "avg:m{*}", 1500 * time.Millisecond, "avg:m{*}.rollup(avg,2)", true},
		{"own rollup kept", "avg:m{*}.rollup(max,120)", time.Minute, "avg:m{*}.rollup(max,120)", true},
		{"own rollups inside an expression kept", "sum:a{*}.rollup(sum,60) / sum:b{*}.rollup(sum,60)", time.Minute, "sum:a{*}.rollup(sum,60) / sum:b{*}.rollup(sum,60)", true},
		{"ratio expression untouched", "sum:errors{app:web}.as_count() / sum:hits{app:web}.as_count()", time.Minute, "sum:errors{app:web}.as_count() / sum:hits{app:web}.as_count()", false},
		{"arithmetic with a constant", "avg:m{*} * 100", time.Minute, "avg:m{*} * 100", false},
		{"function wrapper untouched", "abs(avg:m{*})", time.Minute, "abs(avg:m{*})", false},
		{"several queries untouched", "avg:a{*}, avg:b{*}", time.Minute, "avg:a{*}, avg:b{*}", false},
		{"unbalanced braces untouched", "avg:m{*", time.Minute, "avg:m{*", false},
		{"moving_rollup is not a rollup suffix", "moving_rollup(avg:m{*}, 60, 'avg')", time.Minute, "moving_rollup(avg:m{*}, 60, 'avg')", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := WithRollup(tc.query, tc.step, "avg")
			if got != tc.want || ok != tc.ok {
				t.Errorf("WithRollup(%q, %s) = %q, %v; want %q, %v", tc.query, tc.step, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// series mirrors the JSON of one element of the response's "series" (the fields the
// provider reads), so the fuzzer explores the same input space as the client's model.
type series struct {
	Metric     string       `json:"metric"`
	Expression string       `json:"expression"`
	Scope      string       `json:"scope"`
	TagSet     []string     `json:"tag_set"`
	Pointlist  [][]*float64 `json:"pointlist"`
}

// FuzzSeries: any series body yields points no more numerous than its pairs, with
// timestamps in range, non-nil labels, and reserved labels only from their fields.
func FuzzSeries(f *testing.F) {
	f.Add([]byte(`{"metric":"m","scope":"host:a,env:prod","tag_set":["host:a"],"pointlist":[[1700000000000.0,1.5],[1700000060000.0,null]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var s series
		if json.Unmarshal(body, &s) != nil {
			return
		}
		points, skipped := Points(s.Pointlist)
		if len(points)+skipped != len(s.Pointlist) {
			t.Fatalf("%d points + %d skipped from %d pairs", len(points), skipped, len(s.Pointlist))
		}
		for _, p := range points {
			if p.T < MinMs || p.T > MaxMs {
				t.Fatalf("timestamp %d out of range", p.T)
			}
		}
		labels := Labels(s.Metric, s.Expression, s.Scope, s.TagSet)
		if labels == nil {
			t.Fatal("nil labels")
		}
		for k, want := range map[string]string{LabelMetric: s.Metric, LabelExpression: s.Expression, LabelScope: s.Scope} {
			if got, ok := labels[k]; ok && got != want || !ok && want != "" {
				t.Fatalf("label %s = %q, want %q", k, got, want)
			}
		}
	})
}

// FuzzWithRollup: the query is either returned unchanged or trimmed with exactly one
// ".rollup(avg,N)" suffix, N the step in whole seconds.
func FuzzWithRollup(f *testing.F) {
	f.Add("avg:system.cpu.user{*} by {host}", int64(60_000_000_000))
	f.Add("sum:a{*}.as_count() / sum:b{*}.as_count()", int64(15_000_000_000))
	f.Fuzz(func(t *testing.T, query string, step int64) {
		got, ok := WithRollup(query, time.Duration(step), "avg")
		if got == query {
			return
		}
		suffix := ".rollup(avg," + strconv.FormatInt(StepSeconds(time.Duration(step)), 10) + ")"
		if !ok || got != strings.TrimSpace(query)+suffix {
			t.Fatalf("WithRollup(%q, %d) = %q, %v", query, step, got, ok)
		}
	})
}
