package sameorigin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	g := New([]string{"https://grafana.example.com/", "http://ops.example:80"})
	reached := false
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	cases := []struct {
		name, method, host string
		headers            map[string]string
		ok                 bool
	}{
		{"curl: no Origin, no Sec-Fetch-Site", "POST", "canaryd:8080", nil, true},
		{"cross-site form post", "POST", "canaryd:8080", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, false},
		{"evil Origin, old browser", "POST", "canaryd:8080", map[string]string{"Origin": "https://evil.example"}, false},
		{"null Origin (sandboxed frame)", "POST", "canaryd:8080", map[string]string{"Origin": "null"}, false},
		{"same-site but other origin", "POST", "canaryd:8080", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"own form of a no-referrer page", "POST", "canaryd:8080", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, true},
		{"same-origin form", "POST", "canaryd:8080", map[string]string{"Origin": "http://canaryd:8080", "Sec-Fetch-Site": "same-origin"}, true},
		{"same host, other case", "POST", "CanaryD:8080", map[string]string{"Origin": "http://canaryd:8080"}, true},
		{"same host, other port", "POST", "canaryd:8080", map[string]string{"Origin": "http://canaryd:9090"}, false},
		{"typed by the user", "POST", "canaryd:8080", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"trusted origin", "POST", "canaryd:8080", map[string]string{"Origin": "https://grafana.example.com", "Sec-Fetch-Site": "cross-site"}, true},
		{"trusted origin, default port dropped", "DELETE", "canaryd:8080", map[string]string{"Origin": "http://ops.example", "Sec-Fetch-Site": "cross-site"}, true},
		{"a trusted origin's lookalike", "POST", "canaryd:8080", map[string]string{"Origin": "https://grafana.example.com.evil.example"}, false},
		{"cross-site PUT", "PUT", "canaryd:8080", map[string]string{"Origin": "https://evil.example"}, false},
		{"cross-site GET reads only", "GET", "canaryd:8080", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reached = false
			req := httptest.NewRequest(tc.method, "http://"+tc.host+"/api/v1/canaries/abc/abort", nil)
			req.Host = tc.host
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if reached != tc.ok {
				t.Fatalf("reached the handler: %v, want %v (%d %s)", reached, tc.ok, rec.Code, rec.Body)
			}
			if tc.ok {
				return
			}
			var body struct{ Error string }
			if rec.Code != 403 || rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &body) != nil ||
				!strings.HasPrefix(body.Error, "cross-origin request refused") {
				t.Errorf("refusal: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"https://Grafana.Example:443/": "https://grafana.example",
		"http://10.0.0.1:3000":         "http://10.0.0.1:3000",
		"ftp://x":                      "",
		"https://x/path":               "",
		"https://user@x":               "",
		"x.example":                    "",
	} {
		got, err := Normalize(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
