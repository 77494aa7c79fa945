package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics/newrelic/nrtest"
)

// nrqlWindow is what the latency analysis' NRQL ends with once the provider has added
// the window.
var nrqlWindow = regexp.MustCompile(`tags\.track = '([^']*)' SINCE (\d+) UNTIL (\d+) TIMESERIES (\d+) seconds$`)

// TestNewRelicCanaries runs the daemon on the New Relic provider (issue 18, provider 5)
// against the loopback NerdGraph the newrelic package's tests use, answering each
// TIMESERIES query from latencySamples: a canary whose latency is three times the
// baseline's fails, one drawn like the baseline passes, a key rotated mid-run is read
// again from its file, no key is in a log line, and a cohort value that would end the
// NRQL string is refused at registration, naming the field.
func TestNewRelicCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the daemon")
	}
	now := time.Now().Truncate(time.Second)
	var mu sync.Mutex
	samples := map[string]map[int64]float64{} // track → Unix second → latency
	latencySamples(now, 120, 100, func(track string, at time.Time, v float64) {
		if samples[track] == nil {
			samples[track] = map[int64]float64{}
		}
		samples[track][at.Unix()] = v
	})
	srv := nrtest.Start(t, func(nrql string) string {
		m := nrqlWindow.FindStringSubmatch(nrql)
		if m == nil {
			return `{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error: unexpected query","path":["actor","account","nrql"],"extensions":{"errorClass":"INVALID_INPUT"}}]}`
		}
		since, _ := strconv.ParseInt(m[2], 10, 64)
		until, _ := strconv.ParseInt(m[3], 10, 64)
		step, _ := strconv.ParseInt(m[4], 10, 64)
		mu.Lock()
		defer mu.Unlock()
		var buckets []string
		for begin := since / 1000; begin < until/1000; begin += step {
			v := "null"
			if x, ok := samples[m[1]][begin]; ok {
				v = strconv.FormatFloat(x, 'f', 3, 64)
			}
			buckets = append(buckets, fmt.Sprintf(`{"beginTimeSeconds":%d,"endTimeSeconds":%d,"average.latency":%s}`, begin, begin+step, v))
		}
		return "[" + strings.Join(buckets, ",") + "]"
	})
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "nr-key")
	if err := os.WriteFile(keyFile, []byte(nrtest.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := latencyConfig(fmt.Sprintf("{type: newrelic, account_id: %d, endpoint: %q, api_key_file: %q, retries: 0}", nrtest.Account, srv.URL+"/graphql", keyFile),
		60*time.Second, "milliseconds", `SELECT average(latency) FROM Transaction WHERE appName = '{{ .Vars.app }}' AND tags.track = '{{ .Cohort.track }}'`)
	p, register := latencyDaemon(t, dir, "nr.yml", cfg, now.Add(-70*time.Second))

	refusedTrack(t, register, "x' OR tags.track = 'stable", "quotes")
	slowFailsGoodPasses(t, p, register, 100, 60*time.Second)

	// The key rotated while the daemon runs: NerdGraph takes the new one only, the
	// secret volume's file gets it, and a canary registered then passes.
	const rotated = "NRAK-ROTATEDKEYS3CRET"
	srv.SetKey(rotated)
	if err := os.WriteFile(keyFile, []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := register("good"); code != http.StatusCreated {
		t.Fatalf("register after the rotation: %d %v", code, out)
	} else if c := p.waitEnded(out["id"].(string), 60*time.Second); c.Status != "pass" {
		t.Errorf("after the rotation: status %s (%s), want pass", c.Status, c.Reason)
	}
	if logs := p.logs.String(); strings.Contains(logs, nrtest.Key) || strings.Contains(logs, rotated) || !strings.Contains(logs, "secret file reread") {
		t.Error("the API key is in the daemon's log, or the rotated file was not reread")
	}
}
