package analysis

import (
	"context"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/metrics"
)

type escapingProvider struct{ plainProvider }

type plainProvider struct{}

func (plainProvider) Query(context.Context, metrics.Query) (metrics.Series, error) {
	return metrics.Series{}, nil
}
func (escapingProvider) EscapeValue(v string) string { return strings.ReplaceAll(v, "$", `\x24`) }

// TestTemplateDataEscapes: a provider that escapes values (Flux) gets every cohort and
// shared value escaped in what its templates render; any other gets them as they are.
func TestTemplateDataEscapes(t *testing.T) {
	tpl, err := metrics.ParseQuery("m", `r.track == "{{ .Cohort.track }}" and r.app == "{{ .Vars.app }}"`)
	if err != nil {
		t.Fatal(err)
	}
	cohort, vars := map[string]string{"track": "${r._value}"}, map[string]string{"app": "web$"}
	for _, tc := range []struct {
		name string
		prov metrics.Provider
		want string
	}{
		{"escaping provider", escapingProvider{}, `r.track == "\x24{r._value}" and r.app == "web\x24"`},
		{"plain provider", plainProvider{}, `r.track == "${r._value}" and r.app == "web$"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tpl.Render(templateData(tc.prov, cohort, vars))
			if err != nil || got != tc.want {
				t.Errorf("%q, %v; want %q", got, err, tc.want)
			}
			if cohort["track"] != "${r._value}" || vars["app"] != "web$" {
				t.Errorf("the registration's values changed: %v %v", cohort, vars)
			}
		})
	}
}
