package benchmarks

import (
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
	"github.com/canaryd/canaryd/metrics/newrelic"
)

// NRQL's TIMESERIES gives at most 366 buckets a query.
const (
	nrFacets  = 10
	nrBuckets = 366
)

// BenchmarkNewRelicDecode is the New Relic provider's cost per point after the network:
// a NerdGraph answer in the documented TIMESERIES … FACET shape (one result per bucket
// and facet: beginTimeSeconds, endTimeSeconds, facet, the faceted attribute, the
// aggregate), nrFacets facets × nrBuckets buckets, replayed by an httptest server.
func BenchmarkNewRelicDecode(b *testing.B) {
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-nrBuckets * time.Minute)
	var body strings.Builder
	body.WriteString(`{"data":{"actor":{"account":{"nrql":{"results":[`)
	for i := range nrBuckets {
		for f := range nrFacets {
			if i+f > 0 {
				body.WriteByte(',')
			}
			t := start.Add(time.Duration(i) * time.Minute).Unix()
			fmt.Fprintf(&body, `{"beginTimeSeconds":%d,"endTimeSeconds":%d,"facet":"pod-%02d","k8s.podName":"pod-%02d","average.duration":%d.%03d}`, t, t+60, f, f, i%97, (i*7919+f)%1000)
		}
	}
	body.WriteString(`]}}}}}`)
	answer := []byte(body.String())
	replay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(replay.Close)
	cfg := newrelic.DefaultConfig()
	cfg.AccountID, cfg.Endpoint, cfg.APIKey, cfg.Retries = 1, replay.URL+"/graphql", "NRAK-bench", 0
	p, err := newrelic.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	q := metrics.Query{Text: "SELECT average(duration) FROM Transaction FACET k8s.podName", Start: start, End: end, Step: time.Minute}
	ctx := context.Background()
	n := float64(nrFacets * nrBuckets)
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.Query(ctx, q)
		if err != nil || s.Len() != nrFacets*nrBuckets {
			b.Fatalf("%d points, %v", s.Len(), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/point")
	b.ReportMetric(testing.AllocsPerRun(1, func() { _, _ = p.Query(ctx, q) })/n, "allocs/point")
	b.ReportMetric(float64(len(answer))/n, "answer-B/point")
}
