package benchmarks

import (
	"fmt"
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
	cfg := newrelic.DefaultConfig()
	cfg.AccountID, cfg.Endpoint, cfg.APIKey, cfg.Retries = 1, replayAnswer(b, "application/json", []byte(body.String()))+"/graphql", "NRAK-bench", 0
	p, err := newrelic.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	q := metrics.Query{Text: "SELECT average(duration) FROM Transaction FACET k8s.podName", Start: start, End: end, Step: time.Minute}
	benchDecode(b, p, q, nrFacets*nrBuckets, body.Len())
}
