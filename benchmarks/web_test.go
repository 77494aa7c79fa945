package benchmarks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/web"
)

const webSeries = 10

// promShapedAnswer writes a query_range answer as Prometheus writes it (its JSON
// encoder's layout: [unix seconds, "value"] pairs, 3-decimal values) for series ×
// benchPoints points ending at end: the shape the web provider's example config reads.
func promShapedAnswer(series int, end time.Time) []byte {
	start := end.Add(-(benchPoints - 1) * time.Minute).Unix()
	var b strings.Builder
	b.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for s := range series {
		if s > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"__name__":"bench_value","series":"%04d"},"values":[`, s)
		for i := range benchPoints {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `[%d,"%d.%03d"]`, start+int64(i)*60, i%97, (i*7919+s)%1000)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// BenchmarkWebDecode is the web provider's cost per point after the network: a
// Prometheus-shaped answer (webSeries series × a day at 1m) replayed by an httptest
// server, read with the JSONPaths of configs/web.yml (encoding/json into any, then
// github.com/theory/jsonpath).
func BenchmarkWebDecode(b *testing.B) {
	end := time.Now().Truncate(time.Minute)
	body := promShapedAnswer(webSeries, end)
	cfg := web.DefaultConfig()
	cfg.URL = replayAnswer(b, "application/json", body) + "/api/v1/query_range?query={{ .Query }}&start={{ .Start.Unix }}&end={{ .End.Unix }}&step={{ .Step.Seconds }}"
	cfg.Points, cfg.Error, cfg.Retries = "$.data.result[*].values", "$.error", 0
	p, err := web.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	q := metrics.Query{Text: "bench_value", Start: end.Add(-(benchPoints - 1) * time.Minute), End: end, Step: time.Minute}
	benchDecode(b, p, q, webSeries*benchPoints, len(body))
}
