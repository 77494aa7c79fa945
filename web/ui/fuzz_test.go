package ui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// tagCounts is a page's element structure: how many of each tag.
func tagCounts(doc *html.Node) string {
	counts := map[string]int{}
	for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
		counts[n.Data]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, counts[k])
	}
	return b.String()
}

// FuzzReportText: whatever a canary's name and reasons hold, the report shows exactly that
// text and its element structure does not change (nothing injected, nothing cut).
func FuzzReportText(f *testing.F) {
	_, a := loadAnalysis(f)
	render := func(name, reason string) (*html.Node, int) {
		d := fixtureDetail(a, 2, true, true)
		d.Name, d.Reason = name, reason
		d.Results[1].Metrics[1].Reason = reason
		h := New(withAnalysis{fakeSource: newFakeSource(d), a: a}, Options{Now: now})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/canaries/"+d.ID, nil))
		doc, err := html.Parse(rec.Body)
		if err != nil {
			f.Fatal(err)
		}
		return doc, rec.Code
	}
	// A metric section leaves out an empty reason's paragraph.
	want := map[bool]string{}
	for _, reason := range []string{"", "a reason"} {
		ref, _ := render("checkout", reason)
		want[reason == ""] = tagCounts(ref)
	}
	f.Add("checkout-v2", "lifetime over")
	f.Add(`"><script>alert(1)</script>`, `</title><img src=x onerror=alert(1)>`)
	f.Add("]]><!--", "&amp; &lt;b&gt; {{.Name}}")
	f.Fuzz(func(t *testing.T, name, reason string) {
		// The HTML parser itself rewrites NUL, CR and invalid UTF-8; those are not the
		// page's doing.
		for _, s := range []string{name, reason} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) {
				return
			}
		}
		doc, code := render(name, reason)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
		if got := text(byID(doc, "name")); got != squash(name) {
			t.Errorf("name shown as %q, want %q", got, squash(name))
		}
		if got := text(byID(doc, "reason")); got != squash(reason) {
			t.Errorf("reason shown as %q, want %q", got, squash(reason))
		}
		if got := tagCounts(doc); got != want[reason == ""] {
			t.Errorf("page structure changed:\n got %s\nwant %s", got, want[reason == ""])
		}
	})
}
