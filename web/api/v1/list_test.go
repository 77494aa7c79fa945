package v1

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
)

// GET /api/v1/canaries comes in pages, newest first: limit (default 100, at most 1000)
// and the opaque next_cursor of the previous page; the last page has no next_cursor.
func TestListPages(t *testing.T) {
	srv, sched := newAPIOn(t, memstore.New())
	var want []string // newest first
	for i := range 7 {
		code, c := do(t, srv, "POST", "/api/v1/canaries", fmt.Sprintf(`{"name":"web v%d","analysis":"golden","baseline":{"track":"baseline"},"canary":{"track":"canary"},"vars":{"app":"web"}}`, i))
		if code != 201 {
			t.Fatalf("register %d: %d %v", i, code, c)
		}
		want = append([]string{c["id"].(string)}, want...)
	}
	// Canaries registered within one clock tick keep the store's order: ask it.
	p, err := sched.ListPage(t.Context(), analysis.ListQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want = want[:0]
	for _, c := range p.Canaries {
		want = append(want, c.ID)
	}
	if _, err := sched.Abort(t.Context(), want[1], "test", false); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, query string
		pages       []int // canaries per page
		ids         []string
	}{
		{"default limit", "", []int{7}, want},
		{"pages of 3", "limit=3", []int{3, 3, 1}, want},
		{"pages of 7", "limit=7", []int{7}, want},
		{"one at a time", "limit=1", []int{1, 1, 1, 1, 1, 1, 1}, want},
		{"running in pages of 4", "status=running&limit=4", []int{4, 2}, append([]string{want[0]}, want[2:]...)},
		{"aborted", "status=aborted", []int{1}, want[1:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			var sizes []int
			q, _ := url.ParseQuery(tc.query)
			for range 10 {
				code, out := do(t, srv, "GET", "/api/v1/canaries?"+q.Encode(), "")
				if code != 200 {
					t.Fatalf("GET %s: %d %v", q.Encode(), code, out)
				}
				cs := out["canaries"].([]any)
				sizes = append(sizes, len(cs))
				for _, c := range cs {
					ids = append(ids, c.(map[string]any)["id"].(string))
				}
				next, ok := out["next_cursor"].(string)
				if !ok {
					break
				}
				q.Set("cursor", next)
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.pages) || fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
				t.Errorf("pages %v of %v, want %v of %v", sizes, ids, tc.pages, tc.ids)
			}
		})
	}

	for _, tc := range []struct {
		query, field string
	}{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"limit=1&limit=2", "limit"},
		{"cursor=bm90IGEgY3Vyc29y", "cursor"},
		{"cursor=%%%", ""},
		{"cursor=MTIzOkFCQw", "cursor"}, // "123:ABC": not an id
		{"page=2", "page"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			code, out := do(t, srv, "GET", "/api/v1/canaries?"+tc.query, "")
			if code != 400 || (tc.field != "" && out["field"] != tc.field) {
				t.Errorf("%d %v, want 400 naming %q", code, out, tc.field)
			}
		})
	}
}
