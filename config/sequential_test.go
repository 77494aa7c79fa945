package config

import (
	"strings"
	"testing"

	"github.com/canaryd/canaryd/judge"
)

const seqBase = `
providers:
  prom: {type: prometheus, address: "http://127.0.0.1:9090"}
analyses:
  seq:
    provider: prom
    lifetime: 30m
    warmup: 2m
    metrics:
      - name: error-rate
        query: 'sum(increase(x{track="{{ .Cohort.track }}",code=~"5.."}[15s]))'
        requests_query: 'sum(increase(x{track="{{ .Cohort.track }}"}[15s]))'
        judge: {type: counts, alpha: 0.005, allowed_increase: 1.2, critical: true}
      - name: latency
        query: 'sum by (le) (increase(h_bucket{track="{{ .Cohort.track }}"}[15s]))'
        judge: {type: histogram}
`

func TestParseSequential(t *testing.T) {
	c, err := Parse([]byte(seqBase), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	a := c.Analyses["seq"]
	e, l := a.Metrics[0], a.Metrics[1]
	// (30m lifetime − 2m warmup) / 15s = 112 steps.
	if e.Spec.Kind != judge.KindCounts || e.Spec.Alpha != 0.005 || e.Spec.Horizon != 112 || e.Spec.AllowedIncrease != 1.2 {
		t.Errorf("counts spec: %+v", e.Spec)
	}
	if e.RequestsTemplate == nil || len(e.Templates()) != 2 {
		t.Fatalf("counts: requests_query not parsed: %+v", e)
	}
	if got, _ := e.RequestsTemplate.Render(templateData("canary")); got != `sum(increase(x{track="canary"}[15s]))` {
		t.Errorf("requests_query renders %q", got)
	}
	// alpha left out is the judge's default.
	if l.Spec.Kind != judge.KindHistogram || l.Spec.Alpha != judge.DefaultAlpha || l.Spec.Horizon != 112 || len(l.Templates()) != 1 {
		t.Errorf("histogram spec: %+v (%d templates)", l.Spec, len(l.Templates()))
	}
}

func TestParseSequentialErrors(t *testing.T) {
	const p = "analyses.seq.metrics"
	cases := []struct {
		name string
		repl []string
		want []string
	}{
		{
			name: "counts without requests_query",
			repl: []string{"        requests_query: 'sum(increase(x{track=\"{{ .Cohort.track }}\"}[15s]))'\n", ""},
			want: []string{p + "[error-rate].requests_query: required for a counts judge (query is the errors per step, requests_query the requests per step)"},
		},
		{
			name: "requests_query on another judge",
			repl: []string{"judge: {type: histogram}", "requests_query: 'y'\n        judge: {type: histogram}"},
			want: []string{p + "[latency].requests_query: only for a counts judge"},
		},
		{
			name: "alpha out of range",
			repl: []string{"alpha: 0.005", "alpha: 0.7"},
			want: []string{p + "[error-rate].judge.alpha: must be in (0, 0.5]"},
		},
		{
			name: "alpha on mannwhitney",
			repl: []string{"judge: {type: histogram}", "judge: {type: mannwhitney, alpha: 0.01}"},
			want: []string{p + "[latency].judge.alpha: only for counts and histogram judges (mannwhitney uses confidence)"},
		},
		{
			name: "window bounds on a sequential judge",
			repl: []string{"judge: {type: histogram}", "judge: {type: histogram, max: 2, for: 1m}"},
			want: []string{p + "[latency].judge.max: only for threshold and ratio judges", p + "[latency].judge.for: only for threshold and ratio judges"},
		},
		{
			name: "requests_query template syntax",
			repl: []string{`requests_query: 'sum(increase(x{track="{{ .Cohort.track }}"}[15s]))'`, `requests_query: 'x{track="{{ .Cohort.track }"}'`},
			want: []string{p + `[error-rate].requests_query: parse query template: template: error-rate:1: unexpected "}" in operand`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := seqBase
			for i := 0; i < len(tc.repl); i += 2 {
				if !strings.Contains(src, tc.repl[i]) {
					t.Fatalf("replacement %q not in the base", tc.repl[i])
				}
				src = strings.Replace(src, tc.repl[i], tc.repl[i+1], 1)
			}
			_, err := Parse([]byte(src), testKinds())
			if err == nil {
				t.Fatal("accepted")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}
