package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics/influxdb/influxtest"
)

// TestInfluxDBCanaries runs the daemon on a real influxd (issue 18, provider 3): a canary
// whose latency is three times the baseline's fails on the InfluxQL metric, one drawn like
// the baseline passes, and a cohort value that would break out of the InfluxQL string is
// refused at registration, naming the field.
func TestInfluxDBCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd and the daemon")
	}
	srv := influxtest.Start(t, influxtest.Options{})
	srv.Exec(t, `CREATE DATABASE "app"`)
	now := time.Now().Truncate(time.Second)
	var lines strings.Builder
	latencySamples(now, 120, 100, func(track string, at time.Time, v float64) {
		fmt.Fprintf(&lines, "http,app=web,track=%s latency=%.3f %d\n", track, v, at.UnixMilli())
	})
	srv.Write(t, "app", lines.String())

	cfg := latencyConfig(fmt.Sprintf("{type: influxdb, address: %q, database: app, retries: 0}", srv.URL), 60*time.Second, "milliseconds",
		`SELECT mean("latency") FROM "http" WHERE "app" = '{{ .Vars.app }}' AND "track" = '{{ .Cohort.track }}'
AND $timeFilter GROUP BY time($step) fill(none)`)
	p, register := latencyDaemon(t, t.TempDir(), "influx.yml", cfg, now.Add(-70*time.Second))

	// Quotes are refused for every provider; a semicolon only by InfluxQL's checker.
	refusedTrack(t, register, `canary; DROP DATABASE app`, "InfluxQL")
	slowFailsGoodPasses(t, p, register, 100, 60*time.Second)
}
