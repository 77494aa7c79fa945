package datadog

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v1query"
)

func cohortQuery(track string) metrics.Query {
	q := testQuery()
	q.Text = "avg:trace.http.request.duration{service:checkout,track:" + track + "} by {host}"
	return q
}

// streamsOf is each stream's host and points, for comparing.
func streamsOf(s metrics.Series) []string {
	var out []string
	for _, st := range s.Streams {
		var b strings.Builder
		b.WriteString(st.Labels["host"] + "/" + st.Labels["track"])
		for _, p := range st.Points {
			b.WriteString(" " + strconv.FormatFloat(p.V, 'g', -1, 64))
		}
		out = append(out, b.String())
	}
	return out
}

// Issue 18 item 7: with cohort_tag, both cohorts of a metric are one V1 query on both
// values grouped by the tag, and the series go back to their cohort by the tag's value
// in their tag_set: a series of a value neither cohort has (track:shadow) is dropped and
// counted, never given to a cohort; a cohort absent from the answer is no data.
func TestQueryBatchMergesCohorts(t *testing.T) {
	for _, tc := range []struct {
		name, file           string
		baseline, canary     []string
		warnBase, warnCanary bool
	}{
		{"both cohorts and a stranger", "cohorts.json", []string{"web-1/baseline 0.1 0.2 0.3"}, []string{"web-2/canary 0.5 0.75", "web-3/canary 0.9"}, true, true},
		{"baseline missing", "canary_only.json", nil, []string{"web-2/canary 0.5 0.75"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", reply{status: 200, file: tc.file})
			p, _ := newTestProvider(t, f, func(c *Config) { c.CohortTag = "track" })
			res := p.QueryBatch(t.Context(), []metrics.Query{cohortQuery("baseline"), cohortQuery("canary")})
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if got, want := reqs[0].query.Get("query"), "avg:trace.http.request.duration{service:checkout AND track IN (baseline, canary)} by {host,track}.rollup(avg,60)"; got != want {
				t.Errorf("query %s\nwant  %s", got, want)
			}
			for i, want := range [][]string{tc.baseline, tc.canary} {
				if res[i].Err != nil {
					t.Fatalf("cohort %d: %v", i, res[i].Err)
				}
				if got := streamsOf(res[i].Series); !slices.Equal(got, want) {
					t.Errorf("cohort %d: %q, want %q", i, got, want)
				}
				warned := slices.ContainsFunc(res[i].Series.Warnings, func(w string) bool {
					return w == "datadog: dropped 1 series of the query on both cohorts whose track tag is none of theirs (baseline, canary)"
				})
				if warned != []bool{tc.warnBase, tc.warnCanary}[i] {
					t.Errorf("cohort %d warnings %q", i, res[i].Series.Warnings)
				}
			}
		})
	}
}

// What cannot be merged without changing what it selects is sent as rendered, one
// request each, and answered as Query answers it: queries whose scopes differ in more
// than the cohort tag, values that are not plain lowercase tag values, expressions.
func TestQueryBatchSendsTheRestAlone(t *testing.T) {
	for _, tc := range []struct {
		name             string
		baseline, canary string
	}{
		{"other tags differ", "avg:m{service:checkout,track:baseline}", "avg:m{service:payments,track:canary}"},
		{"hostile value adds a term", "avg:m{service:checkout,track:baseline}", "avg:m{service:checkout,track:canary,service:*}"},
		{"hostile value with OR", "avg:m{service:checkout,track:baseline}", "avg:m{service:checkout,track:canary OR service:*}"},
		{"hostile value with quotes", "avg:m{service:checkout,track:baseline}", `avg:m{service:checkout,track:"canary"}`},
		{"hostile value with braces", "avg:m{service:checkout,track:baseline}", "avg:m{service:checkout,track:canary}} by {x}"},
		{"wildcard value", "avg:m{service:checkout,track:baseline}", "avg:m{service:checkout,track:*}"},
		{"upper case value", "avg:m{service:checkout,track:Baseline}", "avg:m{service:checkout,track:Canary}"},
		{"expression", "avg:a{track:baseline} / avg:b{track:baseline}", "avg:a{track:canary} / avg:b{track:canary}"},
		{"different windows", "avg:m{track:baseline}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", reply{status: 200, file: "two_series.json"})
			p, _ := newTestProvider(t, f, func(c *Config) { c.CohortTag = "track" })
			b, c := testQuery(), testQuery()
			b.Text, c.Text = tc.baseline, tc.canary
			if tc.canary == "" {
				c.Text, c.Start = strings.Replace(b.Text, "baseline", "canary", 1), c.Start.Add(60e9)
			}
			res := p.QueryBatch(t.Context(), []metrics.Query{b, c})
			var sent []string
			for _, r := range f.requests() {
				sent = append(sent, r.query.Get("query"))
			}
			slices.Sort(sent)
			want := []string{strings.TrimSpace(b.Text), strings.TrimSpace(c.Text)}
			for i := range want {
				want[i], _ = v1query.WithRollup(want[i], time.Minute)
			}
			slices.Sort(want)
			if !slices.Equal(sent, want) {
				t.Errorf("sent %q\nwant %q", sent, want)
			}
			for i, r := range res {
				if r.Err != nil || len(r.Series.Streams) != 2 {
					t.Errorf("query %d: %v, %d streams", i, r.Err, len(r.Series.Streams))
				}
			}
		})
	}
}

func TestCohortTagConfig(t *testing.T) {
	for _, tc := range []struct{ tag, want string }{
		{"track", ""}, {"deploy.track_v2", ""}, {"", ""},
		{"track,env", "cohort_tag"}, {"track IN", "cohort_tag"}, {"1track", "cohort_tag"}, {"{track}", "cohort_tag"},
	} {
		c := testConfig("http://127.0.0.1:1")
		c.CohortTag = tc.tag
		err := c.Validate().Err()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cohort_tag %q: %v", tc.tag, err)
		}
	}
}
