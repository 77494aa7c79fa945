package graphite_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/graphite"
	"github.com/canaryd/canaryd/metrics/graphite/graphitetest"
)

func newProvider(t *testing.T, url string, mod func(*graphite.Config)) *graphite.Provider {
	t.Helper()
	cfg := graphite.DefaultConfig()
	cfg.Address, cfg.Retries = url, 0
	if mod != nil {
		mod(&cfg)
	}
	p, err := graphite.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	p.SetBackoff(time.Millisecond)
	return p
}

// TestRender writes points through carbon's plaintext port into a real carbon-cache and
// reads them back through a real graphite-web's render API.
func TestRender(t *testing.T) {
	if testing.Short() {
		t.Skip("starts carbon-cache and graphite-web")
	}
	srv := graphitetest.Start(t)
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	const n = 30
	var lines strings.Builder
	value := map[string]func(i int) float64{
		"stable": func(i int) float64 { return 100 + float64(i%7) },
		"canary": func(i int) float64 { return 300 + float64(i%5)/4 },
	}
	for i := range n {
		for track, v := range value {
			fmt.Fprintf(&lines, "app.checkout.%s.latency %g %d\n", track, v(i), start.Add(time.Duration(i)*time.Second).Unix())
		}
	}
	end := start.Add((n - 1) * time.Second)
	srv.Write(t, lines.String(), "app.checkout.*.latency", start, end, 2*n)
	p := newProvider(t, srv.URL, nil)
	window := func(target string) metrics.Query {
		return metrics.Query{Text: target, Start: start, End: end, Step: time.Second}
	}

	t.Run("values and timestamps", func(t *testing.T) {
		for track, v := range value {
			s, err := p.Query(t.Context(), window("app.checkout."+track+".latency"))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Streams) != 1 || s.Streams[0].Labels["target"] != "app.checkout."+track+".latency" || s.Streams[0].Labels["name"] != "app.checkout."+track+".latency" {
				t.Fatalf("%s: %+v", track, s.Streams)
			}
			ps := s.Streams[0].Points
			// graphite-web's from is exclusive: the window's first second is not in it.
			if len(ps) != n-1 {
				t.Fatalf("%s: %d points %v, want %d", track, len(ps), ps, n-1)
			}
			for i, pt := range ps {
				want := metrics.Point{T: start.Add(time.Duration(i+1) * time.Second).UnixMilli(), V: v(i + 1)}
				if pt != want {
					t.Errorf("%s: point %d = %+v, want %+v", track, i, pt, want)
				}
			}
		}
	})
	t.Run("functions: one stream per series", func(t *testing.T) {
		s, err := p.Query(t.Context(), window("aliasByNode(app.checkout.*.latency, 2)"))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, st := range s.Streams {
			got[st.Labels["target"]] = st.Points[9].V
		}
		if len(s.Streams) != 2 || got["stable"] != value["stable"](10) || got["canary"] != value["canary"](10) {
			t.Errorf("streams %v (at point 9: %v)", s.Streams, got)
		}
	})
	t.Run("maxDataPoints consolidates to the step", func(t *testing.T) {
		q := window("app.checkout.stable.latency")
		q.Step = 10 * time.Second
		s, err := p.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 1 || len(s.Streams[0].Points) == 0 || len(s.Streams[0].Points) > 3 {
			t.Fatalf("%+v: want at most 3 points for a 29 s window at a 10 s step", s.Streams)
		}
		for _, pt := range s.Streams[0].Points {
			if pt.V < 100 || pt.V > 106 || pt.V == math.Trunc(pt.V) && pt.V != 103 {
				t.Errorf("%+v: want an average of 100…106", pt)
			}
		}
	})
	t.Run("empty result", func(t *testing.T) {
		s, err := p.Query(t.Context(), window("app.checkout.nobody.latency"))
		if err != nil || len(s.Streams) != 0 {
			t.Fatalf("%+v, %v; want no streams", s, err)
		}
	})
	for _, tc := range []struct{ name, target, want string }{
		{"bad query: the server's message", "nosuchFunction(app.checkout.canary.latency)", "HTTP 400: Invalid parameters (Received request for unknown function: nosuchFunction)"},
		{"5xx: graphite-web's HTML page on one line", `movingAverage(app.checkout.canary.latency, "x")`, "HTTP 500: Graphite encountered an unexpected error while handling your request. Please contact your site administrator if the problem persists."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newProvider(t, srv.URL, func(c *graphite.Config) { c.Retries = 1 }).Query(t.Context(), window(tc.target))
			if err == nil || !strings.HasPrefix(err.Error(), "graphite: target ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want %q on one line", err, tc.want)
			}
			if strings.Contains(tc.want, "HTTP 500") && !strings.HasSuffix(err.Error(), "(attempts: 2)") {
				t.Errorf("err = %v: want 2 attempts", err)
			}
		})
	}
	t.Run("auth in front of graphite-web", func(t *testing.T) {
		// graphite-web has no auth of its own on render; sites put it behind a proxy that
		// asks for basic auth, as this one does.
		up, _ := url.Parse(srv.URL)
		rp := httputil.NewSingleHostReverseProxy(up)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, pw, ok := r.BasicAuth(); !ok || u != "canaryd" || pw != "right-s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="graphite"`)
				http.Error(w, "401 Authorization Required", http.StatusUnauthorized)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(proxy.Close)
		pw := filepath.Join(t.TempDir(), "pw")
		for _, tc := range []struct{ password, want string }{{"right-s3cret", ""}, {"wrong-s3cret", "HTTP 401: 401 Authorization Required (check basic_auth or authorization)"}} {
			if err := os.WriteFile(pw, []byte(tc.password), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := newProvider(t, proxy.URL, func(c *graphite.Config) {
				c.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: "canaryd", PasswordFile: pw}
			}).Query(t.Context(), window("app.checkout.canary.latency"))
			if tc.want == "" {
				if err != nil || s.Len() != n-1 {
					t.Fatalf("%d points, %v", s.Len(), err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		}
	})
}

// The cases a real graphite-web does not give on demand, from a loopback server.
func TestLoopbackErrors(t *testing.T) {
	now := time.Unix(1700000000, 0)
	q := metrics.Query{Text: "a.b", Start: now.Add(-time.Minute), End: now, Step: 10 * time.Second}
	for _, tc := range []struct{ name, answer, want string }{
		{"wrong shape: an object", `{"error": "nope"}`, "decode answer"},
		{"wrong shape: null", `null`, "answer is not a list of series"},
		{"wrong shape: a datapoint", `[{"target":"a.b","datapoints":[[1, 2, 3]]}]`, "datapoint is not [value, time]"},
		{"wrong shape: a string value", `[{"target":"a.b","datapoints":[["1", 1700000000]]}]`, "datapoint value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.URL.Path != "/render" || r.Form.Get("target") != "a.b" ||
					r.Form.Get("from") != "1699999940" || r.Form.Get("until") != "1700000000" || r.Form.Get("format") != "json" || r.Form.Get("maxDataPoints") != "7" {
					http.Error(w, fmt.Sprintf("unexpected request %s %s %v", r.Method, r.URL, r.Form), http.StatusTeapot)
					return
				}
				_, _ = w.Write([]byte(tc.answer))
			}))
			t.Cleanup(srv.Close)
			_, err := newProvider(t, srv.URL, nil).Query(t.Context(), q)
			if err == nil || !strings.HasPrefix(err.Error(), `graphite: target "a.b": `) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		t.Cleanup(srv.Close)
		began := time.Now()
		_, err := newProvider(t, srv.URL, func(c *graphite.Config) { c.Timeout = 1e8 }).Query(t.Context(), q)
		if err == nil || !strings.HasPrefix(err.Error(), "graphite: ") || !strings.Contains(err.Error(), "Client.Timeout exceeded") || time.Since(began) > 3*time.Second {
			t.Fatalf("err = %v after %s", err, time.Since(began))
		}
	})
	t.Run("infinity and points outside the window", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`[{"target":"a.b","tags":{"name":"a.b"},"datapoints":[[1e9999, 1699999950],[null, 1699999960],[-1e9999,1699999970],[2.5,1700000010]]}]`))
		}))
		t.Cleanup(srv.Close)
		s, err := newProvider(t, srv.URL, nil).Query(t.Context(), q)
		if err != nil || len(s.Streams) != 1 || len(s.Streams[0].Points) != 2 || !math.IsInf(s.Streams[0].Points[0].V, 1) || !math.IsInf(s.Streams[0].Points[1].V, -1) ||
			len(s.Warnings) != 1 || s.Warnings[0] != "graphite: 1 points outside the window dropped" {
			t.Fatalf("%+v, %v", s, err)
		}
	})
}
