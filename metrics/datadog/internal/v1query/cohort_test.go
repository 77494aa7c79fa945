package v1query

import (
	"strings"
	"testing"
)

// Issue 18 item 7: the cohorts' queries of one metric, differing only in the cohort
// tag's value, become one query on both values grouped by the tag.
func TestCohortMerge(t *testing.T) {
	for _, tc := range []struct {
		name, baseline, canary, want string
	}{
		{"plain", "avg:trace.http.request.duration{service:checkout,track:baseline}", "avg:trace.http.request.duration{service:checkout,track:canary}",
			"avg:trace.http.request.duration{service:checkout AND track IN (baseline, canary)} by {track}"},
		{"group by and modifiers", "sum:trace.http.request.errors{track:baseline, service:checkout, !env:dev} by {host}.as_count().rollup(sum, 60)",
			"sum:trace.http.request.errors{track:canary,service:checkout,!env:dev} by {host}.as_count().rollup(sum, 60)",
			"sum:trace.http.request.errors{service:checkout AND NOT env:dev AND track IN (baseline, canary)} by {host,track}.as_count().rollup(sum, 60)"},
		{"by the tag already", "max:m{track:v1.2/a} by {track}", "max:m{track:v1.3_b} by {track}", "max:m{track IN (v1.2/a, v1.3_b)} by {track}"},
		{"wildcard elsewhere, no aggregator", "m.x{pod:web-*,track:baseline}", "m.x{pod:web-*,track:canary}", "m.x{pod:web-* AND track IN (baseline, canary)} by {track}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseCohorted(tc.baseline, "track")
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseCohorted(tc.canary, "track")
			if err != nil {
				t.Fatal(err)
			}
			if b.Key() != c.Key() {
				t.Fatalf("keys differ: %q and %q", b.Key(), c.Key())
			}
			if got := b.Merge("track", []string{b.Value(), c.Value()}); got != tc.want {
				t.Errorf("merged\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// Hostile cohort values (as a registration could send them, were CheckValue bypassed)
// never widen the scope: the query is refused for merging (and sent as rendered), or the
// values differ in more than the tag (different keys: not merged together).
func TestCohortMergeRefusesHostileValues(t *testing.T) {
	render := func(v string) string { return "avg:m{service:checkout,track:" + v + "} by {host}" }
	for _, tc := range []struct{ name, value, want string }{
		{"comma adds a term", "canary,service:*", ""}, // parses, but its key differs: below
		{"brace ends the scope", "canary},avg:m{*", "not a chain of modifiers"},
		{"closing brace", "canary}", "not a chain of modifiers"},
		{"space OR", "canary OR service:*", "outside the comma syntax"},
		{"OR alone", "OR", "operator"},
		{"or alone", "or", "operator"},
		{"IN word", "in", "operator"},
		{"double quotes", `"canary"`, "outside the comma syntax"},
		{"single quotes", `'canary'`, "outside the comma syntax"},
		{"wildcard", "*", "has '*'"},
		{"prefix wildcard", "can*", "has '*'"},
		{"parenthesis", "a) OR (service:x", "outside the comma syntax"},
		{"negation", "!canary", "outside the comma syntax"},
		{"upper case", "Canary", "upper case"},
		{"empty", "", "has no value"},
		{"newline", "canary\nservice:x", "outside the comma syntax"},
		{"too long", strings.Repeat("a", 201), "longer than a tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCohorted(render(tc.value), "track")
			if tc.want == "" {
				base, err2 := ParseCohorted(render("baseline"), "track")
				if err != nil || err2 != nil {
					t.Fatalf("errors %v, %v", err, err2)
				}
				if c.Key() == base.Key() {
					t.Errorf("%q merges with the baseline's query", tc.value)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("value %q: error %v, want %q", tc.value, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, q, want string }{
		{"expression", "avg:a{track:canary} / avg:b{track:canary}", "not a chain of modifiers"},
		{"function", "top(avg:a{track:canary} by {host}, 5, 'mean', 'desc')", "not a single metric query"},
		{"boolean scope", "avg:a{service:x AND track:canary}", "outside the comma syntax"},
		{"no tag", "avg:a{service:x}", "has no track"},
		{"tag twice", "avg:a{track:canary,track:baseline}", "more than once"},
		{"tag negated", "avg:a{!track:canary}", "negates"},
		{"bad by", "avg:a{track:canary} by {host OR x}", "not a tag key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCohorted(tc.q, "track"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want %q", tc.q, err, tc.want)
			}
		})
	}
}

// FuzzParseCohorted: whatever the rendered query (a registration's values land in it),
// a query that parses merges into one scope and one group-by, with no OR, its cohort
// value a plain tag value: nothing a value holds can widen or end the scope.
func FuzzParseCohorted(f *testing.F) {
	for _, seed := range []string{
		"avg:m{service:checkout,track:canary} by {host}",
		"sum:m{track:baseline,!env:dev}.as_count().rollup(sum, 60)",
		"avg:m{service:checkout,track:canary OR service:*}",
		"avg:m{service:checkout,track:canary}} by {x}",
		"avg:m{track:a,track:b}",
		`avg:m{track:"canary"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		c, err := ParseCohorted(q, "track")
		if err != nil {
			return
		}
		v := c.Value()
		if cohortValue(v) != nil || strings.ContainsAny(v, " \t\r\n,{}()!*\"'|") {
			t.Fatalf("%q parsed with the value %q", q, v)
		}
		merged := c.Merge("track", []string{"baseline", v})
		if strings.Count(merged, "{") != 2 || strings.Count(merged, "}") != 2 || strings.Contains(merged, " OR ") ||
			strings.Count(merged, " IN (") != 1 || !strings.Contains(merged, "track IN (baseline, "+v+")} by {") {
			t.Fatalf("%q merged into %q", q, merged)
		}
	})
}
