package kayenta

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog"
	"github.com/canaryd/canaryd/metrics/prometheus"
)

var update = flag.Bool("update", false, "rewrite the golden YAML files")

// kinds are the provider kinds the imported YAML names, as the binary registers them.
func kinds() config.Kinds {
	return config.Kinds{Providers: map[string]config.ProviderKind{
		"prometheus": config.ProviderKindOf(prometheus.New, config.RateLimit{QPS: 100, Burst: 200}),
		"datadog": config.ProviderKindOf(func(c datadog.Config, l *zap.Logger) (*datadog.Provider, error) { return datadog.New(c, l) },
			config.RateLimit{QPS: 1, Burst: 1}),
	}}
}

func importFile(t *testing.T, name string) (*Analysis, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Convert(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return a, y
}

// The imported YAML is the golden file, and config.Parse reads it back with the judge
// settings and queries the conversion made.
func TestImportCheckout(t *testing.T) {
	a, y := importFile(t, "checkout.json")
	golden := filepath.Join("testdata", "checkout.yaml")
	if *update {
		if err := os.WriteFile(golden, y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(y, want) {
		t.Errorf("YAML differs from %s (go test ./config/kayenta -update):\n%s", golden, y)
	}
	c, err := config.Parse(y, kinds())
	if err != nil {
		t.Fatalf("config.Parse of the imported YAML: %v\n%s", err, y)
	}
	an := c.Analyses["checkout-canary"]
	if an == nil {
		t.Fatalf("no analysis checkout-canary: %v", c.Analyses)
	}
	if an.Score.Rules != judge.RulesKayenta || an.Score.Pass != 90 || an.Score.Marginal != 70 || an.Score.Unjudged != judge.VerdictFail {
		t.Errorf("score %+v", an.Score)
	}
	// system has no weight: it gets what errors and latency leave of 100.
	if an.Groups["errors"] != 60 || an.Groups["latency"] != 30 || an.Groups["system"] != 10 {
		t.Errorf("groups %v", an.Groups)
	}
	if len(an.Metrics) != 3 {
		t.Fatalf("%d metrics, want 3 (heap's atlas query left out)", len(an.Metrics))
	}
	for i, m := range an.Metrics {
		got, want := m.Spec, a.Metrics[i].Spec
		got.Step, got.Looks = 0, 0
		if !specEqual(got, want) {
			t.Errorf("metric %s: parsed spec\n%+v\nwant the conversion's\n%+v", m.Name, got, want)
		}
	}
	errRate, p99, cpu := an.Metrics[0].Spec, an.Metrics[1].Spec, an.Metrics[2].Spec
	if errRate.Direction != judge.DirectionIncrease || !errRate.Critical || errRate.AllowedIncrease != 1.1 ||
		errRate.CriticalIncrease != 1.5 || errRate.NaNStrategy != judge.NaNZero || errRate.Confidence != 0.98 ||
		errRate.EffectSize != judge.EffectMeanRatio || errRate.Tolerance != 0.25 || errRate.MinPoints != 1 {
		t.Errorf("error rate: %+v", errRate)
	}
	if p99.EffectSize != judge.EffectCLES || p99.AllowedIncrease != 0.8 || p99.AllowedDecrease != 0.5 || !p99.MustHaveData ||
		!p99.RemoveOutliers || !slices.Equal(p99.Groups, []string{"latency", "errors"}) {
		t.Errorf("p99: %+v", p99)
	}
	if !cpu.Muted || cpu.Direction != judge.DirectionEither {
		t.Errorf("cpu: %+v", cpu)
	}
	data := metrics.TemplateData{
		Cohort: map[string]string{"scope": "checkout-v2", "location": "us-east-1"},
		Vars:   map[string]string{"namespace": "shop"},
	}
	for _, tc := range []struct{ metric, want string }{
		{"error-rate", `sum(rate(http_requests_total{app="checkout",version="checkout-v2",code=~"5.."}[1m])) / sum(rate(http_requests_total{app="checkout",version="checkout-v2"}[1m]))`},
		{"p99-latency", `avg(http_request_duration_seconds{app='checkout', version="checkout-v2", region="us-east-1", ns="shop",quantile="0.99"}) by (instance)`},
		{"cpu", `avg(process_cpu_seconds_total{asg_groupName="checkout-v2",zone=~"us-east-1.{1}"}) by (instance)`},
	} {
		i := slices.IndexFunc(an.Metrics, func(m config.Metric) bool { return m.Name == tc.metric })
		if i < 0 {
			t.Errorf("no metric %s", tc.metric)
			continue
		}
		q, err := an.Metrics[i].Template.Render(data)
		if err != nil || q != tc.want {
			t.Errorf("%s renders %q (%v), want %q", tc.metric, q, err, tc.want)
		}
	}
	for _, want := range []string{
		`renamed from "checkout canary"`,
		"applications checkout not carried over",
		"analysisConfigurations.canary.lookback not carried over",
		`left out: metric "heap": query type "atlas": canaryd has no provider for it`,
		`its Kayenta query: {"type":"atlas","q":"name,jvm.gc.heap,:eq,:max"}`,
		`group "system" has no weight in classifier.groupWeights: 10`,
	} {
		if !strings.Contains(string(y), want) {
			t.Errorf("YAML has no comment %q", want)
		}
	}
}

func specEqual(a, b judge.MetricSpec) bool { return reflect.DeepEqual(a, b) }

// Names, templates and values that would break YAML or a Go template come out as data.
func TestImportHostileText(t *testing.T) {
	src := `{"name": "a\nb: {{x}}", "metrics": [{"name": "m\"\n- name: evil", "groups": ["g\n#"],
	  "query": {"type": "prometheus", "customInlineTemplate": "PromQL:x{a=\"{{ .Vars.y }}\"} or y{b=\"${scope}\"}}}"},
	  "analysisConfigurations": {"canary": {"direction": "sideways\n- x"}}}]}`
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Convert(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.YAML()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(y, kinds())
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, y)
	}
	an := cfg.Analyses["a-b----x--"]
	if an == nil || len(an.Metrics) != 1 || an.Metrics[0].Name != "m----name--evil" {
		t.Fatalf("analyses %v\n%s", cfg.Analyses, y)
	}
	q, err := an.Metrics[0].Template.Render(metrics.TemplateData{Cohort: map[string]string{"scope": "v2"}})
	if want := `x{a="{{ .Vars.y }}"} or y{b="v2"}}}`; err != nil || q != want {
		t.Errorf("query renders %q (%v), want %q", q, err, want)
	}
}

func TestConvertErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"not JSON", `{`, "kayenta canary config: unexpected end of JSON input"},
		{"wrong type", `{"metrics": {}}`, "metrics: a JSON object where Kayenta expects []kayenta.MetricConfig"},
		{"no metrics", `{"name": "x"}`, `kayenta canary config "x": no metrics`},
		{"nothing carried over", `{"name": "x", "metrics": [{"name": "m", "query": {"type": "stackdriver"}}]}`,
			`kayenta canary config "x": no metric could be carried over (m: query type "stackdriver": canaryd has no provider for it`},
		{"judge settings refused", `{"name": "x", "metrics": [{"name": "m", "query": {"type": "prometheus", "customInlineTemplate": "PromQL:up"},
			"analysisConfigurations": {"canary": {"effectSize": {"measure": "cles", "allowedIncrease": 2}}}}]}`,
			"m: judge settings refused: allowed_increase: must be in [0, 1] (a share of pairs) with effect_size cles"},
		{"a bad number", `{"name": "x", "metrics": [{"name": "m", "query": {"type": "prometheus"},
			"analysisConfigurations": {"canary": {"effectSize": {"allowedIncrease": "lots"}}}}]}`,
			`m: analysisConfigurations.canary: "lots" is not a number`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src))
			if err == nil {
				var a *Analysis
				if a, err = Convert(c); err == nil {
					_, err = a.YAML()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzImport: whatever the input, an import that succeeds prints YAML config.Parse
// accepts.
func FuzzImport(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "checkout.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"name":"x","metrics":[{"name":"m","query":{"type":"datadog","metricName":"a.b"},"groups":["g"]}]}`))
	f.Add([]byte(`{"name":"x","metrics":[{"name":"m","query":{"type":"prometheus","customInlineTemplate":"PromQL:a{b=\"$${c}\"}{{"}}]}`))
	k := kinds()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		a, err := Convert(c)
		if err != nil {
			return
		}
		y, err := a.YAML()
		if err != nil {
			return
		}
		if _, err := config.Parse(y, k); err != nil {
			t.Fatalf("config.Parse of the import: %v\n%s", err, y)
		}
	})
}

// The same config imports to the same bytes, whatever Go's map order.
func TestImportDeterministic(t *testing.T) {
	src := `{"name": "x", "classifier": {"groupWeights": {"a": 0, "b": -1, "c": 0, "d": 50}},
	  "metrics": [{"name": "m", "groups": ["d"], "query": {"type": "prometheus", "customInlineTemplate": "PromQL:up"},
	    "analysisConfigurations": {"zeta": {}, "alpha": {}, "canary": {"k1": 1, "k2": 2, "k3": 3, "effectSize": {"e1": 1, "e2": 2}}}}]}`
	var first []byte
	for i := range 20 {
		c, err := Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		a, err := Convert(c)
		if err != nil {
			t.Fatal(err)
		}
		y, err := a.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = y
		} else if !bytes.Equal(y, first) {
			t.Fatalf("import %d differs:\n%s\nfrom:\n%s", i, y, first)
		}
	}
}
