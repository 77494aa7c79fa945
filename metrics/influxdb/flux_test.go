package influxdb_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/influxdb"
	"github.com/canaryd/canaryd/metrics/influxdb/influxtest"
)

// These tests run Flux on a real InfluxDB: 1.8 with flux-enabled (influxtest.FluxBinary
// builds it from the module proxy), which serves /api/v2/query as 2.x does and takes the
// 2.x client with the token "user:password" and the bucket "db/rp". What 1.8 answers
// differently from 2.x (errors as {"error"} with HTTP 500, where 2.x answers 400 with
// {"code", "message"}) is in flux_api_test.go, against a loopback server shaped as 2.x's
// documented API.

func newFlux(t *testing.T, url string, mod func(*influxdb.Config)) *influxdb.Provider {
	t.Helper()
	cfg := influxdb.DefaultConfig()
	cfg.Address, cfg.Language, cfg.Org, cfg.Retries = url, influxdb.LanguageFlux, "canaryd", 0
	if mod != nil {
		mod(&cfg)
	}
	p, err := influxdb.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fluxPerTrack is the mean latency per step of one track, as the README writes it.
const fluxPerTrack = `from(bucket: "app/autogen")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "http" and r._field == "latency" and r.app == "checkout" and r.track == "%s")
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)`

func TestFluxInfluxd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd 1.8 (built once from the module proxy)")
	}
	srv := influxtest.Start(t, influxtest.Options{Flux: true})
	srv.Exec(t, `CREATE DATABASE "app"`)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// Two points a minute per track (at +10s and +40s), so mean() has something to do.
	stable := [][2]float64{{10, 20}, {12, 14}, {11, 11}, {13, 15}, {9, 7}}
	canary := [][2]float64{{30, 40}, {31, 33}, {29, 29}, {35, 37}, {28, 26}}
	var lines strings.Builder
	for i := range stable {
		m := base.Add(time.Duration(i) * time.Minute)
		for track, vs := range map[string][2]float64{"stable": stable[i], "canary": canary[i]} {
			fmt.Fprintf(&lines, "http,app=checkout,track=%s latency=%g,requests=%di,code=\"200\" %d\n", track, vs[0], 10+i, m.Add(10*time.Second).UnixMilli())
			fmt.Fprintf(&lines, "http,app=checkout,track=%s latency=%g,requests=%di,code=\"200\" %d\n", track, vs[1], 20+i, m.Add(40*time.Second).UnixMilli())
		}
	}
	srv.Write(t, "app", lines.String())
	p := newFlux(t, srv.URL, nil)
	// The window's points are at start … end, each over the minute that ends there.
	window := func(text string) metrics.Query {
		return metrics.Query{Text: text, Start: base.Add(time.Minute), End: base.Add(5 * time.Minute), Step: time.Minute}
	}
	means := func(vs [][2]float64) []metrics.Point {
		var ps []metrics.Point
		for i, v := range vs {
			ps = append(ps, metrics.Point{T: base.Add(time.Duration(i+1) * time.Minute).UnixMilli(), V: (v[0] + v[1]) / 2})
		}
		return ps
	}

	t.Run("values, timestamps and the group key as labels", func(t *testing.T) {
		for track, vs := range map[string][][2]float64{"stable": stable, "canary": canary} {
			s, err := p.Query(t.Context(), window(fmt.Sprintf(fluxPerTrack, track)))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Streams) != 1 {
				t.Fatalf("%s: %d streams: %+v", track, len(s.Streams), s.Streams)
			}
			want := map[string]string{"_measurement": "http", "_field": "latency", "app": "checkout", "track": track}
			if l := s.Streams[0].Labels; !maps.Equal(l, want) {
				t.Errorf("%s: labels %v, want %v", track, l, want)
			}
			assertPoints(t, s.Streams[0].Points, means(vs))
		}
	})
	t.Run("one stream per table: group by track, integers", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(`import "strings"
// the requests per step of every track of checkout
from(bucket: "app/autogen")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "http" and r._field == "requests" and strings.hasPrefix(v: r.app, prefix: "check"))
  |> group(columns: ["track"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 2 {
			t.Fatalf("%d streams, want one per track: %+v", len(s.Streams), s.Streams)
		}
		for _, st := range s.Streams {
			if len(st.Labels) != 1 || st.Labels["track"] == "" {
				t.Errorf("labels %v, want the track alone", st.Labels)
			}
			var want []metrics.Point
			for i := range 5 {
				want = append(want, metrics.Point{T: base.Add(time.Duration(i+1) * time.Minute).UnixMilli(), V: float64(30 + 2*i)})
			}
			assertPoints(t, st.Points, want)
		}
	})
	t.Run("a start off the epoch's grid: windows with v.windowOffset end on the canary's steps", func(t *testing.T) {
		q := metrics.Query{Text: for18(strings.Replace(fmt.Sprintf(fluxPerTrack, "canary"), "every: v.windowPeriod,", "every: v.windowPeriod, offset: v.windowOffset,", 1)),
			Start: base.Add(80 * time.Second), End: base.Add(260 * time.Second), Step: time.Minute}
		s, err := p.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 1 {
			t.Fatalf("%d streams: %+v", len(s.Streams), s.Streams)
		}
		// The minute that ends at start+k·step holds minute k's second point (+40s) and
		// minute k+1's first (+10s).
		var want []metrics.Point
		for k := range 4 {
			want = append(want, metrics.Point{T: q.Start.Add(time.Duration(k) * time.Minute).UnixMilli(), V: (canary[k][1] + canary[k+1][0]) / 2})
		}
		assertPoints(t, s.Streams[0].Points, want)
	})
	t.Run("two results: labelled by their yield", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(fmt.Sprintf(fluxPerTrack, "canary")+` |> yield(name: "latency")
`+fmt.Sprintf(fluxPerTrack, "stable")+` |> yield(name: "baseline")`))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 2 {
			t.Fatalf("%d streams: %+v", len(s.Streams), s.Streams)
		}
		got := map[string][]metrics.Point{}
		for _, st := range s.Streams {
			got[st.Labels["result"]] = st.Points
		}
		assertPoints(t, got["latency"], means(canary))
		assertPoints(t, got["baseline"], means(stable))
	})
	t.Run("empty result", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(fmt.Sprintf(fluxPerTrack, "nobody")))
		if err != nil || len(s.Streams) != 0 {
			t.Fatalf("%+v, %v; want no streams", s, err)
		}
	})
	for _, tc := range []struct{ name, query, want string }{
		{"bad query: the server's compile error", strings.Replace(fmt.Sprintf(fluxPerTrack, "canary"), "range(", "rang(", 1), `HTTP 500: type error 2:6-2:10: undefined identifier "rang"`},
		{"unknown bucket: the server's error", strings.Replace(fmt.Sprintf(fluxPerTrack, "canary"), "app/autogen", "nope/autogen", 1), "HTTP 500: failed to initialize execute state: no database"},
		{"no window", `from(bucket: "app/autogen") |> range(start: -1h)`, "query has no v.timeRangeStart"},
		{"wrong shape: no _time", `from(bucket: "app/autogen") |> range(start: v.timeRangeStart, stop: v.timeRangeStop) |> filter(fn: (r) => r._field == "latency") |> sum()`, "a table has no _time column"},
		{"wrong shape: a string _value", `from(bucket: "app/autogen") |> range(start: v.timeRangeStart, stop: v.timeRangeStop) |> filter(fn: (r) => r._field == "code")`, "_value is string: canaryd judges numbers only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Query(t.Context(), window(tc.query))
			if err == nil || !strings.HasPrefix(err.Error(), "influxdb: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error is not one line: %q", err)
			}
		})
	}
}

// TestFluxHostileValues pastes values that would break out of a Flux string into the
// README's filter, escaped as the scheduler escapes them for a Flux provider, and runs
// them on the real server: each still selects exactly the series tagged with the value,
// never the decoy beside it.
func TestFluxHostileValues(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd 1.8 (built once from the module proxy)")
	}
	srv := influxtest.Start(t, influxtest.Options{Flux: true})
	srv.Exec(t, `CREATE DATABASE "app"`)
	at := time.Now().Add(-time.Hour).Truncate(time.Minute)
	hostile := []struct {
		name, value string
		written     bool // a line-protocol tag cannot hold a newline: no series has it
	}{
		{"quote", `canary" or r.track != "`, true},
		{"backslash before the quote", `canary\" or true or "`, true},
		{"interpolation", `${r.track}`, true},
		{"interpolation of a variable", `${v.windowPeriod}`, true},
		{"dollar at the end, brace after", `canary$`, true},
		{"newline", "canary\" or true\n//", false},
	}
	var lines strings.Builder
	fmt.Fprintf(&lines, "http,app=checkout,track=decoy latency=1 %d\n", at.Add(10*time.Second).UnixMilli())
	for i, h := range hostile {
		if h.written {
			fmt.Fprintf(&lines, "http,app=checkout,track=%s latency=%d %d\n", lineTag(h.value), 100+i, at.Add(10*time.Second).UnixMilli())
		}
	}
	srv.Write(t, "app", lines.String())
	p := newFlux(t, srv.URL, nil)
	tpl, err := metrics.ParseQuery("latency", strings.Replace(fluxPerTrack, `"%s"`, `"{{ .Cohort.track }}"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			text, err := tpl.Render(metrics.TemplateData{Cohort: map[string]string{"track": p.EscapeValue(h.value)}})
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Query(t.Context(), metrics.Query{Text: text, Start: at.Add(time.Minute), End: at.Add(time.Minute), Step: time.Minute})
			if err != nil {
				t.Fatalf("%v\nquery:\n%s", err, text)
			}
			if !h.written {
				if len(s.Streams) != 0 {
					t.Fatalf("%+v, want nothing (no series has the value)\nquery:\n%s", s.Streams, text)
				}
				return
			}
			if len(s.Streams) != 1 || s.Streams[0].Labels["track"] != h.value || s.Len() != 1 || s.Streams[0].Points[0].V != float64(100+i) {
				t.Fatalf("%+v, want the one series tagged %q\nquery:\n%s", s.Streams, h.value, text)
			}
		})
	}
	t.Run("a value that ends with $, then a { in the template", func(t *testing.T) {
		tpl, err := metrics.ParseQuery("latency", strings.Replace(fluxPerTrack, `r.track == "%s"`, `r.track + "{x}" == "{{ .Cohort.track }}{x}"`, 1))
		if err != nil {
			t.Fatal(err)
		}
		text, err := tpl.Render(metrics.TemplateData{Cohort: map[string]string{"track": p.EscapeValue("canary$")}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := p.Query(t.Context(), metrics.Query{Text: text, Start: at.Add(time.Minute), End: at.Add(time.Minute), Step: time.Minute})
		if err != nil || len(s.Streams) != 1 || s.Streams[0].Labels["track"] != "canary$" {
			t.Fatalf("%+v, %v; want the series tagged canary$\nquery:\n%s", s.Streams, err, text)
		}
	})
}

// aggregateWindowOffset is aggregateWindow with the offset and createEmpty: false, as the
// README writes it for InfluxDB 2.x.
var aggregateWindowOffset = regexp.MustCompile(`aggregateWindow\(every: v\.windowPeriod, offset: v\.windowOffset, fn: (\w+), createEmpty: false\)`)

// for18 writes aggregateWindow's offset the way InfluxDB 1.8's Flux (0.65) can run it:
// its aggregateWindow has no offset, so the script spells out what aggregateWindow is
// there (window, the aggregate, the window's stop as _time, one window again), with the
// offset on window, which takes it.
func for18(script string) string {
	return aggregateWindowOffset.ReplaceAllString(script, `window(every: v.windowPeriod, offset: v.windowOffset) |> $1() |> duplicate(column: "_stop", as: "_time") |> window(every: inf)`)
}

// lineTag escapes a tag value for line protocol.
func lineTag(v string) string {
	return strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `).Replace(v)
}

func TestFluxAuthInfluxd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd 1.8 (built once from the module proxy)")
	}
	srv := influxtest.Start(t, influxtest.Options{Flux: true, Auth: true})
	srv.Exec(t, `CREATE DATABASE "app"`)
	now := time.Now().Truncate(time.Minute)
	srv.Write(t, "app", fmt.Sprintf("http,app=checkout,track=canary latency=5 %d\n", now.Add(-90*time.Second).UnixMilli()))
	q := metrics.Query{Text: fmt.Sprintf(fluxPerTrack, "canary"), Start: now.Add(-4 * time.Minute), End: now, Step: time.Minute}
	tokenFile := filepath.Join(t.TempDir(), "token")
	right := influxtest.AdminUser + ":" + influxtest.AdminPassword
	for _, tc := range []struct {
		name, token, want string
		mod               func(*influxdb.Config)
	}{
		{"token_file: user:password", right, "", func(c *influxdb.Config) { c.TokenFile = tokenFile }},
		{"token_env", right, "", func(c *influxdb.Config) { c.TokenEnv = "CANARYD_TEST_INFLUX_TOKEN" }},
		{"wrong password", influxtest.AdminUser + ":not-the-password", "HTTP 401: Unauthorized (check token, token_file or token_env)", func(c *influxdb.Config) { c.TokenFile = tokenFile }},
		{"no token", "", "HTTP 401", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(tokenFile, []byte(tc.token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("CANARYD_TEST_INFLUX_TOKEN", tc.token)
			s, err := newFlux(t, srv.URL, tc.mod).Query(t.Context(), q)
			if tc.want == "" {
				if err != nil || s.Len() != 1 || s.Streams[0].Points[0].V != 5 {
					t.Fatalf("%+v, %v; want the one point", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Fatalf("the token is in the error: %v", err)
			}
		})
	}
}

// TestFluxExampleConfig runs the queries of configs/influxdb-flux.yml (the README's Flux
// examples) on the real server, over data shaped as that file says: each golden signal
// reads what its judge expects.
func TestFluxExampleConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd 1.8 (built once from the module proxy)")
	}
	b, err := os.ReadFile("../../configs/influxdb-flux.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Analyses map[string]struct {
			Metrics []struct {
				Name, Query   string
				RequestsQuery string `yaml:"requests_query"`
			}
		}
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	for _, m := range file.Analyses["golden-signals"].Metrics {
		queries[m.Name] = m.Query
		if m.RequestsQuery != "" {
			queries[m.Name+"/requests"] = m.RequestsQuery
		}
	}
	srv := influxtest.Start(t, influxtest.Options{Flux: true})
	srv.Exec(t, `CREATE DATABASE "telegraf"`)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var lines strings.Builder
	for i := range 3 {
		for _, s := range []int{10, 40} { // two flushes a minute, two hosts
			at := base.Add(time.Duration(i)*time.Minute + time.Duration(s)*time.Second).UnixMilli()
			for _, host := range []string{"a", "b"} {
				for _, track := range []string{"canary", "stable"} {
					fmt.Fprintf(&lines, "http_requests,app=web,track=%s,host=%s count=%di,errors=%di %d\n", track, host, 100+i, i, at)
					for le, n := range map[string]int{"0.1": 50, "0.5": 90, "+Inf": 100} {
						fmt.Fprintf(&lines, "http_request_duration_seconds,app=web,track=%s,host=%s,le=%s count=%di %d\n", track, host, le, n, at)
					}
					fmt.Fprintf(&lines, "cpu,app=web,track=%s,host=%s usage_percent=%d %d\n", track, host, 40+i, at)
				}
			}
		}
	}
	srv.Write(t, "telegraf", lines.String())
	p := newFlux(t, srv.URL, nil)
	step := func(i int) int64 { return base.Add(time.Duration(i+1) * time.Minute).UnixMilli() }
	series := func(f func(i int) float64) []metrics.Point {
		var ps []metrics.Point
		for i := range 3 {
			ps = append(ps, metrics.Point{T: step(i), V: f(i)})
		}
		return ps
	}
	for _, tc := range []struct {
		metric string
		want   map[string][]metrics.Point // by the stream's le, "" for one stream
	}{
		{"error-rate", map[string][]metrics.Point{"": series(func(i int) float64 { return float64(4 * i) })}},
		{"error-rate/requests", map[string][]metrics.Point{"": series(func(i int) float64 { return float64(4 * (100 + i)) })}},
		{"latency", map[string][]metrics.Point{
			"0.1": series(func(int) float64 { return 200 }), "0.5": series(func(int) float64 { return 360 }), "+Inf": series(func(int) float64 { return 400 }),
		}},
		{"cpu", map[string][]metrics.Point{"a": series(func(i int) float64 { return float64(40 + i) }), "b": series(func(i int) float64 { return float64(40 + i) })}},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			tpl, err := metrics.ParseQuery(tc.metric, for18(queries[tc.metric]))
			if err != nil {
				t.Fatal(err)
			}
			text, err := tpl.Render(metrics.TemplateData{Cohort: map[string]string{"track": "canary"}, Vars: map[string]string{"app": "web"}})
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Query(t.Context(), metrics.Query{Text: text, Start: base.Add(time.Minute), End: base.Add(3 * time.Minute), Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Streams) != len(tc.want) {
				t.Fatalf("%d streams %+v, want %d", len(s.Streams), s.Streams, len(tc.want))
			}
			for _, st := range s.Streams {
				key := st.Labels["le"]
				if tc.metric == "cpu" {
					key = st.Labels["host"]
				}
				if _, ok := tc.want[key]; !ok {
					t.Fatalf("stream %v: not wanted", st.Labels)
				}
				assertPoints(t, st.Points, tc.want[key])
			}
		})
	}
}
