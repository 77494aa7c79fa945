package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDemoRecovery is issue 20's demo: `canaryd demo` (make run) rolls back its failed
// canaries; checkout recovers and its page says so with the times, payments (whose
// regression survives the rollback) ends not_recovered and pages on-call, and every
// outcome is the expected one. The demo runs as `make run` starts it, serving until it
// is stopped: with --exit-when-done it could exit between printing the last outcome and
// the test reading that canary's page (a clean-clone CI run saw it).
func TestDemoRecovery(t *testing.T) {
	_, lines, logs := startDemo(t)
	urls := map[string]string{} // canary name prefix → report URL
	var out []string
	page := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	checked := map[string]bool{}
	timeout := time.After(3 * time.Minute)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			out = append(out, l)
			if strings.HasPrefix(l, "Every outcome is in") {
				done = true
				break
			}
			if m := reportURLRe.FindStringSubmatch(l); m != nil {
				for _, svc := range []string{"checkout v2.0.1", "payments"} {
					if strings.Contains(l, svc) {
						urls[svc] = m[1]
					}
				}
			}
			switch {
			case strings.Contains(l, "checkout v2.0.1") && strings.Contains(l, "recovery recovered"):
				body := page(urls["checkout v2.0.1"])
				for _, want := range []string{`data-outcome="recovered"`, "<dt>rolled back</dt>", "<dt>recovered</dt>", "after the start)", "data-trigger=\"on_fail\" data-actuator=\"rollback\""} {
					if !strings.Contains(body, want) {
						t.Errorf("checkout's report lacks %q", want)
					}
				}
				checked["checkout"] = true
			case strings.Contains(l, "escalation: page-oncall"):
				body := page(urls["payments"])
				for _, want := range []string{`data-outcome="not_recovered"`, "<dt>not_recovered</dt>", "error-rate", `data-trigger="on_not_recovered" data-actuator="page-oncall"`} {
					if !strings.Contains(body, want) {
						t.Errorf("payments' report lacks %q", want)
					}
				}
				checked["payments"] = true
			}
		case <-timeout:
			t.Fatalf("the demo has not ended after 3 minutes:\n%s\n%s", strings.Join(out, "\n"), logs.String())
		}
	}
	all := strings.Join(out, "\n")
	if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "Every outcome is in") || strings.Contains(all, "UNEXPECTED") {
		t.Fatalf("the demo ended before every outcome, or with one not expected:\n%s\n%s", all, logs.String())
	}
	for _, want := range []string{
		"checkout v2.0.1 (errors ×10, latency +60%): recovery recovered, rolled back",
		"payments v3.1.0 (errors ×10 that the rollback does not cure): recovery not_recovered",
		"escalation: page-oncall succeeded (as expected)",
		"(healthy): pass after",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, all)
		}
	}
	if !checked["checkout"] || !checked["payments"] {
		t.Errorf("report pages checked: %v", checked)
	}
}
