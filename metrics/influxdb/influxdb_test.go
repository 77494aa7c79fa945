package influxdb_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/influxdb"
	"github.com/canaryd/canaryd/metrics/influxdb/influxtest"
)

func newProvider(t *testing.T, url string, mod func(*influxdb.Config)) *influxdb.Provider {
	t.Helper()
	cfg := influxdb.DefaultConfig()
	cfg.Address, cfg.Database, cfg.Retries = url, "app", 0
	if mod != nil {
		mod(&cfg)
	}
	p, err := influxdb.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const perTrack = `SELECT mean("latency") FROM "http" WHERE "app" = 'checkout' AND "track" = '%s' AND $timeFilter GROUP BY time($step) fill(none)`

func TestQueryInfluxd(t *testing.T) {
	srv := influxtest.Start(t, influxtest.Options{})
	srv.Exec(t, `CREATE DATABASE "app"`)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// Two points a minute per track (at +10s and +40s), so mean() has something to do.
	stable := [][2]float64{{10, 20}, {12, 14}, {11, 11}, {13, 15}, {9, 7}}
	canary := [][2]float64{{30, 40}, {31, 33}, {29, 29}, {35, 37}, {28, 26}}
	var lines strings.Builder
	for i := range stable {
		m := start.Add(time.Duration(i) * time.Minute)
		for track, vs := range map[string][2]float64{"stable": stable[i], "canary": canary[i]} {
			fmt.Fprintf(&lines, "http,app=checkout,track=%s latency=%g,code=\"200\" %d\n", track, vs[0], m.Add(10*time.Second).UnixMilli())
			fmt.Fprintf(&lines, "http,app=checkout,track=%s latency=%g,code=\"200\" %d\n", track, vs[1], m.Add(40*time.Second).UnixMilli())
		}
	}
	srv.Write(t, "app", lines.String())
	p := newProvider(t, srv.URL, nil)
	window := func(text string) metrics.Query {
		return metrics.Query{Text: text, Start: start, End: start.Add(5 * time.Minute), Step: time.Minute}
	}
	means := func(vs [][2]float64) []metrics.Point {
		var ps []metrics.Point
		for i, v := range vs {
			ps = append(ps, metrics.Point{T: start.Add(time.Duration(i) * time.Minute).UnixMilli(), V: (v[0] + v[1]) / 2})
		}
		return ps
	}

	t.Run("values and timestamps", func(t *testing.T) {
		for track, vs := range map[string][][2]float64{"stable": stable, "canary": canary} {
			s, err := p.Query(t.Context(), window(fmt.Sprintf(perTrack, track)))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Streams) != 1 {
				t.Fatalf("%s: %d streams: %+v", track, len(s.Streams), s.Streams)
			}
			if l := s.Streams[0].Labels; l["measurement"] != "http" || l["field"] != "mean" {
				t.Errorf("%s: labels %v", track, l)
			}
			assertPoints(t, s.Streams[0].Points, means(vs))
		}
	})
	t.Run("group by tag: one stream per series, tags as labels", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(`SELECT max("latency") AS "max", min("latency") AS "min" FROM "http" WHERE $timeFilter GROUP BY time($step), "track" fill(none)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 4 {
			t.Fatalf("%d streams, want 2 tracks × 2 fields: %+v", len(s.Streams), s.Streams)
		}
		got := map[string]float64{}
		for _, st := range s.Streams {
			if len(st.Points) != 5 {
				t.Errorf("%v: %d points", st.Labels, len(st.Points))
				continue
			}
			got[st.Labels["track"]+"/"+st.Labels["field"]] = st.Points[3].V
		}
		want := map[string]float64{"stable/max": 15, "stable/min": 13, "canary/max": 37, "canary/min": 35}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s at minute 3 = %v, want %v (all: %v)", k, got[k], v, got)
			}
		}
	})
	t.Run("step 2m", func(t *testing.T) {
		q := window(fmt.Sprintf(perTrack, "canary"))
		q.Step = 2 * time.Minute
		s, err := p.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 1 {
			t.Fatalf("%d streams", len(s.Streams))
		}
		// InfluxDB aligns buckets to the epoch: with start on an odd minute the first
		// bucket is labelled a minute before start and holds start's minute only.
		var want []metrics.Point
		for m := start.Truncate(2 * time.Minute); !m.After(start.Add(5 * time.Minute)); m = m.Add(2 * time.Minute) {
			var sum, n float64
			for i, v := range canary {
				at := start.Add(time.Duration(i) * time.Minute)
				if !at.Before(m) && at.Before(m.Add(2*time.Minute)) {
					sum, n = sum+v[0]+v[1], n+2
				}
			}
			if n > 0 {
				want = append(want, metrics.Point{T: m.UnixMilli(), V: sum / n})
			}
		}
		assertPoints(t, s.Streams[0].Points, want)
	})
	t.Run("empty result", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(fmt.Sprintf(perTrack, "nobody")))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 0 || s.Len() != 0 {
			t.Errorf("%+v, want no streams", s)
		}
	})
	for _, tc := range []struct{ name, query, db, want string }{
		{"bad query: the server's parse error", `SELEC mean("latency") FROM "http" WHERE $timeFilter`, "", "HTTP 400: error parsing query: found SELEC"},
		{"unknown database: the server's error", fmt.Sprintf(perTrack, "canary"), "nope", "database not found: nope"},
		{"no time filter", `SELECT mean("latency") FROM "http"`, "", "has no $timeFilter"},
		{"a string field", `SELECT last("code") FROM "http" WHERE $timeFilter GROUP BY time($step) fill(none)`, "", "is not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pp := p
			if tc.db != "" {
				pp = newProvider(t, srv.URL, func(c *influxdb.Config) { c.Database = tc.db })
			}
			_, err := pp.Query(t.Context(), window(tc.query))
			if err == nil || !strings.HasPrefix(err.Error(), "influxdb: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAuthInfluxd(t *testing.T) {
	srv := influxtest.Start(t, influxtest.Options{Auth: true})
	srv.Exec(t, `CREATE DATABASE "app"`)
	now := time.Now().Truncate(time.Minute)
	srv.Write(t, "app", fmt.Sprintf("http,app=checkout,track=canary latency=5 %d\n", now.Add(-90*time.Second).UnixMilli()))
	q := metrics.Query{Text: fmt.Sprintf(perTrack, "canary"), Start: now.Add(-5 * time.Minute), End: now, Step: time.Minute}
	pwFile := filepath.Join(t.TempDir(), "pw")
	for _, tc := range []struct {
		name, password, want string
	}{
		{"right password from a file", influxtest.AdminPassword, ""},
		{"wrong password", "not-the-password", "HTTP 401: authorization failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(pwFile, []byte(tc.password), 0o600); err != nil {
				t.Fatal(err)
			}
			p := newProvider(t, srv.URL, func(c *influxdb.Config) {
				c.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: influxtest.AdminUser, PasswordFile: pwFile}
			})
			s, err := p.Query(t.Context(), q)
			if tc.want == "" {
				if err != nil || s.Len() != 1 || s.Streams[0].Points[0].V != 5 {
					t.Fatalf("%+v, %v; want the one point", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.password) {
				t.Fatalf("the password is in the error: %v", err)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		_, err := newProvider(t, srv.URL, nil).Query(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("err = %v, want HTTP 401", err)
		}
	})
}

func TestServerDown(t *testing.T) {
	p := newProvider(t, fmt.Sprintf("http://127.0.0.1:%d", influxtest.FreePort(t)), func(c *influxdb.Config) { c.Retries = 1 })
	now := time.Now()
	_, err := p.Query(t.Context(), metrics.Query{Text: fmt.Sprintf(perTrack, "canary"), Start: now.Add(-time.Minute), End: now, Step: time.Minute})
	if err == nil || !strings.HasPrefix(err.Error(), "influxdb: ") || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "attempts: 2") {
		t.Fatalf("err = %v, want connection refused after 2 attempts", err)
	}
}

func assertPoints(t *testing.T, got, want []metrics.Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d points %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("point %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
