package v1

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
)

// keyedBody is goodBody with a key and the given fields replaced (a JSON fragment each).
func keyedBody(key string, repl ...string) string {
	fields := map[string]string{
		"name": `"web v2"`, "analysis": `"golden"`, "baseline": `{"track":"baseline"}`,
		"canary": `{"track":"canary","version":"v2"}`, "vars": `{"app":"web"}`, "lifetime": `"10m"`, "interval": `"2m"`,
	}
	for i := 0; i+1 < len(repl); i += 2 {
		if repl[i+1] == "" {
			delete(fields, repl[i])
		} else {
			fields[repl[i]] = repl[i+1]
		}
	}
	var b strings.Builder
	kb, _ := json.Marshal(key)
	fmt.Fprintf(&b, `{"key":%s`, kb)
	for _, k := range []string{"name", "analysis", "baseline", "canary", "vars", "lifetime", "interval", "start", "dry_run"} {
		if v, ok := fields[k]; ok {
			fmt.Fprintf(&b, `,%q:%s`, k, v)
		}
	}
	return b.String() + "}"
}

// Issue 16 item 1: a key makes registration idempotent. The first call creates (201), a
// repeat with the same body answers 200 with that canary, a changed body 409 naming the
// first field that differs, and nothing but the first call stores anything.
func TestRegisterByKey(t *testing.T) {
	srv, _ := newAPI(t)
	const key = "checkout-rollout-7c9f8d@a1b2"
	code, first := do(t, srv, "POST", "/api/v1/canaries", keyedBody(key))
	if code != 201 || first["key"] != key || first["status"] != "running" {
		t.Fatalf("first: %d %v", code, first)
	}
	id := first["id"].(string)
	cases := []struct {
		name  string
		body  string
		code  int
		field string
	}{
		{"same body", keyedBody(key), 200, ""},
		{"same body, fields in another order", `{"interval":"2m","lifetime":"10m","vars":{"app":"web"},"canary":{"version":"v2","track":"canary"},"baseline":{"track":"baseline"},"analysis":"golden","name":"web v2","key":"` + key + `"}`, 200, ""},
		{"same durations spelt otherwise", keyedBody(key, "lifetime", `"600s"`, "interval", `"120s"`), 200, ""},
		{"dry_run false spelt out", keyedBody(key, "dry_run", "false"), 200, ""},
		{"another canary version", keyedBody(key, "canary", `{"track":"canary","version":"v3"}`), 409, "canary.version"},
		{"a cohort variable more", keyedBody(key, "baseline", `{"track":"baseline","zone":"a"}`), 409, "baseline.zone"},
		{"a shared variable less", keyedBody(key, "vars", `{}`), 409, "vars.app"},
		{"another name", keyedBody(key, "name", `"web v3"`), 409, "name"},
		{"another analysis", keyedBody(key, "analysis", `"by-build"`), 409, "analysis"},
		{"lifetime left out (defaulted the first time it was given)", keyedBody(key, "lifetime", ""), 409, "lifetime"},
		{"another interval", keyedBody(key, "interval", `"1m"`), 409, "interval"},
		{"a start", keyedBody(key, "start", `"`+time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)+`"`), 409, "start"},
		{"dry run", keyedBody(key, "dry_run", "true"), 409, "dry_run"},
		// The first difference in the API's field order: name before canary.
		{"two differences", keyedBody(key, "name", `"x"`, "canary", `{"track":"c"}`), 409, "name"},
		// A repeat is compared, not validated: an analysis this server lacks is still
		// a conflict with what was registered, not a 400 about the analysis.
		{"unknown analysis", keyedBody(key, "analysis", `"gone"`), 409, "analysis"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/api/v1/canaries", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			code, out := do(t, srv, "POST", "/api/v1/canaries", tc.body)
			if code != tc.code || rec.Code != tc.code {
				t.Fatalf("code %d (then %d), want %d: %v", rec.Code, code, tc.code, out)
			}
			if tc.code == 200 {
				if out["id"] != id || out["key"] != key || rec.Header().Get("Location") != "/api/v1/canaries/"+id {
					t.Errorf("repeat answered %v (Location %q), want canary %s", out, rec.Header().Get("Location"), id)
				}
				// The same shape as the 201: the same fields.
				if got, want := sortedKeys(out), sortedKeys(first); !reflect.DeepEqual(got, want) {
					t.Errorf("200 fields %v, 201 fields %v", got, want)
				}
				return
			}
			if out["field"] != tc.field {
				t.Errorf("field %v, want %s (%v)", out["field"], tc.field, out["error"])
			}
			if msg, _ := out["error"].(string); !strings.Contains(msg, id) || !strings.Contains(msg, tc.field) {
				t.Errorf("error %q names neither the canary holding the key nor the field", msg)
			}
		})
	}
	code, list := do(t, srv, "GET", "/api/v1/canaries", "")
	if cs := list["canaries"].([]any); code != 200 || len(cs) != 1 || cs[0].(map[string]any)["key"] != key {
		t.Errorf("want one canary, with its key, in the list: %v", list)
	}
	code, got := do(t, srv, "GET", "/api/v1/canaries/"+id, "")
	if code != 200 || got["key"] != key {
		t.Errorf("GET: %d key %v", code, got["key"])
	}
	// Another key, same body: a second canary.
	if code, out := do(t, srv, "POST", "/api/v1/canaries", keyedBody(key+"-2")); code != 201 || out["id"] == id {
		t.Errorf("another key: %d %v", code, out)
	}
	// Without a key, every call creates, as before.
	for range 2 {
		if code, _ := do(t, srv, "POST", "/api/v1/canaries", goodBody); code != 201 {
			t.Errorf("unkeyed: %d", code)
		}
	}
}

// A repeat after the canary ended answers 200 with the ended canary and its verdict: what
// a retrying pipeline wants to read.
func TestRegisterByKeyAfterEnd(t *testing.T) {
	srv, _ := newAPI(t)
	code, first := do(t, srv, "POST", "/api/v1/canaries", keyedBody("deploy-42"))
	if code != 201 {
		t.Fatalf("first: %d %v", code, first)
	}
	id := first["id"].(string)
	if code, out := do(t, srv, "POST", "/api/v1/canaries/"+id+"/abort?actuate=false", `{"reason":"bad build"}`); code != 200 {
		t.Fatalf("abort: %d %v", code, out)
	}
	code, out := do(t, srv, "POST", "/api/v1/canaries", keyedBody("deploy-42"))
	if code != 200 || out["id"] != id || out["status"] != "aborted" || out["reason"] != "bad build" || out["ended_at"] == nil {
		t.Errorf("repeat after abort: %d %v", code, out)
	}
}

func TestRegisterBadKey(t *testing.T) {
	srv, _ := newAPI(t)
	for _, tc := range []struct{ name, key string }{
		{"too long", strings.Repeat("k", analysis.MaxKeyLen+1)},
		{"space", "deploy 42"},
		{"newline", "deploy\n42"},
		{"markup", `<script>alert(1)</script>`},
		{"query string", "a?b=c"},
		{"percent", "a%2fb"},
		{"non-ASCII", "déploiement"},
		{"leading dash", "-rf"},
		{"leading slash", "/etc"},
		{"NUL", "a\x00b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", keyedBody(tc.key))
			if code != 400 || out["field"] != "key" {
				t.Errorf("POST: %d %v, want 400 on key", code, out)
			}
			code, out = do(t, srv, "GET", "/api/v1/canaries?key="+url.QueryEscape(tc.key), "")
			if code != 400 || out["field"] != "key" {
				t.Errorf("GET ?key=: %d %v, want 400 on key", code, out)
			}
		})
	}
	for _, key := range []string{"a", strings.Repeat("k", analysis.MaxKeyLen), "org/repo-3f2a9c1@refs:main", "ns.name_v2"} {
		if code, out := do(t, srv, "POST", "/api/v1/canaries", keyedBody(key)); code != 201 {
			t.Errorf("key %q: %d %v", key, code, out)
		}
	}
	code, out := do(t, srv, "GET", "/api/v1/canaries", "")
	if n := len(out["canaries"].([]any)); code != 200 || n != 4 {
		t.Errorf("%d canaries stored, want the 4 good keys'", n)
	}
}

func TestListByKey(t *testing.T) {
	srv, _ := newAPI(t)
	ids := map[string]string{}
	for _, k := range []string{"a-1", "a-2", "b"} {
		code, out := do(t, srv, "POST", "/api/v1/canaries", keyedBody(k))
		if code != 201 {
			t.Fatalf("%s: %d %v", k, code, out)
		}
		ids[k] = out["id"].(string)
	}
	do(t, srv, "POST", "/api/v1/canaries", goodBody)
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"a key", "?key=a-1", []string{ids["a-1"]}},
		{"no prefix match", "?key=a", nil},
		{"key and status", "?key=b&status=running", []string{ids["b"]}},
		{"key and another status", "?key=b&status=pass", nil},
		{"unknown key", "?key=zz", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "GET", "/api/v1/canaries"+tc.query, "")
			if code != 200 {
				t.Fatalf("%d %v", code, out)
			}
			var got []string
			for _, c := range out["canaries"].([]any) {
				got = append(got, c.(map[string]any)["id"].(string))
			}
			if !reflect.DeepEqual(got, tc.want) || out["next_cursor"] != nil {
				t.Errorf("ids %v (next %v), want %v", got, out["next_cursor"], tc.want)
			}
		})
	}
	if code, out := do(t, srv, "GET", "/api/v1/canaries?key=a-1&key=a-2", ""); code != 400 || out["field"] != "key" {
		t.Errorf("repeated key: %d %v", code, out)
	}
}

// Concurrent registrations with one key create exactly one canary, on every store: one
// 201, the rest 200 with its id.
func TestRegisterByKeyConcurrent(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t *testing.T) analysis.Store
	}{
		{"bbolt", func(t *testing.T) analysis.Store { return nil }},
		{"memory", func(t *testing.T) analysis.Store { return memstore.New() }},
	} {
		t.Run(st.name, func(t *testing.T) {
			var srv http.Handler
			var sched *analysis.Scheduler
			if s := st.open(t); s != nil {
				srv, sched = newAPIOn(t, s)
			} else {
				srv, sched = newAPI(t)
			}
			const n = 16
			var wg sync.WaitGroup
			codes := make([]int, n)
			gotIDs := make([]string, n)
			for i := range n {
				wg.Go(func() {
					code, out := do(t, srv, "POST", "/api/v1/canaries", keyedBody("race"))
					codes[i] = code
					gotIDs[i], _ = out["id"].(string)
				})
			}
			wg.Wait()
			created := 0
			for i, c := range codes {
				switch {
				case c == 201:
					created++
				case c != 200:
					t.Errorf("call %d: %d", i, c)
				}
				if gotIDs[i] != gotIDs[0] || gotIDs[i] == "" {
					t.Errorf("call %d answered canary %q, call 0 %q", i, gotIDs[i], gotIDs[0])
				}
			}
			all, err := sched.List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if created != 1 || len(all) != 1 {
				t.Errorf("%d created (201), %d stored; want 1 and 1", created, len(all))
			}
		})
	}
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
