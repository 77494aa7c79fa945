package config

import (
	"strings"
	"testing"
)

// An analysis' kayenta block names the cohort variables a Kayenta execution's scope and
// location fill; a key left out keeps its default, and a snapshot reads back the same.
func TestParseKayentaVars(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       KayentaVars
		err        string
	}{
		{"default", "", KayentaVars{Scope: "scope", Location: "location"}, ""},
		{"scope renamed", "    kayenta: {scope_var: track}\n", KayentaVars{Scope: "track", Location: "location"}, ""},
		{"both renamed", "    kayenta: {scope_var: track, location_var: region}\n", KayentaVars{Scope: "track", Location: "region"}, ""},
		{"not a variable", "    kayenta: {scope_var: \"track}}\"}\n", KayentaVars{}, `analyses.golden-signals.kayenta.scope_var: "track}}" is not a variable name`},
		{"same variable", "    kayenta: {scope_var: location}\n", KayentaVars{}, `analyses.golden-signals.kayenta.location_var: "location" is scope_var too: scope and location must fill different variables`},
		{"unknown key", "    kayenta: {scope: track}\n", KayentaVars{}, `unknown field "scope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(base, "lifetime: 30m\n", "lifetime: 30m\n"+tc.yaml, 1)), testKinds())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := c.Analyses["golden-signals"]
			if a.Kayenta != tc.want {
				t.Errorf("kayenta %+v, want %+v", a.Kayenta, tc.want)
			}
			b, err := ParseAnalysis(a.Name, a.Source)
			if err != nil || b.Kayenta != tc.want {
				t.Errorf("snapshot: %+v %v", b, err)
			}
		})
	}
}
