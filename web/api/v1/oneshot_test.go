package v1

import (
	"strings"
	"testing"
	"time"
)

// A registration with an end is a one-shot judgement of start..end: one interval over
// the window, no warmup, its own thresholds shown with the canary.
func TestRegisterWindow(t *testing.T) {
	srv, _ := newAPI(t)
	end := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	start := end.Add(-5 * time.Minute)
	body := func(extra string) string {
		return `{"name":"web v2","analysis":"golden","baseline":{"track":"baseline"},"canary":{"track":"canary"},"vars":{"app":"web"},` +
			`"start":"` + start.Format(time.RFC3339) + `","end":"` + end.Format(time.RFC3339) + `"` + extra + `}`
	}
	code, out := do(t, srv, "POST", "/api/v1/canaries", body(`,"thresholds":{"pass":90,"marginal":60}`))
	if code != 201 {
		t.Fatalf("%d %v", code, out)
	}
	if out["lifetime"] != "5m" || out["interval"] != "5m" || out["warmup"] != "0s" || out["interval_count"] != 1.0 {
		t.Errorf("window: %v", out)
	}
	if th, _ := out["thresholds"].(map[string]any); th["pass"] != 90.0 || th["marginal"] != 60.0 {
		t.Errorf("thresholds %v", out["thresholds"])
	}
	cases := []struct {
		name, body, field, msg string
	}{
		{"bad end", strings.Replace(body(""), end.Format(time.RFC3339), "later", 1), "end", `"later" is not an RFC 3339 time (e.g. 2026-03-01T12:30:00Z)`},
		{"end with a lifetime", body(`,"lifetime":"10m"`), "lifetime", "must not be given with end: the lifetime is end − start"},
		{"end before start", strings.Replace(body(""), start.Format(time.RFC3339), end.Add(time.Minute).Format(time.RFC3339), 1), "end", "-1m0s is less than the analysis' step (15s) after start"},
		{"marginal above pass", body(`,"thresholds":{"pass":60,"marginal":90}`), "thresholds.marginal", "must be within 0..pass (60)"},
		// encoding/json names an unknown key by itself, not by its path.
		{"unknown threshold", body(`,"thresholds":{"pass":60,"margin":50}`), "margin", "unknown field"},
		{"threshold not a number", body(`,"thresholds":{"pass":"high"}`), "thresholds.pass", "must be a number, not a JSON string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", tc.body)
			if code != 400 || out["field"] != tc.field || out["error"] != tc.msg {
				t.Errorf("got %d %v, want 400 %s: %s", code, out, tc.field, tc.msg)
			}
		})
	}
}
