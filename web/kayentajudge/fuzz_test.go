package kayentajudge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzJudge: any body is a JSON answer, 200 or a 4xx, never a panic or a 5xx.
func FuzzJudge(f *testing.F) {
	for _, name := range []string{"healthy.json", "regressed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"canaryConfig":{"metrics":[{"name":"m"}]},"scoreThresholds":{"pass":"95","marginal":0},"metricSetPairList":[{"name":"m","values":{"control":["NaN"],"experiment":[null]}}]}`))
	h := New(Options{MaxBody: 1 << 20})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.judge(rec, httptest.NewRequest(http.MethodPost, "/judge", bytes.NewReader(body)))
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code > 499) {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer not JSON: %q", rec.Body)
		}
	})
}
