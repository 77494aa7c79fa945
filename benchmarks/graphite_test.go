package benchmarks

import (
	"fmt"
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
	if s, err := newGraphite(b, recordThrough(b, srv.URL, &body)).Query(b.Context(), q); err != nil || s.Len() != graphiteSeries*benchPoints {
		b.Fatalf("record: %d points, %v", s.Len(), err)
	}
	benchDecode(b, newGraphite(b, replayAnswer(b, "application/json", body)), q, graphiteSeries*benchPoints, len(body))
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
