package datadog

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v2query"
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
			p, _ := newTestProvider(t, f, func(c *Config) { c.CohortTag, c.Rollup = "track", "avg" })
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

// intervalQueries are one canary interval's queries: metrics m.aa, m.bbb, m.cccc (each
// told apart by its level, evaluated.go) for the baseline and the canary.
func intervalQueries(metricsN int) []metrics.Query {
	var qs []metrics.Query
	for k := range metricsN {
		for _, track := range []string{"baseline", "canary"} {
			q := testQuery()
			q.Text = "sum:m." + strings.Repeat(string(rune('a'+k)), k+2) + "{service:checkout,track:" + track + "}.as_count()"
			qs = append(qs, q)
		}
	}
	return qs
}

// Issue 18 item 8: with queries_per_request (V2), an interval's queries share requests,
// that many queries each, named q0…, one formula each, and each query gets back the
// series of its query_index only (and, merged with cohort_tag, of its cohort only).
func TestQueryBatchPacksV2(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cohortTag  string
		perRequest int
		requests   int
		queries    int // in the largest request
	}{
		{"3 metrics x 2 cohorts, merged, one request", "track", 6, 1, 3},
		{"3 metrics x 2 cohorts, not merged, one request", "", 6, 1, 6},
		{"two a request", "", 2, 3, 2},
		{"merged, two a request", "track", 2, 2, 2},
		{"off", "track", 1, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sleeps{}
			b := newBudgetDatadog(t, s.clock, 100, time.Minute)
			b.evaluate = true
			p := newBudgetProvider(t, b, s, func(c *Config) {
				c.QueryAPI, c.CohortTag, c.QueriesPerRequest = "v2", tc.cohortTag, tc.perRequest
			})
			qs := intervalQueries(3)
			res := p.QueryBatch(t.Context(), qs)
			if sent, _ := b.counts(); sent != tc.requests || len(b.v2Bodies) != tc.requests {
				t.Errorf("%d requests, want %d", sent, tc.requests)
			}
			// The largest request (the packs go concurrently, in no set order).
			most := 0
			for _, body := range b.v2Bodies {
				var req struct {
					Data struct {
						Attributes struct {
							Queries  []map[string]string
							Formulas []map[string]string
						}
					}
				}
				if err := json.Unmarshal([]byte(body), &req); err != nil {
					t.Fatal(err)
				}
				a := req.Data.Attributes
				if len(a.Queries) <= most {
					continue
				}
				most = len(a.Queries)
				if most > 1 && (len(a.Formulas) != most || a.Queries[1]["name"] != "q1" || a.Formulas[1]["formula"] != "q1") {
					t.Errorf("request of %d queries: %v", most, a)
				}
			}
			if most != tc.queries {
				t.Errorf("largest request: %d queries, want %d", most, tc.queries)
			}
			for i, r := range res {
				if r.Err != nil {
					t.Fatalf("query %d: %v", i, r.Err)
				}
				metric := regexp.MustCompile(`m\.([a-z]+)\{`).FindStringSubmatch(qs[i].Text)[1]
				want := metricLevel("m."+metric) + float64(1+i%2)
				if len(r.Series.Streams) != 1 || len(r.Series.Streams[0].Points) != 4 || r.Series.Streams[0].Points[0].V != want {
					t.Errorf("query %d (%s): %+v, want one stream of 4 points at %g", i, qs[i].Text, r.Series.Streams, want)
				}
				if l := r.Series.Streams[0].Labels[v2query.LabelQueryIndex]; l != "0" {
					t.Errorf("query %d: query index label %q, want 0 (as sent alone)", i, l)
				}
				if len(r.Series.Warnings) != 0 {
					t.Errorf("query %d: warnings %q", i, r.Series.Warnings)
				}
			}
		})
	}
}

// A request Datadog refuses as bad (400) is sent again query by query: the bad query's
// metric gets Datadog's message, the others their series.
func TestQueryBatchBadQueryFailsAlone(t *testing.T) {
	s := &sleeps{}
	b := newBudgetDatadog(t, s.clock, 100, time.Minute)
	b.evaluate = true
	p := newBudgetProvider(t, b, s, func(c *Config) { c.QueryAPI, c.CohortTag, c.QueriesPerRequest = "v2", "track", 6 })
	qs := intervalQueries(3)
	qs[2].Text = "bad(" + qs[2].Text + ")"
	res := p.QueryBatch(t.Context(), qs)
	for i, r := range res {
		switch {
		case i == 2:
			if r.Err == nil || !strings.Contains(r.Err.Error(), "datadog: bad query") || !strings.Contains(r.Err.Error(), "HTTP 400: Error parsing query: unexpected 'bad('") {
				t.Errorf("bad query: %v", r.Err)
			}
		case r.Err != nil || len(r.Series.Streams) != 1:
			t.Errorf("query %d: %v, %d streams", i, r.Err, len(r.Series.Streams))
		}
	}
	// The pack of 4 (m.aa merged, m.bbb's bad baseline and its canary apart, m.cccc
	// merged) refused, then its 4 queries alone.
	if len(b.v2Bodies) != 5 {
		t.Errorf("%d requests, want 5", len(b.v2Bodies))
	}
}

func TestQueriesPerRequestConfig(t *testing.T) {
	for _, tc := range []struct {
		api  string
		n    int
		want string
	}{
		{"v2", 1, ""}, {"v2", 20, ""}, {"v1", 1, ""},
		{"v2", 0, "queries_per_request: must be between 1 and 20, got 0"},
		{"v2", 21, "queries_per_request: must be between 1 and 20, got 21"},
		{"v1", 6, "queries_per_request: needs query_api: v2"},
	} {
		c := testConfig("http://127.0.0.1:1")
		c.QueryAPI, c.QueriesPerRequest = tc.api, tc.n
		err := c.Validate().Err()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %d: %v, want %q", tc.api, tc.n, err, tc.want)
		}
	}
}

// The same split on V2, by group_tags: the stranger (track:shadow) and the series
// without the tag are dropped and counted, the cohorts get their own series only.
func TestQueryBatchMergesCohortsV2(t *testing.T) {
	s := &sleeps{}
	b := newBudgetDatadog(t, s.clock, 100, time.Minute)
	b.v2Fixture = "v2_cohorts.json"
	p := newBudgetProvider(t, b, s, func(c *Config) { c.QueryAPI, c.CohortTag = "v2", "track" })
	res := p.QueryBatch(t.Context(), []metrics.Query{cohortQuery("baseline"), cohortQuery("canary")})
	if len(b.v2Bodies) != 1 || !strings.Contains(b.v2Bodies[0], `"query":"avg:trace.http.request.duration{service:checkout AND track IN (baseline, canary)} by {host,track}"`) {
		t.Fatalf("bodies %q", b.v2Bodies)
	}
	for i, want := range [][]string{{"web-1/baseline 0.1 0.2 0.3"}, {"web-2/canary 0.5 0.75 NaN"}} {
		if res[i].Err != nil {
			t.Fatal(res[i].Err)
		}
		if got := streamsOf(res[i].Series); !slices.Equal(got, want) {
			t.Errorf("cohort %d: %q, want %q", i, got, want)
		}
		if w := res[i].Series.Warnings; len(w) != 1 || w[0] != "datadog: dropped 2 series of the query on both cohorts whose track tag is none of theirs (baseline, canary)" {
			t.Errorf("cohort %d warnings %q", i, w)
		}
	}
}
