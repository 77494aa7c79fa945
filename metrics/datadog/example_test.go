package datadog

import (
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// configs/datadog.yml does what its comment and the README say: one canary interval
// (4 queries per cohort) is one V2 request of 4 queries, each metric's cohorts merged,
// and each cohort gets its own series back.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../configs/datadog.yml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := config.Kinds{Providers: map[string]config.ProviderKind{
		"datadog": config.ProviderKindOf(func(c Config, l *zap.Logger) (*Provider, error) { return New(c, l) }, config.RateLimit{}),
	}}
	conf, err := config.Parse(b, kinds)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Providers map[string]Config `yaml:"providers"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	dd := newBudgetDatadog(t, s.clock, 1600, time.Hour)
	dd.evaluate = true
	p := newBudgetProvider(t, dd, s, func(c *Config) {
		site := c.APIURL
		*c = file.Providers["dd"]
		c.APIURL, c.APIKeyEnv, c.AppKeyEnv = site, testAPIKeyEnv, testAppKeyEnv
	})
	a := conf.Analyses["golden-signals"]
	var qs []metrics.Query
	for _, m := range a.Metrics {
		for _, tpl := range m.Templates() {
			for _, track := range []string{"baseline", "canary"} {
				text, err := tpl.Render(metrics.TemplateData{Cohort: map[string]string{"track": track}, Vars: map[string]string{"app": "checkout"}})
				if err != nil {
					t.Fatal(err)
				}
				qs = append(qs, metrics.Query{Text: text, Start: testStart, End: testEnd, Step: time.Duration(a.Step)})
			}
		}
	}
	res := p.QueryBatch(t.Context(), qs)
	if sent, _ := dd.counts(); sent != 1 || dd.queries != 4 {
		t.Errorf("%d requests of %d queries for %d, want 1 of 4", sent, dd.queries, len(qs))
	}
	for i, r := range res {
		track := []string{"baseline", "canary"}[i%2]
		if r.Err != nil || len(r.Series.Streams) != 1 || r.Series.Streams[0].Labels["track"] != track {
			t.Errorf("%s: %v, %+v, want one stream of track:%s", qs[i].Text, r.Err, r.Series.Streams, track)
		}
	}
}
