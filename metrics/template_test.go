package metrics

import (
	"errors"
	"strings"
	"testing"
)

func TestQueryTemplate(t *testing.T) {
	cohort := map[string]string{"track": "canary", "pod-hash": "7f9c"}
	vars := map[string]string{"app": "checkout", "env": "prod"}
	tests := []struct {
		name     string
		text     string
		data     TemplateData
		want     string
		parseErr string // substring of ParseQuery's error
		errWant  string // substring of Render's error
	}{
		{
			name: "cohort and vars",
			text: `sum(rate(http_requests_total{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[1m]))`,
			data: TemplateData{Cohort: cohort, Vars: vars},
			want: `sum(rate(http_requests_total{app="checkout",track="canary"}[1m]))`,
		},
		{
			name: "key that is not an identifier",
			text: `up{pod=~".*-{{ index .Cohort "pod-hash" }}-.*"}`,
			data: TemplateData{Cohort: cohort},
			want: `up{pod=~".*-7f9c-.*"}`,
		},
		{
			name: "no template actions",
			text: `up`,
			want: `up`,
		},
		{
			name: "functions and trimming",
			text: `x{env={{ printf "%q" .Vars.env }}} {{- " " -}} offset 5m`,
			data: TemplateData{Vars: vars},
			want: `x{env="prod"} offset 5m`,
		},
		{
			name:    "missing cohort key",
			text:    `up{track="{{ .Cohort.trak }}"}`,
			data:    TemplateData{Cohort: cohort, Vars: vars},
			errWant: `render query "q": template: q:1:20: executing "q" at <.Cohort.trak>: map has no entry for key "trak"`,
		},
		{
			name:    "missing var with nil maps",
			text:    `up{app="{{ .Vars.app }}"}`,
			errWant: `map has no entry for key "app"`,
		},
		{
			name:    "unknown field",
			text:    `{{ .Cohorts.track }}`,
			data:    TemplateData{Cohort: cohort},
			errWant: `can't evaluate field Cohorts`,
		},
		{
			name:     "unclosed action",
			text:     `up{track="{{ .Cohort.track }"}`,
			parseErr: `parse query template: template: q:1: unexpected "}" in operand`,
		},
		{
			name:     "unknown function",
			text:     `{{ lower .Cohort.track }}`,
			parseErr: `function "lower" not defined`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qt, err := ParseQuery("q", tc.text)
			if tc.parseErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.parseErr) {
					t.Fatalf("ParseQuery err = %v, want it to contain %q", err, tc.parseErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			got, err := qt.Render(tc.data)
			if tc.errWant != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errWant) {
					t.Fatalf("Render = %q, %v; want an error containing %q", got, err, tc.errWant)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tc.want {
				t.Errorf("Render = %q, want %q", got, tc.want)
			}
		})
	}
}

// A parsed template renders the same for each cohort: rendering one does not leak into
// the next (the scheduler renders baseline then canary from one parsed template).
func TestQueryTemplateRendersPerCohort(t *testing.T) {
	qt, err := ParseQuery("q", `signal=error_rate cohort={{ .Cohort.track }}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, track := range []string{"baseline", "canary", "baseline"} {
		got, err := qt.Render(TemplateData{Cohort: map[string]string{"track": track}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "signal=error_rate cohort=" + track; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// FuzzParseQuery: any text either fails to parse or renders without panicking, and a
// rendered query never contains the "<no value>" that a missing key would print.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`up`,
		`sum(rate(x{track="{{ .Cohort.track }}",app="{{ .Vars.app }}"}[1m]))`,
		`{{ .Cohort.missing }}`,
		`{{ index .Vars "a-b" }}`,
		`{{ if .Cohort.track }}a{{ else }}b{{ end }}`,
		`{{ range $k, $v := .Cohort }}{{ $k }}={{ $v }},{{ end }}`,
		`{{ .Cohort.track `,
	} {
		f.Add(s)
	}
	data := TemplateData{Cohort: map[string]string{"track": "canary"}, Vars: map[string]string{"app": "a", "a-b": "c"}}
	f.Fuzz(func(t *testing.T, text string) {
		qt, err := ParseQuery("fuzz", text)
		if err != nil {
			return
		}
		got, err := qt.Render(data)
		if err == nil && strings.Contains(got, "<no value>") && !strings.Contains(text, "<no value>") {
			t.Fatalf("template %q rendered %q", text, got)
		}
	})
}

// A render that misses a variable says which, as a *MissingVarError, whatever way the
// template reaches it; other failures are not one.
func TestQueryTemplateMissingVar(t *testing.T) {
	data := TemplateData{Cohort: map[string]string{"track": "canary"}, Vars: map[string]string{"app": "a", "on": "x"}}
	tests := []struct {
		name        string
		text        string
		scope, want string // want "" : not a MissingVarError
	}{
		{"cohort", `up{track="{{ .Cohort.track }}",pod="{{ .Cohort.pod }}"}`, "Cohort", "pod"},
		{"vars", `up{app="{{ .Vars.app }}",ns="{{ .Vars.ns }}"}`, "Vars", "ns"},
		{"from the root", `{{ $.Vars.region }}`, "Vars", "region"},
		{"in a pipeline", `{{ .Cohort.zone | printf "%s" }}`, "Cohort", "zone"},
		{"in a branch taken", `{{ if .Vars.on }}{{ .Vars.cluster }}{{ end }}`, "Vars", "cluster"},
		{"the one reached, not the first written", `{{ if .Vars.off }}{{ .Vars.a1 }}{{ end }}`, "Vars", "off"},
		{"second of two missing on one line", `{{ if .Vars.on }}{{ .Vars.b2 }}{{ else }}{{ .Vars.b1 }}{{ end }}`, "Vars", "b2"},
		{"unknown field", `{{ .Cohorts.track }}`, "", ""},
		{"a function's error", `{{ index .Vars 1 }}`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qt, err := ParseQuery("q", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			_, err = qt.Render(data)
			if err == nil {
				t.Fatal("rendered")
			}
			var mv *MissingVarError
			switch {
			case tc.want == "" && errors.As(err, &mv):
				t.Fatalf("%v is a MissingVarError (%s.%s)", err, mv.Scope, mv.Name)
			case tc.want == "":
			case !errors.As(err, &mv):
				t.Fatalf("%v is not a MissingVarError", err)
			case mv.Scope != tc.scope || mv.Name != tc.want:
				t.Fatalf("missing %s.%s, want %s.%s (%v)", mv.Scope, mv.Name, tc.scope, tc.want, err)
			case !strings.Contains(err.Error(), `map has no entry for key "`+tc.want+`"`):
				t.Fatalf("error text changed: %v", err)
			}
		})
	}
}
