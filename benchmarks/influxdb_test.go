package benchmarks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/influxdb"
	"github.com/canaryd/canaryd/metrics/influxdb/influxtest"
)

const influxSeries = 10

// BenchmarkInfluxDBDecode is the InfluxDB provider's cost per point after the network:
// JSON decoding of a /query answer recorded from a real influxd (Debian's 1.6) —
// influxSeries series × a day at 1m — and the conversion to metrics.Series, replayed by
// an httptest server as BenchmarkPrometheusQuery/decode replays Prometheus' answer.
func BenchmarkInfluxDBDecode(b *testing.B) {
	if testing.Short() {
		b.Skip("starts influxd")
	}
	srv := influxtest.Start(b, influxtest.Options{})
	srv.Exec(b, `CREATE DATABASE "bench"`)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-(benchPoints - 1) * time.Minute)
	var lines strings.Builder
	for s := range influxSeries {
		for i := range benchPoints {
			fmt.Fprintf(&lines, "latency,series=%02d v=%d.%03d %d\n", s, i%97, (i*7919)%1000, start.Add(time.Duration(i)*time.Minute).UnixMilli())
		}
	}
	srv.Write(b, "bench", lines.String())
	q := metrics.Query{Text: `SELECT mean("v") FROM "latency" WHERE $timeFilter GROUP BY time($step), "series" fill(none)`, Start: start, End: end, Step: time.Minute}

	var body []byte
	if s, err := newInflux(b, recordThrough(b, srv.URL, &body)).Query(b.Context(), q); err != nil || s.Len() != influxSeries*benchPoints {
		b.Fatalf("record: %d points, %v", s.Len(), err)
	}
	benchDecode(b, newInflux(b, replayAnswer(b, "application/json", body)), q, influxSeries*benchPoints, len(body))
}

func newInflux(b *testing.B, url string) *influxdb.Provider {
	cfg := influxdb.DefaultConfig()
	cfg.Address, cfg.Database, cfg.Retries = url, "bench", 0
	p, err := influxdb.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return p
}
