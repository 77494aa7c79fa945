package benchmarks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// BenchmarkInfluxDBFluxDecode is the Flux path's cost per point after the network: the
// official client's annotated-CSV parser and canaryd's conversion of its records, on an
// answer recorded from a real InfluxDB 1.8.3 with flux-enabled (influxtest.FluxBinary) —
// influxSeries tables × a day at 1m, aggregateWindow'd — replayed by an httptest server.
func BenchmarkInfluxDBFluxDecode(b *testing.B) {
	if testing.Short() {
		b.Skip("starts influxd 1.8")
	}
	srv := influxtest.Start(b, influxtest.Options{Flux: true})
	srv.Exec(b, `CREATE DATABASE "bench"`)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-(benchPoints - 1) * time.Minute)
	var lines strings.Builder
	for s := range influxSeries {
		for i := range benchPoints {
			// Half a step before each point's label: aggregateWindow labels a window by its stop.
			fmt.Fprintf(&lines, "latency,series=%02d v=%d.%03d %d\n", s, i%97, (i*7919)%1000, start.Add(time.Duration(i)*time.Minute-30*time.Second).UnixMilli())
		}
	}
	srv.Write(b, "bench", lines.String())
	q := metrics.Query{Text: `from(bucket: "bench/autogen")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "latency" and r._field == "v")
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)`, Start: start, End: end, Step: time.Minute}

	// The answer as the client asks for it (its dialect: every annotation), without gzip.
	script, err := influxdb.RenderFlux(q.Text, q.Start, q.End, q.Step)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := json.Marshal(map[string]any{"query": script, "type": "flux", "dialect": map[string]any{"annotations": []string{"datatype", "group", "default"}, "delimiter": ",", "header": true}})
	resp, err := http.Post(srv.URL+"/api/v2/query?org=bench", "application/json", bytes.NewReader(req))
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("record: HTTP %d: %s %v", resp.StatusCode, body, err)
	}
	cfg := influxdb.DefaultConfig()
	cfg.Address, cfg.Language, cfg.Org, cfg.Retries = replayAnswer(b, "text/csv; charset=utf-8", body), influxdb.LanguageFlux, "bench", 0
	p, err := influxdb.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, p, q, influxSeries*benchPoints, len(body))
}
