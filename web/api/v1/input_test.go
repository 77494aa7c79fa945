package v1

import (
	"strings"
	"testing"
	"time"
)

// register is goodBody with some of its parts replaced, for the bad-input tables.
func registerBody(name, vars string) string {
	return `{"name":` + name + `,"analysis":"golden","baseline":{"track":"baseline"},"canary":{"track":"canary"},"vars":` + vars + `}`
}

// Control characters (C0 and C1), U+2028/U+2029 and invalid UTF-8 in any text the API
// stores would break every exec actuator (environment) and webhook (header) that carries
// it, and split log lines: each is refused with 400 naming the field, and nothing is stored.
func TestStoredTextRefusesControlCharacters(t *testing.T) {
	srv, _ := newAPI(t)
	cases := []struct {
		name, body, field string
	}{
		{"NUL in name", registerBody(`"web\u0000v2"`, `{"app":"web"}`), "name"},
		{"CR in name", registerBody(`"web\rv2"`, `{"app":"web"}`), "name"},
		{"LF in name", registerBody(`"web\nX-Injected: 1"`, `{"app":"web"}`), "name"},
		{"tab in name", registerBody(`"web\tv2"`, `{"app":"web"}`), "name"},
		{"DEL in name", registerBody(`"web\u007fv2"`, `{"app":"web"}`), "name"},
		{"C1 NEL in name", registerBody(`"web\u0085v2"`, `{"app":"web"}`), "name"},
		{"C1 CSI in name", registerBody(`"web\u009b31m"`, `{"app":"web"}`), "name"},
		{"line separator in name", registerBody(`"web\u2028v2"`, `{"app":"web"}`), "name"},
		{"paragraph separator in name", registerBody(`"web\u2029v2"`, `{"app":"web"}`), "name"},
		{"invalid UTF-8 in name", registerBody("\"web\xffv2\"", `{"app":"web"}`), "name"},
		{"truncated UTF-8 in a var", registerBody(`"web"`, "{\"app\":\"w\xe2\x80\"}"), "vars.app"},
		{"LF in a var", registerBody(`"web"`, `{"app":"web\n"}`), "vars.app"},
		{"C1 in a var", registerBody(`"web"`, `{"app":"web\u0090"}`), "vars.app"},
		{"control in a cohort value", `{"name":"x","analysis":"golden","baseline":{"track":"b\u0000"},"canary":{"track":"c"},"vars":{"app":"w"}}`, "baseline.track"},
		{"control in a key", registerBody(`"web"`, `{"app":"web","a\nb":"x"}`), "vars.a\nb"},
		{"invalid UTF-8 in a key", registerBody(`"web"`, "{\"app\":\"web\",\"a\xffb\":\"x\"}"), "vars.a\xffb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", tc.body)
			if code != 400 {
				t.Fatalf("code %d, want 400 (%v)", code, out)
			}
			// The field is named as it was sent, but the answer is JSON: an invalid byte
			// comes back as U+FFFD.
			want := strings.ToValidUTF8(tc.field, "\uFFFD")
			if got, _ := out["field"].(string); got != want {
				t.Errorf("field %q, want %q (%v)", got, want, out["error"])
			}
		})
	}
	// Printable Unicode is text like any other.
	code, out := do(t, srv, "POST", "/api/v1/canaries", registerBody(`"ウェブ v2 — ✓ \uFFFD"`, `{"app":"web"}`))
	if code != 201 || out["name"] != "ウェブ v2 — ✓ \uFFFD" {
		t.Fatalf("unicode name: %d %v", code, out)
	}
	id := out["id"].(string)

	for _, tc := range []struct {
		name, path, body string
		code             int
		field            string
	}{
		{"LF in an abort reason", "/abort", `{"reason":"bad\nX-Evil: 1"}`, 400, "reason"},
		{"NUL in an abort reason", "/abort", `{"reason":"bad\u0000"}`, 400, "reason"},
		{"C1 in a promote reason", "/promote", `{"reason":"ok\u009c"}`, 400, "reason"},
		{"line separator in a promote reason", "/promote", `{"reason":"ok\u2028"}`, 400, "reason"},
		{"invalid UTF-8 in an abort reason", "/abort", "{\"reason\":\"bad\xc3\"}", 400, "reason"},
		{"long abort reason", "/abort", `{"reason":"` + strings.Repeat("x", 1001) + `"}`, 400, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries/"+id+tc.path, tc.body)
			if f, _ := out["field"].(string); code != tc.code || f != tc.field {
				t.Errorf("%d field %q, want %d %q (%v)", code, f, tc.code, tc.field, out)
			}
		})
	}
	_, got := do(t, srv, "GET", "/api/v1/canaries/"+id, "")
	if got["status"] != "running" || got["actions"] != nil {
		t.Errorf("a refused abort or promote changed the canary: %v", got)
	}
	code, out = do(t, srv, "GET", "/api/v1/canaries", "")
	if n := len(out["canaries"].([]any)); code != 200 || n != 1 {
		t.Errorf("%d canaries stored, want only the valid one", n)
	}
}

func TestApproveRefusesControlCharacters(t *testing.T) {
	e := newActionsAPI(t, true)
	id := e.failed()
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"LF in an approve reason", "/approve", `{"reason":"ok\nX: 1"}`, "reason"},
		{"C1 in a reject reason", "/reject", `{"reason":"no\u0085"}`, "reason"},
		{"control in an actuator name", "/approve", `{"actuators":["roll\u0000back"]}`, "actuators[0]"},
		{"reject reason in another case", "/reject", `{"Reason":"x"}`, "Reason"},
		{"duplicate reason", "/reject", `{"reason":"x","reason":"y"}`, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, e.srv, "POST", "/api/v1/canaries/"+id+tc.path, tc.body)
			if f, _ := out["field"].(string); code != 400 || f != tc.field {
				t.Errorf("%d field %q, want 400 %q (%v)", code, f, tc.field, out)
			}
		})
	}
	_, out := do(t, e.srv, "GET", "/api/v1/canaries/"+id+"/actuations", "")
	if s := states(out); s["rollback"] != "awaiting_approval" {
		t.Errorf("a refused decision changed the rollback: %v", out)
	}
}

// Strict decoding is case-exact and refuses duplicate keys, which encoding/json would
// take (matching "NAME" to name, keeping the last of two keys).
func TestStrictDecodingCaseAndDuplicates(t *testing.T) {
	srv, _ := newAPI(t)
	cases := []struct {
		name, body, field, msg string
	}{
		{"upper-case key", `{"NAME":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"}}`, "NAME", `did you mean "name"`},
		{"mixed-case key", `{"name":"x","Analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"}}`, "Analysis", `did you mean "analysis"`},
		{"dry_run in another case", registerBody(`"x"`, `{"app":"w"}`)[:len(registerBody(`"x"`, `{"app":"w"}`))-1] + `,"DRY_RUN":true}`, "DRY_RUN", "case-sensitive"},
		{"duplicate top-level key", `{"name":"a","name":"b","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"}}`, "name", "duplicate key"},
		{"duplicate after a case variant", `{"name":"a","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"},"Name":"b"}`, "Name", "case-sensitive"},
		{"duplicate var", registerBody(`"x"`, `{"app":"w","app":"evil"}`), "vars.app", "duplicate key"},
		{"duplicate cohort key", `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c","track":"b"},"vars":{"app":"w"}}`, "canary.track", "duplicate key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", tc.body)
			msg, _ := out["error"].(string)
			if f, _ := out["field"].(string); code != 400 || f != tc.field || !strings.Contains(msg, tc.msg) {
				t.Errorf("%d field %q %q, want 400 %q %q", code, f, msg, tc.field, tc.msg)
			}
		})
	}
	// Keys of cohorts and vars are the caller's own: their case is kept, not matched.
	code, out := do(t, srv, "POST", "/api/v1/canaries", `{"name":"x","analysis":"golden","baseline":{"track":"b","Track":"B"},"canary":{"track":"c","Track":"B"},"vars":{"app":"w"}}`)
	if code != 201 {
		t.Fatalf("keys differing in case in a cohort: %d %v", code, out)
	}
	id := out["id"].(string)
	for _, tc := range []struct{ name, path, body, field string }{
		{"abort reason in another case", "/abort", `{"REASON":"x"}`, "REASON"},
		{"duplicate promote reason", "/promote", `{"reason":"x","reason":"y"}`, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries/"+id+tc.path, tc.body)
			if f, _ := out["field"].(string); code != 400 || f != tc.field {
				t.Errorf("%d field %q, want 400 %q (%v)", code, f, tc.field, out)
			}
		})
	}
	if _, got := do(t, srv, "GET", "/api/v1/canaries/"+id, ""); got["status"] != "running" {
		t.Errorf("a refused abort changed the canary: %v", got)
	}
}

// An interval below the floor (server.min_interval, 10 s by default, and the analysis'
// step) and a start further back than max_lifetime are refused: `interval: 1ms` with a
// past start sent 9,000 queries in two minutes. The zero time is not "now".
func TestRegisterBoundsTheQueryLoad(t *testing.T) {
	srv, _ := newAPI(t)
	body := func(extra string) string {
		return `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"}` + extra + `}`
	}
	ago := func(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339) }
	cases := []struct {
		name, extra string
		code        int
		field, msg  string
	}{
		{"1ms interval", `,"interval":"1ms"`, 400, "interval", "server.min_interval"},
		{"below server.min_interval", `,"interval":"9s"`, 400, "interval", "10s"},
		{"below the analysis' step", `,"interval":"12s"`, 400, "interval", "15s"},
		{"at the floor", `,"interval":"15s"`, 201, "", ""},
		{"the zero time", `,"start":"0001-01-01T00:00:00Z"`, 400, "start", "zero time"},
		{"the zero time with fractions", `,"start":"0001-01-01T00:00:00.000Z"`, 400, "start", "zero time"},
		{"the zero time in another zone", `,"start":"0001-01-01T01:00:00+01:00"`, 400, "start", "zero time"},
		{"longer ago than max_lifetime", `,"start":"` + ago(25*time.Hour) + `"`, 400, "start", "max_lifetime (24h0m0s)"},
		{"a year ago", `,"start":"` + ago(365*24*time.Hour) + `"`, 400, "start", "in the past"},
		{"an hour ago", `,"start":"` + ago(time.Hour) + `"`, 201, "", ""},
		{"absent start", ``, 201, "", ""},
		{"null start", `,"start":null`, 201, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", body(tc.extra))
			msg, _ := out["error"].(string)
			if f, _ := out["field"].(string); code != tc.code || f != tc.field || !strings.Contains(msg, tc.msg) {
				t.Errorf("%d field %q %q, want %d %q %q", code, f, msg, tc.code, tc.field, tc.msg)
			}
		})
	}
}
