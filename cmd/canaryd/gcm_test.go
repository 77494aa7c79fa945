package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics/gcm/gcmtest"
)

// TestGCMCanaries runs the daemon on the Google Cloud Monitoring provider (issue 18,
// provider 5) against the loopback token endpoint and PromQL API the gcm package's tests
// use, a real Prometheus behind them: a canary whose latency is three times the
// baseline's fails, one drawn like the baseline passes, one token serves every query,
// neither the token nor the private key is in the daemon's log, and a cohort value that
// would end the PromQL label value is refused at registration, naming the field.
func TestGCMCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and the daemon")
	}
	now := time.Now().Truncate(time.Second)
	fakes := gcmtest.Start(t, latencyPrometheus(t, now))
	cfg := latencyConfig(fmt.Sprintf("{type: gcm, project: %s, endpoint: %q, credentials_file: %q, retries: 0}", gcmtest.Project, fakes.APIURL, gcmtest.ServiceAccountKey(t, fakes.TokenURL)),
		60*time.Second, "milliseconds", `avg(http_latency_ms{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"})`)
	p, register := latencyDaemon(t, t.TempDir(), "gcm.yml", cfg, now.Add(-70*time.Second))

	refusedTrack(t, register, `stable"} or http_latency_ms{track="slow`, "quotes")
	slowFailsGoodPasses(t, p, register, 100, 60*time.Second)
	if n := fakes.Tokens(); n != 1 {
		t.Errorf("%d tokens granted, want 1 (reused until it expires)", n)
	}
	if logs := p.logs.String(); strings.Contains(logs, gcmtest.Token) || strings.Contains(logs, "PRIVATE KEY") {
		t.Error("the token or the private key is in the daemon's log")
	}
}
