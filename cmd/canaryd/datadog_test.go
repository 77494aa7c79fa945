package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 18 item 9, at the process: canaryd serve checks a Datadog provider's API key at
// start with GET /api/v1/validate, read from api_key_file, and says in its log whether
// Datadog accepted it, never the key. The loopback Datadog answers as
// https://docs.datadoghq.com/api/latest/authentication/#validate-api-key documents:
// 200 {"valid": true}, or 403 {"errors": ["Forbidden"]} for a key it does not know.
func TestDatadogKeyCheckedAtStart(t *testing.T) {
	const goodKey = "0123456789abcdef0123456789abcdef"
	dd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/validate" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors": ["Not found"]}`)
			return
		}
		if r.Header.Get("DD-API-KEY") != goodKey {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors": ["Forbidden"]}`)
			return
		}
		fmt.Fprint(w, `{"valid": true}`)
	}))
	t.Cleanup(dd.Close)
	for _, tc := range []struct {
		name, key, want string
	}{
		{"accepted", goodKey, `"msg":"provider answers","provider":"dd","type":"datadog"`},
		{"refused", "fedcba9876543210fedcba9876543210", `refused the API key from file `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keyFile, appFile := filepath.Join(dir, "dd-api-key"), filepath.Join(dir, "dd-app-key")
			for path, v := range map[string]string{keyFile: tc.key + "\n", appFile: "app-" + tc.key} {
				if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(dir, "canaryd.yml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
providers:
  dd: {type: datadog, api_url: %q, api_key_file: %q, app_key_file: %q}
analyses:
  web:
    provider: dd
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'sum:trace.http.request.errors{service:{{ .Vars.app }},version:{{ .Cohort.track }}}.as_rate()'
`, dd.URL, keyFile, appFile)), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startServe(t, cfg, filepath.Join(dir, "c.db"))
			deadline := time.Now().Add(15 * time.Second)
			for !strings.Contains(p.logs.String(), tc.want) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q in the log:\n%s", tc.want, p.logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tc.name == "refused" && !strings.Contains(p.logs.String(), `"provider does not answer; its canaries will end nodata or error until it does","provider":"dd"`) {
				t.Errorf("the refusal is not the provider check's warning:\n%s", p.logs.String())
			}
			if strings.Contains(p.logs.String(), tc.key) {
				t.Errorf("the key is in the log:\n%s", p.logs.String())
			}
		})
	}
}
