package influxdb_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/influxdb"
)

// TestFluxAPIAnswers covers what InfluxDB 2.x answers and 1.8 does not, with a loopback
// server shaped as InfluxDB's documented POST /api/v2/query (InfluxDB OSS v2 API
// reference: a JSON body {query, type, dialect}, org as a parameter, `Authorization:
// Token …`; 200 with annotated CSV as text/csv; 400, 401, 429 and 5xx with the Error
// schema {"code", "message"}). The error bodies are those of the official client's own
// tests (influxdb-client-go api/query_test.go: TestFluxError's 400, TestErrorInRow's
// error table); the HTML one is what a reverse proxy in front of InfluxDB sends.
func TestFluxAPIAnswers(t *testing.T) {
	const token = "tok-s3cret"
	type answer struct {
		status  int
		ctype   string
		body    string
		headers map[string]string
		delay   time.Duration
	}
	csvOK := strings.Join([]string{
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string",
		"#group,false,false,true,true,false,false,true,true,true",
		"#default,_result,,,,,,,,",
		",result,table,_start,_stop,_time,_value,_field,_measurement,track",
		",,0,2026-12-01T15:59:00Z,2026-12-01T16:02:00Z,2026-12-01T16:00:00Z,1.5,latency,http,canary",
		",,0,2026-12-01T15:59:00Z,2026-12-01T16:02:00Z,2026-12-01T16:01:00Z,,latency,http,canary",
		",,0,2026-12-01T15:59:00Z,2026-12-01T16:02:00Z,2026-12-01T16:02:00Z,2.5,latency,http,canary",
		"", "",
	}, "\r\n")
	start := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	q := metrics.Query{Text: `from(bucket: "app") |> range(start: v.timeRangeStart, stop: v.timeRangeStop) |> aggregateWindow(every: v.windowPeriod, fn: mean)`, Start: start, End: start.Add(2 * time.Minute), Step: time.Minute}
	tests := []struct {
		name     string
		answers  []answer
		retries  int
		timeout  time.Duration
		want     string // the error, "" for csvOK's points
		requests int32
	}{
		{name: "200: annotated CSV", answers: []answer{{200, "text/csv; charset=utf-8", csvOK, nil, 0}}, requests: 1},
		{name: "200: no tables", answers: []answer{{200, "text/csv; charset=utf-8", "\r\n", nil, 0}}, want: "no streams", requests: 1},
		{name: "400: the server's code and message, not retried", retries: 2,
			answers: []answer{{400, "application/json; charset=utf-8", `{"code":"invalid","message":"compilation failed: loc 4:17-4:86: expected an operator between two expressions"}`, nil, 0}},
			want:    "HTTP 400: invalid: compilation failed: loc 4:17-4:86: expected an operator between two expressions", requests: 1},
		{name: "401: with a hint, not retried", retries: 2,
			answers: []answer{{401, "application/json; charset=utf-8", `{"code":"unauthorized","message":"unauthorized access"}`, nil, 0}},
			want:    "HTTP 401: unauthorized: unauthorized access (check token, token_file or token_env)", requests: 1},
		{name: "502 from a proxy: its HTML on one line, retried", retries: 1,
			answers: []answer{{502, "text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n", nil, 0}},
			want:    "HTTP 502: <html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> </html> (attempts: 2)", requests: 2},
		{name: "429, then the answer", retries: 1,
			answers:  []answer{{429, "application/json; charset=utf-8", `{"code":"too many requests","message":"org exceeded query limits"}`, map[string]string{"Retry-After": "1"}, 0}, {200, "text/csv", csvOK, nil, 0}},
			requests: 2},
		{name: "503 twice: the last message and the attempts", retries: 1,
			answers: []answer{{503, "application/json", `{"code":"unavailable","message":"service temporarily unavailable"}`, nil, 0}},
			want:    "HTTP 503: unavailable: service temporarily unavailable (attempts: 2)", requests: 2},
		{name: "an error table in a 200", answers: []answer{{200, "text/csv", "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,failed to create physical plan: invalid time bounds from procedure from: bounds contain zero time,897\r\n", nil, 0}},
			want: "read answer: failed to create physical plan: invalid time bounds from procedure from: bounds contain zero time,897", requests: 1},
		{name: "wrong shape: JSON in a 200", answers: []answer{{200, "application/json", `{"results":[]}`, nil, 0}},
			want: "read answer: parse error on line 1, column 2", requests: 1},
		{name: "timeout", timeout: 200 * time.Millisecond, answers: []answer{{200, "text/csv", csvOK, nil, 2 * time.Second}},
			want: "(timeout: 200ms)", requests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				var body struct {
					Query   string          `json:"query"`
					Type    string          `json:"type"`
					Dialect json.RawMessage `json:"dialect"`
				}
				b, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.URL.Path != "/api/v2/query" || r.URL.Query().Get("org") != "acme" ||
					r.Header.Get("Authorization") != "Token "+token || json.Unmarshal(b, &body) != nil || body.Type != "flux" ||
					!strings.HasPrefix(body.Query, "v = {timeRangeStart: 2026-12-01T15:59:00Z, timeRangeStop: 2026-12-01T16:02:00Z, windowPeriod: 1m, windowOffset: 0s} from(") {
					t.Errorf("request %s %s, Authorization %q, body %s", r.Method, r.URL, r.Header.Get("Authorization"), b)
				}
				a := tc.answers[min(i, len(tc.answers)-1)]
				select {
				case <-time.After(a.delay):
				case <-r.Context().Done():
					return
				}
				for k, v := range a.headers {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", a.ctype)
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
			}))
			t.Cleanup(srv.Close)
			p := newFlux(t, srv.URL, func(c *influxdb.Config) {
				c.Org, c.Token, c.Retries = "acme", token, tc.retries
				if tc.timeout > 0 {
					c.Timeout = model.Duration(tc.timeout)
				}
			})
			p.SetBackoff(time.Millisecond)
			s, err := p.Query(t.Context(), q)
			if got := n.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			switch tc.want {
			case "":
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Streams) != 1 || s.Streams[0].Labels["track"] != "canary" {
					t.Fatalf("%+v", s.Streams)
				}
				assertPoints(t, s.Streams[0].Points, []metrics.Point{{T: start.UnixMilli(), V: 1.5}, {T: start.Add(2 * time.Minute).UnixMilli(), V: 2.5}})
			case "no streams":
				if err != nil || len(s.Streams) != 0 {
					t.Fatalf("%+v, %v; want no streams", s, err)
				}
			default:
				if err == nil || !strings.HasPrefix(err.Error(), "influxdb: flux query ") || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v\nwant %q", err, tc.want)
				}
				if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("the error holds the token or a newline: %q", err)
				}
			}
		})
	}
}

func TestFluxServerDown(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler())
	url := l.URL
	l.Close()
	p := newFlux(t, url, func(c *influxdb.Config) { c.Retries = 1 })
	p.SetBackoff(time.Millisecond)
	now := time.Now()
	_, err := p.Query(t.Context(), metrics.Query{Text: fmt.Sprintf(fluxPerTrack, "canary"), Start: now.Add(-time.Minute), End: now, Step: time.Minute})
	if err == nil || !strings.HasPrefix(err.Error(), "influxdb: ") || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "attempts: 2") {
		t.Fatalf("err = %v, want connection refused after 2 attempts", err)
	}
}
