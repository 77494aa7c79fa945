package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
	"github.com/canaryd/canaryd/metrics/web"
)

// request is what the loopback server saw.
type request struct {
	method, path, rawPath, rawQuery, body string
	query                                 url.Values
	header                                http.Header
}

// serve starts a loopback server answering every request with status and body, and
// records the requests.
func serve(t *testing.T, status int, body string) (*httptest.Server, *[]request) {
	t.Helper()
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, request{method: r.Method, path: r.URL.Path, rawPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, body: string(b), query: r.URL.Query(), header: r.Header.Clone()})
		if strings.HasPrefix(body, "<") {
			w.Header().Set("Content-Type", "text/html")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func newProvider(t *testing.T, mod func(*web.Config)) *web.Provider {
	t.Helper()
	cfg := web.DefaultConfig()
	cfg.Retries = 0
	mod(&cfg)
	p, err := web.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	p.SetBackoff(time.Millisecond)
	return p
}

var (
	start = time.Unix(1700000000, 0)
	end   = start.Add(3 * time.Minute)
)

func window(text string) metrics.Query {
	return metrics.Query{Text: text, Start: start, End: end, Step: time.Minute}
}

// A Prometheus-shaped answer (the shape SigNoz's and many services' query_range take):
// [unix seconds, "value"] pairs per series.
const promShaped = `{"status":"success","data":{"resultType":"matrix","result":[
 {"metric":{"track":"canary"},"values":[[1700000000,"1.5"],[1700000060,"2"],[1700000120,"NaN"]]},
 {"metric":{"track":"canary","pod":"b"},"values":[[1700000000.25,"3"]]}]}}`

func TestQueryGET(t *testing.T) {
	srv, got := serve(t, 200, promShaped)
	p := newProvider(t, func(c *web.Config) {
		c.URL = srv.URL + "/api/v1/query_range?query={{ .Query }}&start={{ .Start.Unix }}&end={{ .End.Unix }}&step={{ .Step.Seconds }}"
		c.Points = "$.data.result[*].values"
		c.Headers = map[string]string{"X-Team": "payments"}
	})
	s, err := p.Query(t.Context(), window(`sum(rate(http_requests_total{track="canary"}[1m]))`))
	if err != nil {
		t.Fatal(err)
	}
	r := (*got)[0]
	if r.method != "GET" || r.path != "/api/v1/query_range" || r.query.Get("query") != `sum(rate(http_requests_total{track="canary"}[1m]))` ||
		r.query.Get("start") != "1700000000" || r.query.Get("end") != "1700000180" || r.query.Get("step") != "60" || r.header.Get("X-Team") != "payments" {
		t.Errorf("request: %+v", r)
	}
	if len(s.Streams) != 2 || s.Streams[0].Labels["match"] != "0" {
		t.Fatalf("streams: %+v", s.Streams)
	}
	want := []metrics.Point{{T: 1700000000000, V: 1.5}, {T: 1700000060000, V: 2}}
	ps := s.Streams[0].Points
	if len(ps) != 3 || ps[0] != want[0] || ps[1] != want[1] || ps[2].T != 1700000120000 || ps[2].V == ps[2].V {
		t.Errorf("points %v", ps)
	}
	if ps := s.Streams[1].Points; len(ps) != 1 || ps[0] != (metrics.Point{T: 1700000000250, V: 3}) {
		t.Errorf("second stream %v", ps)
	}
}

func TestQueryPOSTObjects(t *testing.T) {
	for _, tc := range []struct {
		name, format, answer string
	}{
		{"rfc3339", web.TimeRFC3339, `{"series":{"points":[{"at":"2023-11-14T22:13:20Z","avg":10},{"at":"2023-11-14T23:14:20.5+01:00","avg":null},{"at":"2023-11-14T22:15:20Z","avg":12.5}]}}`},
		{"unix_ms", web.TimeUnixMS, `{"series":{"points":[{"at":1700000000000,"avg":10},{"at":1700000060500,"avg":null},{"at":"1700000120000","avg":"12.5"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := serve(t, 200, tc.answer)
			p := newProvider(t, func(c *web.Config) {
				c.URL = srv.URL + "/v2/metrics/{{ .Query }}/points"
				c.Method = "POST"
				c.Body = `{"from": {{ .Start.UnixMilli }}, "to": "{{ .End.Format "2006-01-02T15:04:05Z07:00" }}", "step": {{ .Step }}, "query": {{ .Query }}, "note": "step {{ .Step.Seconds }}s"}`
				c.Points, c.Time, c.Value, c.TimeFormat = "$.series.points", "$.at", "$.avg", tc.format
			})
			s, err := p.Query(t.Context(), window("latency"))
			if err != nil {
				t.Fatal(err)
			}
			r := (*got)[0]
			var body map[string]any
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if r.method != "POST" || r.path != "/v2/metrics/latency/points" || r.header.Get("Content-Type") != "application/json" ||
				body["from"] != float64(1700000000000) || body["to"] != "2023-11-14T22:16:20Z" || body["step"] != "1m0s" || body["query"] != "latency" || body["note"] != "step 60s" {
				t.Errorf("request %+v body %v", r, body)
			}
			want := []metrics.Point{{T: 1700000000000, V: 10}, {T: 1700000120000, V: 12.5}}
			if len(s.Streams) != 1 || len(s.Streams[0].Points) != 2 || s.Streams[0].Points[0] != want[0] || s.Streams[0].Points[1] != want[1] {
				t.Errorf("series %+v, want %v", s, want)
			}
		})
	}
}

// Hostile values: whatever the rendered query holds stays one path segment, one query
// parameter's value, one JSON string or one form field.
func TestInjection(t *testing.T) {
	hostile := []string{
		`../../admin`, `..`, `a/b?x=1#frag`, `v2&admin=true&query=other`, `x%2F..%2Fy`,
		`"}, "admin": true, "q": "`, "a\u2028b<script>", `canary' OR 1=1 --`,
	}
	for _, place := range []struct {
		name, url, body, ctype string
		got                    func(request) string
	}{
		{name: "path", url: "/series/{{ .Query }}/points", got: func(r request) string { return strings.TrimSuffix(strings.TrimPrefix(r.path, "/series/"), "/points") }},
		{name: "query", url: "/q?a=1&query={{ .Query }}&b=2", got: func(r request) string {
			if len(r.query) != 3 || r.query.Get("a") != "1" || r.query.Get("b") != "2" || len(r.query["query"]) != 1 {
				return fmt.Sprintf("parameters %v", r.query)
			}
			return r.query.Get("query")
		}},
		{name: "json string", url: "/q", body: `{"q": "sum:{{ .Query }}", "n": 1}`, got: func(r request) string {
			var b map[string]any
			if err := json.Unmarshal([]byte(r.body), &b); err != nil || len(b) != 2 {
				return fmt.Sprintf("body %s (%v)", r.body, err)
			}
			return strings.TrimPrefix(b["q"].(string), "sum:")
		}},
		{name: "json value", url: "/q", body: `{"q": {{ .Query }}, "n": 1}`, got: func(r request) string {
			var b map[string]any
			if err := json.Unmarshal([]byte(r.body), &b); err != nil || len(b) != 2 {
				return fmt.Sprintf("body %s (%v)", r.body, err)
			}
			return b["q"].(string)
		}},
		{name: "form", url: "/q", body: `q={{ .Query }}&n=1`, ctype: "application/x-www-form-urlencoded", got: func(r request) string {
			f, err := url.ParseQuery(r.body)
			if err != nil || len(f) != 2 || f.Get("n") != "1" {
				return fmt.Sprintf("body %s (%v)", r.body, err)
			}
			return f.Get("q")
		}},
	} {
		t.Run(place.name, func(t *testing.T) {
			srv, got := serve(t, 200, `{"points":[]}`)
			p := newProvider(t, func(c *web.Config) {
				c.URL, c.Body, c.ContentType, c.Points = srv.URL+place.url, place.body, place.ctype, "$.points"
				if c.Body != "" {
					c.Method = "POST"
				}
			})
			for _, v := range hostile {
				*got = nil
				_, err := p.Query(t.Context(), window(v))
				if place.name == "path" && v == ".." {
					if err == nil || !strings.Contains(err.Error(), `".." cannot be a URL path segment`) {
						t.Errorf("%q: err = %v, want a refusal", v, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%q: %v", v, err)
					continue
				}
				if len(*got) != 1 {
					t.Fatalf("%q: %d requests", v, len(*got))
				}
				if g := place.got((*got)[0]); g != v {
					t.Errorf("%q arrived as %q (raw path %q, query %q)", v, g, (*got)[0].rawPath, (*got)[0].rawQuery)
				}
			}
		})
	}
}

func TestSecretHeaders(t *testing.T) {
	srv, got := serve(t, 401, `{"error":"invalid key"}`)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("file-s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WEB_TEST_KEY", "env-s3cret")
	core, logs := observer.New(zap.DebugLevel)
	cfg := web.DefaultConfig()
	cfg.URL, cfg.Points, cfg.Retries = srv.URL+"/q?query={{ .Query }}", "$.points", 0
	cfg.HeadersEnv = map[string]string{"X-Api-Key": "WEB_TEST_KEY"}
	cfg.HTTPClientConfig.HTTPHeaders = &commoncfg.Headers{Headers: map[string]commoncfg.Header{"X-File-Key": {Files: []string{keyFile}}}}
	p, err := web.New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(t.Context(), window("q"))
	if err == nil || err.Error() != `web: query "q": HTTP 401: invalid key (check authorization, http_headers or headers_env)` {
		t.Fatalf("err = %v", err)
	}
	if h := (*got)[0].header; h.Get("X-Api-Key") != "env-s3cret" || h.Get("X-File-Key") != "file-s3cret" {
		t.Errorf("headers sent: %v", h)
	}
	for _, e := range logs.All() {
		if b, _ := json.Marshal(e.ContextMap()); strings.Contains(string(b)+e.Message, "s3cret") {
			t.Errorf("log has a secret: %s %s", e.Message, b)
		}
	}
	t.Run("unset variable", func(t *testing.T) {
		cfg.HeadersEnv = map[string]string{"X-Api-Key": "WEB_TEST_UNSET"}
		if _, err := web.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "headers_env.X-Api-Key: $WEB_TEST_UNSET is not set") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestErrors(t *testing.T) {
	html := "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>"
	for _, tc := range []struct {
		name, points, errPath string
		status                int
		answer, want          string
	}{
		{"bad query", "$.points", "", 400, `{"status":"error","errorType":"bad_data","error":"parse error at char 4: unexpected identifier"}`, `HTTP 400: parse error at char 4: unexpected identifier`},
		{"error in a 200", "$.points", "$.error", 200, `{"status":"error","error":"query timed out in expression evaluation"}`, `the answer says: query timed out in expression evaluation`},
		{"auth", "$.points", "", 403, `{"message":"Forbidden"}`, `HTTP 403: Forbidden (check authorization`},
		{"5xx html on one line", "$.points", "", 502, html, `HTTP 502: 502 Bad Gateway: 502 Bad Gateway (attempts: 2)`},
		{"throttled", "$.points", "", 429, `{"error":"rate limit exceeded"}`, `HTTP 429: rate limit exceeded (attempts: 2)`},
		{"not json", "$.points", "", 200, `<html>ok</html>`, `answer is not JSON ("<html>ok</html>")`},
		{"wrong shape: path selects nothing", "$.data.points", "", 200, `{"points":[[1,2]]}`, `points $["data"]["points"] selects nothing in the answer`},
		{"wrong shape: not an array", "$.points", "", 200, `{"points":{"t":1}}`, `match 0 is an object, not an array`},
		{"wrong shape: value", "$.points", "", 200, `{"points":[[1700000000,"fast"]]}`, `point 0: value $[1]: "fast" is not a number`},
		{"wrong shape: no time", "$.points", "", 200, `{"points":[[]]}`, `point 0: time $[0]: selects nothing in "[]"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := serve(t, tc.status, tc.answer)
			p := newProvider(t, func(c *web.Config) {
				c.URL, c.Points, c.Error, c.Retries = srv.URL+"/q?query={{ .Query }}", tc.points, tc.errPath, 1
			})
			_, err := p.Query(t.Context(), window("up"))
			if err == nil || !strings.HasPrefix(err.Error(), `web: query "up": `) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			wantReqs := 1
			if tc.status >= 500 || tc.status == 429 {
				wantReqs = 2
			}
			if len(*got) != wantReqs {
				t.Errorf("%d requests, want %d", len(*got), wantReqs)
			}
		})
	}
	for _, tc := range []struct{ name, points, answer string }{
		{"empty array", "$.points", `{"points":[]}`},
		{"null", "$.points", `{"points":null}`},
		{"wildcard over no series", "$.data.result[*].values", `{"data":{"result":[]}}`},
	} {
		t.Run("empty: "+tc.name, func(t *testing.T) {
			srv, _ := serve(t, 200, tc.answer)
			s, err := newProvider(t, func(c *web.Config) { c.URL, c.Points = srv.URL+"/q", tc.points }).Query(t.Context(), window("up"))
			if err != nil || s.Len() != 0 {
				t.Fatalf("%+v, %v; want no data", s, err)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		t.Cleanup(srv.Close)
		p := newProvider(t, func(c *web.Config) {
			c.URL, c.Points, c.Timeout = srv.URL+"/q", "$.points", 1e8
		})
		began := time.Now()
		_, err := p.Query(t.Context(), window("up"))
		if err == nil || !strings.HasPrefix(err.Error(), "web: ") || !strings.Contains(err.Error(), "Client.Timeout exceeded") || time.Since(began) > 3*time.Second {
			t.Fatalf("err = %v after %s", err, time.Since(began))
		}
	})
}

// TestQueryPrometheus reads a real Prometheus' query_range through the web provider, the
// way a user would point it at any Prometheus-compatible API, and gets the points the
// prometheus provider gets.
func TestQueryPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	target := promtest.ServeExporter(t, promtest.Exporter{Counters: []promtest.Counter{
		{Name: "web_requests_total", Labels: map[string]string{"track": "canary"}, PerSecond: 4},
		{Name: "web_requests_total", Labels: map[string]string{"track": "stable"}, PerSecond: 2},
	}})
	promURL := promtest.Start(t, target)
	promtest.WaitFor(t, promURL, `rate(web_requests_total[3s])`, 2, 30*time.Second)
	time.Sleep(3 * time.Second)
	p := newProvider(t, func(c *web.Config) {
		c.URL = promURL + "/api/v1/query_range?query={{ .Query }}&start={{ .Start.Unix }}&end={{ .End.Unix }}&step={{ .Step.Seconds }}"
		c.Points, c.Error = "$.data.result[*].values", "$.error"
	})
	pc := prometheus.DefaultConfig()
	pc.Address = promURL
	native, err := prometheus.New(pc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	q := metrics.Query{Text: `rate(web_requests_total{track="canary"}[3s])`, Start: now.Add(-4 * time.Second), End: now, Step: time.Second}
	got, err := p.Query(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	want, err := native.Query(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 1 || len(want.Streams) != 1 || len(got.Streams[0].Points) < 3 || len(got.Streams[0].Points) != len(want.Streams[0].Points) {
		t.Fatalf("web %+v\nprometheus %+v", got, want)
	}
	for i, pt := range got.Streams[0].Points {
		if pt != want.Streams[0].Points[i] {
			t.Errorf("point %d: web %+v, prometheus %+v", i, pt, want.Streams[0].Points[i])
		}
	}
	if last := got.Streams[0].Points[len(got.Streams[0].Points)-1]; math.Abs(last.V-4) > 1e-6 || last.T != now.UnixMilli() {
		t.Errorf("last point %+v, want 4/s at %d", last, now.UnixMilli())
	}
	t.Run("the server's parse error", func(t *testing.T) {
		_, err := p.Query(t.Context(), metrics.Query{Text: `rate(web_requests_total[3s]`, Start: q.Start, End: q.End, Step: time.Second})
		if err == nil || !strings.Contains(err.Error(), "HTTP 400: 1:28: parse error: unclosed left parenthesis") {
			t.Fatalf("err = %v", err)
		}
	})
}
