package influxdb

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/influxdata/influxdb-client-go/v2/api"
)

// fluxAnswers are annotated CSV answers as InfluxDB writes them (the first as 1.8.3
// with flux-enabled answered in the tests, the error table as the client's own tests
// write it), the fuzz target's seeds.
var fluxAnswers = []string{
	"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string,double,dateTime:RFC3339\r\n" +
		"#group,false,false,true,true,true,true,true,true,false,false\r\n" +
		"#default,a,,,,,,,,,\r\n" +
		",result,table,_start,_stop,_field,_measurement,app,track,_value,_time\r\n" +
		",,0,2026-12-01T16:13:39.4Z,2026-12-01T16:18:39.4Z,latency,http,web,canary,5,2026-12-01T16:18:00Z\r\n" +
		",,1,2026-12-01T16:13:39.4Z,2026-12-01T16:18:39.4Z,latency,http,web,stable,7,2026-12-01T16:18:00Z\r\n" +
		",,1,2026-12-01T16:13:39.4Z,2026-12-01T16:18:39.4Z,latency,http,web,stable,,2026-12-01T16:18:39.4Z\r\n\r\n" +
		"#datatype,string,long,dateTime:RFC3339,long,string\r\n" +
		"#group,false,false,false,false,true\r\n" +
		"#default,b,,,,\r\n" +
		",result,table,_time,_value,le\r\n" +
		",,0,2026-12-01T16:18:09Z,9,+Inf\r\n\r\n",
	"#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,failed to create physical plan: bounds contain zero time,897\r\n",
	"#datatype,string,long,double,string\r\n#group,false,false,false,true\r\n#default,_result,,,\r\n,result,table,_value,track\r\n,,0,2,plain\r\n",
	"\r\n",
}

func TestDecodeFlux(t *testing.T) {
	s, err := decodeFlux(api.NewQueryTableResult(io.NopCloser(strings.NewReader(fluxAnswers[0]))))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Streams) != 3 || s.Len() != 3 {
		t.Fatalf("%+v: want 3 streams of a point each (the null is no point)", s.Streams)
	}
	for i, want := range []map[string]string{
		{"_field": "latency", "_measurement": "http", "app": "web", "track": "canary", "result": "a"},
		{"_field": "latency", "_measurement": "http", "app": "web", "track": "stable", "result": "a"},
		{"le": "+Inf", "result": "b"},
	} {
		got := s.Streams[i].Labels
		if len(got) != len(want) {
			t.Errorf("stream %d: labels %v, want %v", i, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("stream %d: labels %v, want %v", i, got, want)
			}
		}
	}
	if p := s.Streams[2].Points[0]; p.V != 9 || p.T != 1796141889000 {
		t.Errorf("the long point: %+v", p)
	}
	if _, err := decodeFlux(api.NewQueryTableResult(io.NopCloser(strings.NewReader(fluxAnswers[2])))); err == nil || !strings.Contains(err.Error(), "no _time column") {
		t.Errorf("err = %v, want no _time", err)
	}
}

// FuzzFluxDecode feeds any bytes to the decoder: it never panics, and what it returns
// is streams without the window's bounds or the table number as labels, no more points
// than the answer has lines, and an error comes with no streams.
func FuzzFluxDecode(f *testing.F) {
	for _, a := range fluxAnswers {
		f.Add([]byte(a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeFlux(api.NewQueryTableResult(io.NopCloser(bytes.NewReader(b))))
		if err != nil {
			if len(s.Streams) != 0 {
				t.Fatalf("an error with streams: %v", err)
			}
			return
		}
		if s.Len() > bytes.Count(b, []byte("\n"))+1 {
			t.Fatalf("%d points from %d lines", s.Len(), bytes.Count(b, []byte("\n"))+1)
		}
		for _, st := range s.Streams {
			for _, k := range []string{"_start", "_stop", "table"} {
				if _, ok := st.Labels[k]; ok {
					t.Fatalf("labels %v hold %s", st.Labels, k)
				}
			}
		}
	})
}
