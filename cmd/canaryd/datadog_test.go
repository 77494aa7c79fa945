package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 18 item 9, at the process: canaryd serve checks a Datadog provider's API key at
// start with GET /api/v1/validate (read from api_key_file or the environment). A key
// Datadog accepts is logged as such; one it refuses (403, or valid: false) stops the
// start with exit 1 and a message naming the provider and where the key came from, never
// the key; a Datadog that does not answer is a warning, and the daemon starts. The
// loopback Datadog answers as
// https://docs.datadoghq.com/api/latest/authentication/#validate-api-key documents:
// 200 {"valid": true}, or 403 {"errors": ["Forbidden"]} for a key it does not know
// (and 200 {"valid": false}, which the API's schema allows, for one key).
func TestDatadogKeyCheckedAtStart(t *testing.T) {
	const goodKey, invalidKey = "0123456789abcdef0123456789abcdef", "00000000000000000000000000000000"
	dd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/validate" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors": ["Not found"]}`)
			return
		}
		switch r.Header.Get("DD-API-KEY") {
		case goodKey:
			fmt.Fprint(w, `{"valid": true}`)
		case invalidKey:
			fmt.Fprint(w, `{"valid": false}`)
		default:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors": ["Forbidden"]}`)
		}
	}))
	t.Cleanup(dd.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // a Datadog that does not answer: connection refused
	for _, tc := range []struct {
		name, key, url string
		env            bool   // the key from an environment variable instead of a file
		starts         bool   // else exits 1
		want           string // in the log, or in the output of the refused start
	}{
		{"accepted", goodKey, dd.URL, false, true, `"msg":"provider answers","provider":"dd","type":"datadog"`},
		{"refused", "fedcba9876543210fedcba9876543210", dd.URL, false, false,
			`canaryd: provider "dd" (datadog) refuses its key, so canaryd does not start (fix the key, or the site or api_url it is sent to): datadog: ` + dd.URL + ` refused the API key from file KEYFILE (GET /api/v1/validate: HTTP 403: Forbidden)`},
		{"valid false, from the environment", invalidKey, dd.URL, true, false,
			`canaryd: provider "dd" (datadog) refuses its key, so canaryd does not start (fix the key, or the site or api_url it is sent to): datadog: ` + dd.URL + ` refused the API key from $CANARYD_TEST_DD_API_KEY (GET /api/v1/validate answered valid: false)`},
		{"unreachable", goodKey, down.URL, false, true,
			`"msg":"provider does not answer; its canaries will end nodata or error until it does","provider":"dd","type":"datadog"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keyFile, appFile := filepath.Join(dir, "dd-api-key"), filepath.Join(dir, "dd-app-key")
			for path, v := range map[string]string{keyFile: tc.key + "\n", appFile: "app-" + tc.key} {
				if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			keys := fmt.Sprintf("api_key_file: %q, app_key_file: %q", keyFile, appFile)
			if tc.env {
				keys = "api_key_env: CANARYD_TEST_DD_API_KEY, app_key_file: " + strconv.Quote(appFile)
			}
			cfg := filepath.Join(dir, "canaryd.yml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
providers:
  dd: {type: datadog, api_url: %q, %s}
analyses:
  web:
    provider: dd
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'sum:trace.http.request.errors{service:{{ .Vars.app }},version:{{ .Cohort.track }}}.as_rate()'
`, tc.url, keys)), 0o600); err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, "KEYFILE", keyFile)
			if !tc.starts {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, binPath, "serve", "--config", cfg, "--storage", filepath.Join(dir, "c.db"), "--listen", freeAddr(t))
				cmd.Env = append(os.Environ(), "CANARYD_TEST_DD_API_KEY="+tc.key)
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Fatalf("serve: %v, want exit 1; output:\n%s", err, out)
				}
				if !strings.Contains(string(out), want+"\n") {
					t.Errorf("output:\n%s\nwant the line\n%s", out, want)
				}
				if strings.Contains(string(out), tc.key) {
					t.Errorf("the key is in the output:\n%s", out)
				}
				if _, err := os.Stat(filepath.Join(dir, "c.db")); err == nil {
					t.Error("the refused start created its store")
				}
				return
			}
			p := startServe(t, cfg, filepath.Join(dir, "c.db"))
			deadline := time.Now().Add(15 * time.Second)
			for !strings.Contains(p.logs.String(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q in the log:\n%s", want, p.logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if strings.Contains(p.logs.String(), tc.key) {
				t.Errorf("the key is in the log:\n%s", p.logs.String())
			}
		})
	}
}
