package benchmarks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

const (
	benchSeries = 1000
	benchPoints = 1440 // a day at 1m
)

// writeOpenMetrics writes series×points gauge samples, one a minute ending at end, as an
// OpenMetrics file for promtool's backfill. Values are random with 3 decimals, as real
// latencies and rates are, so the JSON the server sends is of a realistic size.
func writeOpenMetrics(b *testing.B, path string, end time.Time) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	start := end.Add(-(benchPoints - 1) * time.Minute).Unix()
	fmt.Fprintln(w, "# HELP bench_value canaryd provider benchmark")
	fmt.Fprintln(w, "# TYPE bench_value gauge")
	var line []byte
	for s := range benchSeries {
		for i := range benchPoints {
			line = fmt.Appendf(line[:0], "bench_value{series=\"%04d\"} ", s)
			line = strconv.AppendFloat(line, float64(rng.IntN(100000))/1000, 'f', -1, 64)
			line = append(line, ' ')
			line = strconv.AppendInt(line, start+int64(i)*60, 10)
			line = append(line, '\n')
			if _, err := w.Write(line); err != nil {
				b.Fatal(err)
			}
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPrometheusQuery fetches and decodes 1,000 series × 1,440 points per op.
//
// Real: from Debian's Prometheus over loopback, the TSDB backfilled with promtool before
// start (scraping would need a day to produce a day of points). It includes the server's
// evaluation and JSON encoding, on the same cores as the client.
//
// Decode: the same answer recorded once and replayed by an httptest server, so the
// figure is the provider's own cost (HTTP read, JSON decode, conversion to metrics.Point).
func BenchmarkPrometheusQuery(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a real Prometheus")
	}
	dir := b.TempDir()
	om := filepath.Join(dir, "bench.om")
	end := time.Now().Truncate(time.Minute)
	writeOpenMetrics(b, om, end)
	promURL := promtest.StartWith(b, promtest.Options{OpenMetrics: om})
	q := metrics.Query{Text: "bench_value", Start: end.Add(-(benchPoints - 1) * time.Minute), End: end, Step: time.Minute}

	body := recordAnswer(b, promURL, q)
	replay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(replay.Close)

	for _, target := range []struct{ name, url string }{{"real", promURL}, {"decode", replay.URL}} {
		b.Run(target.name, func(b *testing.B) {
			cfg := prometheus.DefaultConfig()
			cfg.Address = target.url
			p, err := prometheus.New(cfg, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				s, err := p.Query(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				if len(s.Streams) != benchSeries || s.Len() != benchSeries*benchPoints {
					b.Fatalf("%d streams, %d points; want %d and %d", len(s.Streams), s.Len(), benchSeries, benchSeries*benchPoints)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(benchSeries*benchPoints), "ns/point")
		})
	}
}

// recordAnswer fetches the raw JSON answer to q once, for the replay server.
func recordAnswer(b *testing.B, promURL string, q metrics.Query) []byte {
	b.Helper()
	v := url.Values{
		"query": {q.Text},
		"start": {strconv.FormatInt(q.Start.Unix(), 10)},
		"end":   {strconv.FormatInt(q.End.Unix(), 10)},
		"step":  {strconv.FormatFloat(q.Step.Seconds(), 'f', -1, 64)},
	}
	resp, err := http.Get(promURL + "/api/v1/query_range?" + v.Encode())
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("record answer: %v %s: %.300s", err, resp.Status, body)
	}
	return body
}
