package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// secretsConfig: a Prometheus address carrying credentials (the port is closed, so
// every query fails and the client's errors quote the URL), and a flag kill switch whose
// token holds a quote, fired when the canary ends in error.
const secretsConfig = `
server: {min_interval: 1s}
scheduler: {workers: 2, max_consecutive_errors: 2, query_timeout: 2s}
providers:
  prom: {type: prometheus, address: "http://admin:SECRET-PROM@%s/prefix?api_key=SECRET-QUERY", timeout: 1s, retries: 0}
actuators:
  killswitch:
    type: flag
    method: PATCH
    url: "%s/flags/{{ .Vars.app }}"
    headers: {Authorization: "Bearer {{ .Secrets.token }}"}
    body: '{"enabled": false, "token": "{{ .Secrets.token }}", "reason": "canary {{ .Name }}: {{ .Reason }}"}'
    secrets: {token: CANARYD_TEST_FLAG_TOKEN}
analyses:
  leak:
    provider: prom
    interval: 1s
    step: 200ms
    lifetime: 30s
    on_error: [killswitch]
    metrics:
      - name: error-rate
        query: 'sum(rate(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[1m]))'
        judge: {type: mannwhitney, critical: true}
`

// Issue 13, finding 10: no secret reaches an API answer, a page, /metrics or the log —
// not the credentials in a provider's address (quoted by its client's errors into the
// canary's reasons), not a flag token with a quote (rendered into a JSON body the flag
// service echoes back).
func TestSecretsNeverShown(t *testing.T) {
	const token = `tok"en-SECRET-FLAG\`
	t.Setenv("CANARYD_TEST_FLAG_TOKEN", token)
	var mu sync.Mutex
	var got []map[string]any
	var auth []string
	flags := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "invalid JSON: %s", b)
			return
		}
		mu.Lock()
		got, auth = append(got, body), append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		fmt.Fprintf(w, "updated: %s (auth %s)", b, r.Header.Get("Authorization")) // an echoing service
	}))
	t.Cleanup(flags.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := closed.Addr().String()
	closed.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(secretsConfig, promAddr, flags.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfgPath, filepath.Join(dir, "c.db"))
	var c canaryJSON
	body := map[string]any{
		"name": "web v2", "analysis": "leak",
		"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "canary"},
		"vars": map[string]string{"app": "web"},
	}
	if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	if end := p.waitEnded(c.ID, 30*time.Second); end.Status != "error" {
		t.Fatalf("status %s, want error: %s", end.Status, end.Reason)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out struct{ Actuations []struct{ State string } }
		p.call("GET", "/api/v1/canaries/"+c.ID+"/actuations", nil, &out)
		if len(out.Actuations) == 1 && out.Actuations[0].State == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kill switch not fired: %+v", out.Actuations)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The flag service got the token whole, in a valid body and the header.
	mu.Lock()
	if len(got) != 1 || got[0]["token"] != token || auth[0] != "Bearer "+token ||
		!strings.Contains(fmt.Sprint(got[0]["reason"]), "canary web v2: ") {
		t.Errorf("flag service got %v, auth %v", got, auth)
	}
	mu.Unlock()

	// Every answer, page and log line, searched for each secret.
	secrets := []string{"SECRET-PROM", "SECRET-QUERY", "SECRET-FLAG"}
	pages := map[string]string{}
	for _, path := range []string{
		"/api/v1/canaries/" + c.ID, "/api/v1/canaries", "/api/v1/canaries/" + c.ID + "/actuations",
		"/api/v1/audit?limit=1000", "/", "/canaries/" + c.ID, "/metrics", "/readyz",
	} {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		pages["GET "+path] = string(b)
	}
	if !strings.Contains(pages["GET /api/v1/canaries/"+c.ID], "<secret>@") && !strings.Contains(pages["GET /api/v1/canaries/"+c.ID], `\u003csecret\u003e@`) {
		t.Errorf("the canary's reasons do not name the provider (redacted): %.2000s", pages["GET /api/v1/canaries/"+c.ID])
	}
	p.kill()
	pages["the log"] = p.logs.String()
	total := 0
	for where, text := range pages {
		for _, s := range secrets {
			if n := strings.Count(text, s); n > 0 {
				total += n
				i := strings.Index(text, s)
				t.Errorf("%s: %q %d times, e.g. …%s…", where, s, n, text[max(0, i-200):min(len(text), i+100)])
			}
		}
	}
	t.Logf("secret occurrences in %d answers, pages and the log: %d", len(pages), total)
}
