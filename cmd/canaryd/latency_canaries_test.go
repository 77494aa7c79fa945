package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// latencyDaemon is the set-up the provider process tests share: it writes cfg to
// dir/name, starts the daemon on it and returns the daemon with a registration of the
// analysis "latency" from start (baseline track stable, the canary's track as given,
// var app=web).
func latencyDaemon(t *testing.T, dir, name, cfg string, start time.Time) (*proc, func(track string) (int, map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, path, filepath.Join(dir, "canaryd.db"))
	from := start.UTC().Format(time.RFC3339)
	register := func(track string) (int, map[string]any) {
		var out map[string]any
		code := p.call("POST", "/api/v1/canaries", map[string]any{
			"name": "web " + track, "analysis": "latency", "start": from,
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": "web"},
		}, &out)
		return code, out
	}
	return p, register
}

// slowFailsGoodPasses registers the tracks "slow" (three times the baseline's level) and
// "good" (drawn like it): slow fails and good passes, and each one's last interval read its
// own ten seconds at 1 s, about ten points a cohort, with the baseline's median in
// [level, 1.1·level] and slow's in [3·level, 3.1·level].
func slowFailsGoodPasses(t *testing.T, p *proc, register func(string) (int, map[string]any), level float64, timeout time.Duration) {
	t.Helper()
	for track, want := range map[string]string{"slow": "fail", "good": "pass"} {
		code, out := register(track)
		if code != http.StatusCreated {
			t.Fatalf("register %s: %d %v", track, code, out)
		}
		c := p.waitEnded(out["id"].(string), timeout)
		if c.Status != want {
			t.Errorf("%s: status %s (%s), want %s", track, c.Status, c.Reason, want)
			continue
		}
		last := c.Intervals[len(c.Intervals)-1].Metrics[0]
		if last.Baseline.N < 9 || last.Canary.N < 9 || last.Baseline.Median < level || last.Baseline.Median > 1.1*level {
			t.Errorf("%s: last interval %+v: want the baseline's ~10 points near %s", track, last, fmt.Sprintf("%.3g", 1.05*level))
		}
		if track == "slow" && (last.Canary.Median < 3*level || last.Canary.Median > 3.1*level) {
			t.Errorf("slow: canary median %v, want near %.3g", last.Canary.Median, 3.05*level)
		}
	}
}
