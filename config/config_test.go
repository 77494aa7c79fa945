package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/judge"
)

const base = `
providers:
  prom: {type: prometheus, address: "http://127.0.0.1:9090"}
actuators:
  notify: {type: webhook, url: "http://127.0.0.1:9999/hook"}
analyses:
  golden-signals:
    provider: prom
    lifetime: 30m
    groups: {errors: 60, latency: 40}
    on_fail: [notify]
    metrics:
      - name: error-rate
        group: errors
        query: 'sum(rate(x{track="{{ .Cohort.track }}"}[1m]))'
        judge: {type: mannwhitney, critical: true}
      - name: p99
        group: latency
        query: 'p99{track="{{ .Cohort.track }}"}'
        judge: {type: ratio, max: 1.5, for: 10m}
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(base), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Server, DefaultServer()) || c.Scheduler != DefaultScheduler() {
		t.Errorf("defaults: got %+v %+v", c.Server, c.Scheduler)
	}
	a := c.Analyses["golden-signals"]
	if a.Interval != time.Minute || a.Step != 15*time.Second || a.Lifetime != 30*time.Minute || a.Warmup != 0 {
		t.Errorf("analysis durations: %+v", a)
	}
	if a.Score != (judge.Thresholds{Pass: 95, Marginal: 75, Rules: judge.RulesCanaryd, Unjudged: judge.VerdictUnjudged}) {
		t.Errorf("score: %+v", a.Score)
	}
	m0 := a.Metrics[0].Spec
	if m0.Kind != judge.KindMannWhitney || m0.Direction != judge.DirectionIncrease || m0.Confidence != 0.95 ||
		m0.AllowedIncrease != 1 || m0.AllowedDecrease != 1 || m0.NaNStrategy != judge.NaNRemove ||
		m0.OutlierFactor != 3 || !m0.Critical || m0.Step != 15*time.Second || m0.Group != "errors" {
		t.Errorf("metric 0 spec: %+v", m0)
	}
	m1 := a.Metrics[1].Spec
	if m1.Kind != judge.KindRatio || m1.Max == nil || *m1.Max != 1.5 || m1.Min != nil || m1.For != 10*time.Minute {
		t.Errorf("metric 1 spec: %+v", m1)
	}
	q, err := a.Metrics[0].Template.Render(templateData("canary"))
	if err != nil || q != `sum(rate(x{track="canary"}[1m]))` {
		t.Errorf("render: %q %v", q, err)
	}
	// The snapshot reads back to the same analysis.
	b, err := ParseAnalysis(a.Name, a.Source)
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != a.Hash || len(b.Metrics) != 2 || b.Metrics[1].Spec.For != 10*time.Minute {
		t.Errorf("ParseAnalysis: %+v", b)
	}
}

// The score rules and what an unjudged critical metric ends as: the defaults of each
// rule set and the explicit choice.
func TestParseRecovery(t *testing.T) {
	cases := []struct {
		name  string
		block string
		want  *Recovery
	}{
		{name: "none", block: "", want: nil},
		{name: "defaults to the critical metrics", block: "recovery: {within: 5m}", want: &Recovery{Within: 5 * time.Minute, Metrics: []string{"error-rate"}}},
		{name: "listed", block: "recovery: {within: 90s, metrics: [p99, error-rate]}", want: &Recovery{Within: 90 * time.Second, Metrics: []string{"p99", "error-rate"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(base, "on_fail: [notify]", "on_fail: [notify]\n    on_not_recovered: [notify]\n    "+tc.block, 1)), testKinds())
			if tc.want == nil {
				if err == nil {
					t.Fatal("on_not_recovered without recovery was accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := c.Analyses["golden-signals"]
			if !reflect.DeepEqual(a.Recovery, tc.want) {
				t.Errorf("recovery %+v, want %+v", a.Recovery, tc.want)
			}
			if !reflect.DeepEqual(a.OnNotRecovered, []string{"notify"}) {
				t.Errorf("on_not_recovered %v", a.OnNotRecovered)
			}
			// The snapshot a canary keeps reads back the same block.
			b, err := ParseAnalysis(a.Name, a.Source)
			if err != nil || !reflect.DeepEqual(b.Recovery, tc.want) {
				t.Errorf("snapshot recovery %+v (%v), want %+v", b.Recovery, err, tc.want)
			}
		})
	}
}

func TestParseScoreRules(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       judge.Thresholds
	}{
		{"default", "", judge.Thresholds{Pass: 95, Marginal: 75, Rules: judge.RulesCanaryd, Unjudged: judge.VerdictUnjudged}},
		{"unjudged fails", "    unjudged_critical: fail\n", judge.Thresholds{Pass: 95, Marginal: 75, Rules: judge.RulesCanaryd, Unjudged: judge.VerdictFail}},
		{"kayenta", "    score: {rules: kayenta, pass: 90}\n", judge.Thresholds{Pass: 90, Marginal: 75, Rules: judge.RulesKayenta, Unjudged: judge.VerdictFail}},
		{"kayenta, unjudged as error", "    score: {rules: kayenta}\n    unjudged_critical: error\n", judge.Thresholds{Pass: 95, Marginal: 75, Rules: judge.RulesKayenta, Unjudged: judge.VerdictUnjudged}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(base, "lifetime: 30m\n", "lifetime: 30m\n"+tc.yaml, 1)), testKinds())
			if err != nil {
				t.Fatal(err)
			}
			a := c.Analyses["golden-signals"]
			if a.Score != tc.want {
				t.Errorf("score %+v, want %+v", a.Score, tc.want)
			}
			// A canary's snapshot reads back with the same rules.
			b, err := ParseAnalysis(a.Name, a.Source)
			if err != nil || b.Score != tc.want {
				t.Errorf("snapshot: %+v %v", b, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		repl []string // old, new pairs applied to base
		want []string // every error, in order
	}{
		{
			name: "ratio max not positive",
			repl: []string{"judge: {type: ratio, max: 1.5, for: 10m}", "judge: {type: ratio, max: -1, for: 10m}"},
			want: []string{"analyses.golden-signals.metrics[p99].judge.max: must be > 0"},
		},
		{
			name: "every error reported",
			repl: []string{"judge: {type: ratio, max: 1.5, for: 10m}", "judge: {type: ratio, max: 0, outlier_factor: 0, confidence: 2}", "lifetime: 30m", "lifetime: 10s"},
			want: []string{
				"analyses.golden-signals.lifetime: must be >= interval (1m0s)",
				"analyses.golden-signals.metrics[p99].judge.confidence: must be in (0, 1)",
				"analyses.golden-signals.metrics[p99].judge.outlier_factor: must be > 0",
				"analyses.golden-signals.metrics[p99].judge.max: must be > 0",
			},
		},
		{
			name: "unknown key in judge",
			repl: []string{"judge: {type: mannwhitney, critical: true}", "judge: {type: mannwhitney, critcal: true}"},
			want: []string{`analyses.golden-signals.metrics[error-rate].judge: unknown field "critcal" (did you mean "critical"?)`},
		},
		{
			name: "recovery window shorter than one interval",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    recovery: {within: 30s}"},
			want: []string{"analyses.golden-signals.recovery.within: 30s is shorter than one interval (1m): the service would never be judged"},
		},
		{
			name: "recovery window longer than max_lifetime",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    recovery: {within: 2d}"},
			want: []string{"analyses.golden-signals.recovery.within: 2d is longer than server.max_lifetime (1d)"},
		},
		{
			name: "recovery without a window",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    recovery: {metrics: [error-rate]}"},
			want: []string{"analyses.golden-signals.recovery.within: required, must be > 0"},
		},
		{
			name: "recovery metric not in the analysis",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    recovery: {within: 5m, metrics: [error-rate, p999, error-rate]}"},
			want: []string{
				`analyses.golden-signals.recovery.metrics[1]: "p999" is not a metric of the analysis`,
				`analyses.golden-signals.recovery.metrics[2]: "error-rate" listed twice`,
			},
		},
		{
			name: "recovery with nothing to default to",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    recovery: {within: 5m}", "judge: {type: mannwhitney, critical: true}", "judge: {type: mannwhitney}"},
			want: []string{"analyses.golden-signals.recovery.metrics: none given, and the analysis has no critical mannwhitney, threshold, ratio or counts metric to default to: list the metrics to watch"},
		},
		{
			name: "on_not_recovered without recovery",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    on_not_recovered: [notify]"},
			want: []string{"analyses.golden-signals.on_not_recovered: needs a recovery block: nothing is watched without one"},
		},
		{
			name: "on_not_recovered unknown actuator",
			repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    recovery: {within: 5m}\n    on_not_recovered: [pager]"},
			want: []string{`analyses.golden-signals.on_not_recovered[0]: unknown actuator "pager"`},
		},
		{
			name: "unknown top-level key",
			repl: []string{"providers:", "provider: {}\nproviders:"},
			want: []string{`unknown field "provider" (did you mean "providers"?)`},
		},
		{
			name: "wrong type",
			repl: []string{"groups: {errors: 60, latency: 40}", "groups: [errors]"},
			want: []string{"analyses.golden-signals.groups: cannot unmarshal !!seq into map[string]float64"},
		},
		{
			name: "template syntax",
			repl: []string{`query: 'p99{track="{{ .Cohort.track }}"}'`, `query: 'p99{track="{{ .Cohort.track }"}'`},
			want: []string{`analyses.golden-signals.metrics[p99].query: parse query template: template: p99:1: unexpected "}" in operand`},
		},
		{
			name: "unknown refs",
			repl: []string{"provider: prom\n", "provider: thanos\n    on_pass: [nope]\n    on_start: [notify, annotate]\n"},
			want: []string{
				`analyses.golden-signals.provider: unknown provider "thanos"`,
				`analyses.golden-signals.on_start[1]: unknown actuator "annotate"`,
				`analyses.golden-signals.on_pass[0]: unknown actuator "nope"`,
			},
		},
		{
			name: "unknown provider and actuator types",
			repl: []string{"type: webhook", "type: email"},
			want: []string{
				`actuators.notify.type: unknown actuator type "email", want one of [slack webhook]`,
				`analyses.golden-signals.on_fail[0]: unknown actuator "notify"`,
			},
		},
		{
			name: "provider config error",
			repl: []string{`address: "http://127.0.0.1:9090"`, `address: "ftp://x"`},
			want: []string{
				`providers.prom.address: scheme must be http or https`,
				`analyses.golden-signals.provider: unknown provider "prom"`,
			},
		},
		{
			name: "group not declared",
			repl: []string{"group: latency", "group: saturation"},
			want: []string{`analyses.golden-signals.metrics[p99].group: "saturation" is not in the analysis' groups`},
		},
		{
			name: "threshold without bounds, mannwhitney with bounds",
			repl: []string{"judge: {type: ratio, max: 1.5, for: 10m}", "judge: {type: threshold}\n      - {name: m3, group: errors, query: q, judge: {max: 1}}"},
			want: []string{
				"analyses.golden-signals.metrics[p99].judge: a threshold judge needs min, max or both",
				"analyses.golden-signals.metrics[m3].judge.max: only for threshold and ratio judges",
			},
		},
		{
			name: "unknown score rules and unjudged outcome",
			repl: []string{"lifetime: 30m\n", "lifetime: 30m\n    score: {rules: netflix}\n    unjudged_critical: pass\n"},
			want: []string{
				"analyses.golden-signals.score.rules: unknown rules \"netflix\", want one of [canaryd kayenta]",
				"analyses.golden-signals.unjudged_critical: unknown outcome \"pass\", want error or fail",
			},
		},
		{
			name: "threshold min above max",
			repl: []string{"judge: {type: ratio, max: 1.5, for: 10m}", "judge: {type: threshold, min: 2, max: 1, for: 10m}"},
			want: []string{"analyses.golden-signals.metrics[p99].judge.min: must be <= max (1)"},
		},
		{
			name: "window for longer than the lifetime",
			repl: []string{"lifetime: 30m", "lifetime: 30m\n    warmup: 25m"},
			want: []string{"analyses.golden-signals.metrics[p99].judge.for: 10m is longer than the judged part of a canary (lifetime 30m − warmup 25m): the metric could never fail"},
		},
		{
			name: "duplicate metric",
			repl: []string{"name: p99", "name: error-rate"},
			want: []string{`analyses.golden-signals.metrics[1].name: "error-rate" already used by metrics[0]`},
		},
		{
			name: "route tokens name an integration and a token",
			repl: []string{"providers:", "server:\n  auth:\n    tokens: [{name: flagger, sha256: \"" + strings.Repeat("ab", 32) + "\", roles: [read, register]}]\n    route_tokens: {flagger: flager, argo: flagger}\nproviders:"},
			want: []string{
				`server.auth.route_tokens.argo: unknown integration "argo", want one of [flagger kayenta]`,
				`server.auth.route_tokens.flagger: no token named "flager" in tokens`,
			},
		},
		{
			name: "scheduler bounds",
			repl: []string{"providers:", "scheduler: {workers: 0, max_consecutive_errors: -1}\nserver: {listen: nope}\nproviders:"},
			want: []string{
				"server.listen: must be host:port: address nope: missing port in address",
				"scheduler.workers: must be > 0",
				"scheduler.max_consecutive_errors: must be > 0",
			},
		},
		{
			name: "lease too short",
			repl: []string{"providers:", "scheduler: {lease: 500ms}\nproviders:"},
			want: []string{"scheduler.lease: 500ms must be between 1s and 10m (renewed every third of it; a dead replica's canaries wait that long)"},
		},
		{
			name: "lease too long",
			repl: []string{"providers:", "scheduler: {lease: 1h}\nproviders:"},
			want: []string{"scheduler.lease: 1h0m0s must be between 1s and 10m (renewed every third of it; a dead replica's canaries wait that long)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < len(tc.repl); i += 2 {
				if !strings.Contains(base, tc.repl[i]) {
					t.Fatalf("base has no %q", tc.repl[i])
				}
			}
			_, err := Parse([]byte(strings.NewReplacer(tc.repl...).Replace(base)), testKinds())
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %v", err)
			}
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = e.Error()
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"), testKinds())
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("want ErrNotExist, got %v", err)
	}
}

// FuzzParse checks that no input makes the loader panic, and that whatever it accepts has
// analyses that read back from their snapshot.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if b, err := os.ReadFile("../configs/golden-signals.yml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, testKinds())
		if err != nil {
			return
		}
		for name, a := range c.Analyses {
			if _, err := ParseAnalysis(name, a.Source); err != nil {
				t.Fatalf("analysis %s does not read back: %v", name, err)
			}
		}
	})
}

func TestLimits(t *testing.T) {
	var many strings.Builder
	many.WriteString("analyses:\n  big:\n    provider: p\n    metrics:\n")
	for i := 0; i <= MaxMetricsPerAnalysis; i++ {
		fmt.Fprintf(&many, "      - {name: m%d, query: q, judge: {type: mannwhitney}}\n", i)
	}
	cases := []struct{ yaml, want string }{
		{"providers: {p: {type: prometheus, address: 'http://x'}}\n" + many.String(), "analyses.big.metrics: 101 metrics, at most 100"},
		{"server: {max_lifetime: 1h}\nproviders: {p: {type: prometheus, address: 'http://x'}}\nanalyses: {a: {provider: p, lifetime: 2h, metrics: [{name: m, query: q}]}}", "analyses.a.lifetime: 2h is longer than server.max_lifetime (1h)"},
		{"server: {max_body_bytes: 10}\nanalyses: {}", "server.max_body_bytes: must be between 1024 and 16777216"},
		{"server: {max_running_per_analysis: 0}\nanalyses: {}", "server.max_running_per_analysis: must be > 0"},
		{"server: {trusted_origins: ['https://grafana.example', 'grafana.example']}\nanalyses: {}", "server.trusted_origins[1]: \"grafana.example\" is not an origin"},
		{"server: {trusted_origins: ['https://grafana.example/d/abc']}\nanalyses: {}", "server.trusted_origins[0]: \"https://grafana.example/d/abc\" is not an origin"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml), testKinds())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// A window judge's min may equal its max (an "exactly" bound); config and judge agree,
// since the judge's Validate is the only rule.
func TestParseExactBound(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(base, "judge: {type: ratio, max: 1.5, for: 10m}", "judge: {type: threshold, min: 1, max: 1, for: 1m}", 1)), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	s := c.Analyses["golden-signals"].Metrics[1].Spec
	if *s.Min != 1 || *s.Max != 1 || s.Validate() != nil {
		t.Errorf("spec %+v: %v", s, s.Validate())
	}
}

// server.storage is a bbolt file's path or a PostgreSQL URL; another URL is refused
// without quoting it (it may hold a password).
func TestStorage(t *testing.T) {
	cases := []struct{ name, storage, want string }{
		{"path", "data/canaryd.db", ""},
		{"postgres URL", "postgres://canaryd:pw@db.example:5432/canaryd?sslmode=require", ""},
		{"postgresql URL", "postgresql://canaryd@127.0.0.1/canaryd", ""},
		{"socket directory as host parameter", "postgres:///canaryd?host=/run/postgresql", ""},
		{"other scheme", "mysql://canaryd:hunter2@db/canaryd", "server.storage: a URL must be postgres://"},
		{"no host", "postgres:///canaryd?password=hunter2", "server.storage: not a valid postgres://"},
		{"bad escape", "postgres://u:hunter2%zz@db/canaryd", "server.storage: not a valid postgres://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(fmt.Sprintf("server: {storage: %q}\nanalyses: {}", tc.storage)), testKinds())
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tc.want == "" && (cfg.Server.Storage != tc.storage || cfg.Server.ActuationStore != ""):
				t.Errorf("storage %q, actuation store %q", cfg.Server.Storage, cfg.Server.ActuationStore)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
}
