package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/graphite"
	"github.com/canaryd/canaryd/metrics/graphite/graphitetest"
)

const graphiteSeries = 10

// BenchmarkGraphiteDecode is the Graphite provider's cost per point after the network: a
// render answer (format=json) recorded from a real graphite-web (Debian's 1.1.8, on
// carbon-cache's whisper files) — graphiteSeries series × 1,440 points at 1 s — replayed
// by an httptest server.
func BenchmarkGraphiteDecode(b *testing.B) {
	if testing.Short() {
		b.Skip("starts carbon-cache and graphite-web")
	}
	srv := graphitetest.Start(b)
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	start := end.Add(-benchPoints * time.Second) // render's from is exclusive
	var lines strings.Builder
	for s := range graphiteSeries {
		for i := 1; i <= benchPoints; i++ {
			fmt.Fprintf(&lines, "bench.s%02d.latency %d.%03d %d\n", s, i%97, (i*7919)%1000, start.Add(time.Duration(i)*time.Second).Unix())
		}
	}
	srv.Write(b, lines.String(), "bench.*.latency", start.Add(time.Second), end, graphiteSeries*benchPoints)
	q := metrics.Query{Text: "bench.*.latency", Start: start, End: end, Step: time.Second}
	var body []byte
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body read whole, so it is forwarded with its length: wsgiref takes no chunked body.
		in, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.Path, bytes.NewReader(in))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		_, _ = w.Write(body)
	}))
	b.Cleanup(recorder.Close)
	if s, err := newGraphite(b, recorder.URL).Query(b.Context(), q); err != nil || s.Len() != graphiteSeries*benchPoints {
		b.Fatalf("record: %d points, %v", s.Len(), err)
	}
	replay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(replay.Close)
	p := newGraphite(b, replay.URL)
	ctx := context.Background()
	n := float64(graphiteSeries * benchPoints)
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.Query(ctx, q)
		if err != nil || s.Len() != graphiteSeries*benchPoints {
			b.Fatalf("%d points, %v", s.Len(), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/point")
	b.ReportMetric(testing.AllocsPerRun(1, func() { _, _ = p.Query(ctx, q) })/n, "allocs/point")
	b.ReportMetric(float64(len(body))/n, "answer-B/point")
}

func newGraphite(b *testing.B, url string) *graphite.Provider {
	cfg := graphite.DefaultConfig()
	cfg.Address, cfg.Retries = url, 0
	p, err := graphite.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return p
}
