package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/canaryd/canaryd/config"
)

// Kayenta's remote judge against the real daemon: POST /judge with the request Kayenta's
// RemoteJudge sends (no token: it sends no header), authorised by route_tokens.kayenta;
// a healthy pair passes, a critical error rate ×10 fails with score 0; a wrong token is
// a 401.
func TestKayentaRemoteJudgeProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := `
server:
  auth:
    tokens:
      - {name: kayenta, sha256: "` + config.HashToken("kayenta-secret-token") + `", roles: [read]}
    route_tokens: {kayenta: kayenta}
providers:
  sim: {type: synthetic}
analyses:
  sim:
    provider: sim
    lifetime: 10m
    metrics:
      - name: latency
        query: 'signal=latency_p50 cohort={{ .Cohort.track }}'
`
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfgPath, filepath.Join(dir, "canaryd.db"))
	post := func(file, token string) (int, map[string]any) {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("..", "..", "web", "kayentajudge", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url+"/judge", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s: answer not JSON: %v", file, err)
		}
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		file, classification string
		score                float64
		errorRate            string
	}{
		{"healthy.json", "Pass", 100, "Pass"},
		{"regressed.json", "Fail", 0, "High"},
	} {
		code, out := post(tc.file, "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %v", tc.file, code, out)
		}
		score, _ := out["score"].(map[string]any)
		results, _ := out["results"].([]any)
		if score["classification"] != tc.classification || score["score"] != tc.score || len(results) != 3 ||
			results[0].(map[string]any)["classification"] != tc.errorRate || out["judgeName"] != "canaryd" {
			t.Errorf("%s: %v", tc.file, out)
		}
	}
	if code, out := post("healthy.json", "not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d %v", code, out)
	}
}
