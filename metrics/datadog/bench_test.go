package datadog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
)

// bigResponse is a body at Datadog's per-series limit: streams series of 1500 points.
func bigResponse(streams int) []byte {
	var b strings.Builder
	b.WriteString(`{"status":"ok","res_type":"time_series","series":[`)
	for s := range streams {
		if s > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":"m","scope":"host:web-%d,track:canary","tag_set":["host:web-%d"],"pointlist":[`, s, s)
		for i := range 1500 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "[%d.0,%g]", 1700000000000+int64(i)*10000, float64(i)*0.5)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkDecode measures what one answer costs after the network: the client's JSON
// decoding (which decodes every object twice, once more for AdditionalProperties) and
// toSeries.
func BenchmarkDecode(b *testing.B) {
	body := bigResponse(10)
	var decoded datadogV1.MetricsQueryResponse
	if err := json.Unmarshal(body, &decoded); err != nil {
		b.Fatal(err)
	}
	b.Run("client-json+toSeries", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var r datadogV1.MetricsQueryResponse
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
			if _, err := toSeries(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("toSeries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, err := toSeries(&decoded)
			if err != nil || s.Len() != 15000 {
				b.Fatal(s.Len(), err)
			}
		}
	})
}
