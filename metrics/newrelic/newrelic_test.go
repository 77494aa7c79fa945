package newrelic_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/canaryd/canaryd/internal/testutil"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/newrelic"
	"github.com/canaryd/canaryd/metrics/newrelic/nrtest"
)

func newProvider(t *testing.T, endpoint string, mod func(*newrelic.Config)) *newrelic.Provider {
	t.Helper()
	cfg := newrelic.DefaultConfig()
	cfg.AccountID, cfg.Endpoint, cfg.Retries, cfg.APIKeyEnv = nrtest.Account, endpoint+"/graphql", 0, "NR_TEST_KEY"
	t.Setenv("NR_TEST_KEY", nrtest.Key)
	if mod != nil {
		mod(&cfg)
	}
	p, err := newrelic.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	p.SetBackoff(time.Millisecond)
	return p
}

var start = time.Unix(1700000000, 0)

func window(text string) metrics.Query {
	return metrics.Query{Text: text, Start: start, End: start.Add(3 * time.Minute), Step: time.Minute}
}

func TestQuery(t *testing.T) {
	srv := nrtest.Start(t, nrtest.Prefixes(map[string]string{
		"SELECT average(duration)": `[
			{"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"average.duration":0.125},
			{"beginTimeSeconds":1700000060,"endTimeSeconds":1700000120,"average.duration":null},
			{"beginTimeSeconds":1700000120,"endTimeSeconds":1700000180,"average.duration":0.5}]`,
		"SELECT percentile(duration, 99), count(*)": `[
			{"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"percentile.duration":{"99":1.5},"count":120},
			{"beginTimeSeconds":1700000060,"endTimeSeconds":1700000120,"percentile.duration":{"99":2.5},"count":90}]`,
		"SELECT count(*) FROM Transaction FACET": `[
			{"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"facet":"checkout","appName":"checkout","count":10},
			{"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"facet":"cart","appName":"cart","count":4},
			{"beginTimeSeconds":1700000060,"endTimeSeconds":1700000120,"facet":"checkout","appName":"checkout","count":12}]`,
	}))
	p := newProvider(t, srv.URL, nil)
	for _, tc := range []struct {
		name, nrql string
		want       map[string][]metrics.Point
	}{
		{"one aggregate, a null bucket", `SELECT average(duration) FROM Transaction WHERE appName = 'checkout' AND tags.track = 'canary'`,
			map[string][]metrics.Point{"average.duration": {{T: 1700000000000, V: 0.125}, {T: 1700000120000, V: 0.5}}}},
		{"percentiles and counts", `SELECT percentile(duration, 99), count(*) FROM Transaction`,
			map[string][]metrics.Point{"percentile.duration.99": {{T: 1700000000000, V: 1.5}, {T: 1700000060000, V: 2.5}}, "count": {{T: 1700000000000, V: 120}, {T: 1700000060000, V: 90}}}},
		{"facets", `SELECT count(*) FROM Transaction FACET appName`,
			map[string][]metrics.Point{"count/checkout": {{T: 1700000000000, V: 10}, {T: 1700000060000, V: 12}}, "count/cart": {{T: 1700000000000, V: 4}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.Query(t.Context(), window(tc.nrql))
			if err != nil {
				t.Fatal(err)
			}
			seen := srv.Seen()
			if want := tc.nrql + " SINCE 1700000000000 UNTIL 1700000180000 TIMESERIES 60 seconds"; seen[len(seen)-1] != want {
				t.Errorf("NRQL sent %q, want %q", seen[len(seen)-1], want)
			}
			got := map[string][]metrics.Point{}
			for _, st := range s.Streams {
				k := st.Labels["aggregate"]
				if f := st.Labels["facet"]; f != "" {
					k += "/" + f
				}
				got[k] = st.Points
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("streams %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("empty result", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(`SELECT count(*) FROM Transaction WHERE appName = 'nobody'`))
		if err != nil || len(s.Streams) != 0 {
			t.Fatalf("%+v, %v", s, err)
		}
	})
}

// TestKeyFileRotation: a key file is read again when it changes, so a key rotated while
// the provider runs is used at the next query; a file emptied mid-rotation keeps the last
// key; no key reaches the log.
func TestKeyFileRotation(t *testing.T) {
	srv := nrtest.Start(t, nrtest.Prefixes(map[string]string{"SELECT count(*)": `[{"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"count":7}]`}))
	keyFile := filepath.Join(t.TempDir(), "key")
	t0 := time.Now().Add(-time.Hour)
	testutil.WriteSecret(t, keyFile, nrtest.Key+"\n", t0)
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := newrelic.DefaultConfig()
	cfg.AccountID, cfg.Endpoint, cfg.Retries, cfg.APIKeyFile = nrtest.Account, srv.URL+"/graphql", 0, keyFile
	p, err := newrelic.New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	const rotated = "NRAK-ROTATEDKEYS3CRET"
	for _, st := range []struct {
		name    string
		change  func()
		wantErr string
	}{
		{"the key at start", func() {}, ""},
		{"the server rotated, the file not yet", func() { srv.SetKey(rotated) }, "HTTP 401: Invalid credentials"},
		{"the file rotated", func() { testutil.WriteSecret(t, keyFile, rotated, t0.Add(time.Minute)) }, ""},
		{"the file emptied mid-rotation", func() { testutil.WriteSecret(t, keyFile, "", t0.Add(2*time.Minute)) }, ""},
	} {
		st.change()
		s, err := p.Query(t.Context(), window("SELECT count(*) FROM Transaction"))
		if st.wantErr == "" && (err != nil || s.Len() != 1) || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
			t.Errorf("%s: %+v, %v; want error %q", st.name, s, err, st.wantErr)
		}
	}
	if logs.FilterMessage("secret file reread").Len() != 1 || logs.FilterMessage("secret file unreadable; the last secret read stays in use").Len() != 1 {
		t.Errorf("logs: %v", logs.All())
	}
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if text := e.Message + string(b); strings.Contains(text, "S3CRET") || !strings.Contains(text, `"provider":"newrelic"`) {
			t.Errorf("log line %s", text)
		}
	}
}

func TestErrors(t *testing.T) {
	srv := nrtest.Start(t, nrtest.Prefixes(map[string]string{
		"SELECT averag(":  `{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"locations":[{"column":5,"line":1}],"message":"NRQL Syntax Error: Error at line 1 position 8, unexpected 'averag'","path":["actor","account","nrql"],"extensions":{"errorClass":"INVALID_INPUT"}}]}`,
		"SELECT shape":    `{"data":{"actor":{"account":{"nrql":{"results":{"count":1}}}}}}`,
		"SELECT nots":     `[{"count":1}]`,
		"SELECT fivexx":   "HTTP 503 | <html><head><title>503 Service Temporarily Unavailable</title></head>\n<body><h1>503</h1>\n</body></html>",
		"SELECT throttle": `HTTP 429 | {"errors":[{"message":"Too many requests"}]}`,
	}))
	for _, tc := range []struct{ name, nrql, want string }{
		{"bad query: NerdGraph's message", "SELECT averag(duration) FROM Transaction", "NRQL Syntax Error: Error at line 1 position 8, unexpected 'averag'"},
		{"wrong shape", "SELECT shape FROM x", "decode answer"},
		{"no TIMESERIES buckets", "SELECT nots FROM x", "result 0 has no beginTimeSeconds"},
		{"5xx: the page on one line", "SELECT fivexx FROM x", "HTTP 503: 503 Service Temporarily Unavailable: 503 (attempts: 2)"},
		{"throttled", "SELECT throttle FROM x", "HTTP 429: Too many requests (attempts: 2)"},
		{"a window of its own", "SELECT count(*) FROM x SINCE 1 day ago", "query has SINCE: canaryd adds SINCE, UNTIL and TIMESERIES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newProvider(t, srv.URL, func(c *newrelic.Config) { c.Retries = 1 }).Query(t.Context(), window(tc.nrql))
			if err == nil || !strings.HasPrefix(err.Error(), "newrelic: query ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("auth failure", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(keyFile, []byte("NRAK-WRONG-s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := newProvider(t, srv.URL, func(c *newrelic.Config) { c.APIKeyFile = keyFile }).Query(t.Context(), window("SELECT count(*) FROM x"))
		if err == nil || !strings.Contains(err.Error(), "HTTP 401: Invalid credentials (check the User API key") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		t.Cleanup(slow.Close)
		cfg := newrelic.DefaultConfig()
		cfg.AccountID, cfg.Endpoint, cfg.Retries, cfg.APIKey, cfg.Timeout = nrtest.Account, slow.URL+"/graphql", 0, nrtest.Key, 1e8
		p, err := newrelic.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Query(t.Context(), window("SELECT count(*) FROM x"))
		if err == nil || !strings.Contains(err.Error(), "Client.Timeout exceeded") {
			t.Fatalf("err = %v", err)
		}
	})
}
