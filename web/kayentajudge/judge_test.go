package kayentajudge

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/web/auth"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	New(Options{}).Register(auth.NewRouter(mux, nil, "kayenta"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// post sends body as Kayenta's RemoteJudge does: Retrofit's JSON converter over OkHttp,
// POST {baseUrl}/judge.
func post(t *testing.T, srv *httptest.Server, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/judge", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("User-Agent", "okhttp/4.9.3")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return resp.StatusCode, out
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// A request shaped as Kayenta's remote judge client sends it (its RemoteJudgeRequest
// through Kayenta's object mapper: timestamps, serviceType, scopes, attributes, NaN as a
// string) gets a CanaryJudgeResult: Pass for a healthy canary, Fail with score 0 when the
// critical error rate is ten times the baseline's.
func TestJudgeKayentaRequest(t *testing.T) {
	srv := server(t)
	cases := []struct {
		file           string
		score          float64
		classification string
		errorRate      string
		critical       bool
		ratioAbove     float64
		groups         string
	}{
		{"healthy.json", 100, "Pass", "Pass", false, 0, `[{errors 100} {latency 100}]`},
		{"regressed.json", 0, "Fail", "High", true, 8, `[{errors 0} {latency 100}]`},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			code, out := post(t, srv, readFile(t, tc.file))
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, out)
			}
			if got := strings.Join(keys(out), " "); got != "groupScores judgeName results score" {
				t.Errorf("keys %s", got)
			}
			score := out["score"].(map[string]any)
			if score["score"] != tc.score || score["classification"] != tc.classification {
				t.Errorf("score %v", score)
			}
			results := out["results"].([]any)
			if len(results) != 3 {
				t.Fatalf("%d results", len(results))
			}
			er := results[0].(map[string]any)
			if got := strings.Join(keys(er), " "); got != "classification classificationReason controlMetadata critical experimentMetadata groups id muted name resultMetadata" {
				t.Errorf("result keys %s", got)
			}
			if er["name"] != "error rate" || er["id"] != "error-rate-id" || er["classification"] != tc.errorRate || er["critical"] != tc.critical {
				t.Errorf("error rate result %v", er)
			}
			ratio, _ := er["resultMetadata"].(map[string]any)["ratio"].(float64)
			if tc.ratioAbove > 0 && !(ratio > tc.ratioAbove) {
				t.Errorf("ratio %v, want above %v", ratio, tc.ratioAbove)
			}
			st := er["experimentMetadata"].(map[string]any)["stats"].(map[string]any)
			if st["count"] != 60.0 || !(st["mean"].(float64) > 0) {
				t.Errorf("experiment stats %v", st)
			}
			// cpu moved +80%, but it is muted: reported, not scored, in no group score.
			cpu := results[2].(map[string]any)
			if cpu["classification"] != "High" || cpu["muted"] != true {
				t.Errorf("cpu %v", cpu)
			}
			var gs []string
			for _, g := range out["groupScores"].([]any) {
				m := g.(map[string]any)
				gs = append(gs, "{"+m["name"].(string)+" "+strings.TrimSuffix(strings.TrimSuffix(jsonNum(m["score"]), ".0"), "")+"}")
			}
			if got := "[" + strings.Join(gs, " ") + "]"; got != tc.groups {
				t.Errorf("groupScores %s, want %s", got, tc.groups)
			}
		})
	}
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Bad requests are a 400 naming the field; unknown fields are ignored.
func TestJudgeBadRequests(t *testing.T) {
	srv := server(t)
	var base map[string]any
	if err := json.Unmarshal(readFile(t, "healthy.json"), &base); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edit  func(m map[string]any)
		code  int
		field string
	}{
		{"unknown fields ignored", func(m map[string]any) {
			m["executionContext"] = map[string]any{"x": 1}
			m["metricSetPairList"].([]any)[0].(map[string]any)["extra"] = true
		}, 200, ""},
		{"no canaryConfig", func(m map[string]any) { delete(m, "canaryConfig") }, 400, "canaryConfig"},
		{"no scoreThresholds", func(m map[string]any) { delete(m, "scoreThresholds") }, 400, "scoreThresholds"},
		{"no pass", func(m map[string]any) { delete(m["scoreThresholds"].(map[string]any), "pass") }, 400, "scoreThresholds.pass"},
		{"no metricSetPairList", func(m map[string]any) { delete(m, "metricSetPairList") }, 400, "metricSetPairList"},
		{"pair without name", func(m map[string]any) { delete(m["metricSetPairList"].([]any)[1].(map[string]any), "name") }, 400, "metricSetPairList[1].name"},
		{"pair of no metric", func(m map[string]any) { m["metricSetPairList"].([]any)[1].(map[string]any)["name"] = "nope" }, 400, "metricSetPairList[1].name"},
		{"no control values", func(m map[string]any) {
			delete(m["metricSetPairList"].([]any)[2].(map[string]any)["values"].(map[string]any), "control")
		}, 400, "metricSetPairList[2].values.control"},
		{"a value not a number", func(m map[string]any) {
			m["metricSetPairList"].([]any)[0].(map[string]any)["values"].(map[string]any)["control"] = []any{"x"}
		}, 400, ""},
		{"refused judge settings", func(m map[string]any) {
			mc := m["canaryConfig"].(map[string]any)["metrics"].([]any)[1].(map[string]any)
			mc["analysisConfigurations"] = map[string]any{"canary": map[string]any{"effectSize": map[string]any{"measure": "cles", "allowedIncrease": 3}}}
		}, 400, "canaryConfig.metrics[1].analysisConfigurations.canary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			b, _ := json.Marshal(base)
			_ = json.Unmarshal(b, &m)
			tc.edit(m)
			b, _ = json.Marshal(m)
			code, out := post(t, srv, b)
			if code != tc.code || (tc.field != "" && out["field"] != tc.field) {
				t.Errorf("status %d %v, want %d naming %q", code, out, tc.code, tc.field)
			}
			if code == 400 && !strings.Contains(out["error"].(string), tc.field) {
				t.Errorf("error %q does not name %q", out["error"], tc.field)
			}
		})
	}
}

func TestNumberAsJackson(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{{math.NaN(), `"NaN"`}, {math.Inf(1), `"Infinity"`}, {math.Inf(-1), `"-Infinity"`}, {1.5, `1.5`}, {100, `100`}} {
		b, err := json.Marshal(number(tc.f))
		if err != nil || string(b) != tc.want {
			t.Errorf("%v: %s %v, want %s", tc.f, b, err, tc.want)
		}
	}
	var v []value
	if err := json.Unmarshal([]byte(`[1, "NaN", null, "Infinity", "-Infinity"]`), &v); err != nil ||
		v[0] != 1 || !math.IsNaN(float64(v[1])) || !math.IsNaN(float64(v[2])) || !math.IsInf(float64(v[3]), 1) || !math.IsInf(float64(v[4]), -1) {
		t.Errorf("values %v %v", v, err)
	}
}
