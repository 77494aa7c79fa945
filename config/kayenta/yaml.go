package kayenta

import (
	"fmt"
	"sort"
	"strings"
)

// providerBlocks are the provider entries the YAML starts with, one per type a query
// is for: a Kayenta canary config names no metrics account, so each needs its
// address or keys set.
var providerBlocks = map[string][]string{
	"prometheus": {
		"type: prometheus",
		`address: "http://127.0.0.1:9090"   # a Kayenta canary config names no metrics account: set your server`,
	},
	"datadog": {
		"type: datadog",
		"site: datadoghq.com                # a Kayenta canary config names no metrics account: set your site",
		"api_key_env: DD_API_KEY",
		"app_key_env: DD_APP_KEY",
	},
}

// YAML renders the analysis as a canaryd config file: one provider, the analysis, a
// comment on every field that could not be carried over, and each metric left out
// commented with why. It fails when no metric can be judged by canaryd's scheduler.
func (a *Analysis) YAML() ([]byte, error) {
	provider := a.provider()
	var kept, left []Metric
	for _, m := range a.Metrics {
		switch {
		case m.Skip != "":
			left = append(left, m)
		case m.Provider != provider:
			m.Skip = fmt.Sprintf("a %s query: a canaryd analysis reads one provider, this one %s", m.Provider, provider)
			left = append(left, m)
		default:
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		var why []string
		for _, m := range left {
			why = append(why, fmt.Sprintf("%s: %s", m.Kayenta, m.Skip))
		}
		return nil, fmt.Errorf("kayenta canary config %q: no metric could be carried over (%s)", a.Source, strings.Join(why, "; "))
	}
	var b strings.Builder
	w := func(indent int, line string) {
		b.WriteString(strings.Repeat("  ", indent))
		b.WriteString(line)
		b.WriteByte('\n')
	}
	comment := func(indent int, text string) { w(indent, "# "+commentText(text)) }
	comment(0, fmt.Sprintf("canaryd analysis imported from the Kayenta canary config %q by `canaryd import kayenta`.", a.Source))
	comment(0, "The metrics are judged as Kayenta's "+JudgeName+" judges (effect_size, tolerance, confidence 0.98,")
	comment(0, "direction either unless the config says otherwise) and scored by its rules (score.rules kayenta).")
	for _, n := range a.Notes {
		comment(0, n)
	}
	w(0, "providers:")
	w(1, quote(provider)+":")
	for _, l := range providerBlocks[provider] {
		w(2, l)
	}
	w(0, "analyses:")
	w(1, quote(a.Name)+":")
	w(2, "provider: "+quote(provider))
	w(2, "interval: 1m   # not in a Kayenta canary config (each execution request sets its window): canaryd's default")
	w(2, "step: 1m       # likewise: Kayenta's usual step")
	w(2, "lifetime: 1h   # likewise: set how long a canary is judged")
	w(2, fmt.Sprintf("score: {rules: kayenta, pass: %s, marginal: %s}   # %s", num(a.Score.Pass), num(a.Score.Marginal), commentText(a.ScoreNote)))
	w(2, "unjudged_critical: fail   # Kayenta scores a critical metric with no data 0")
	if len(a.GroupOrder) > 0 {
		w(2, "groups:")
		for _, g := range a.GroupOrder {
			w(3, quote(g)+": "+num(a.Groups[g]))
		}
	}
	w(2, "metrics:")
	for _, m := range kept {
		for _, n := range m.Notes {
			comment(3, n)
		}
		w(3, "- name: "+quote(m.Name))
		gs := make([]string, len(m.InGroups()))
		for i, g := range m.InGroups() {
			gs[i] = quote(g)
		}
		w(4, "groups: ["+strings.Join(gs, ", ")+"]")
		w(4, "query: "+quote(m.Query))
		w(4, "judge:")
		for _, l := range judgeLines(m) {
			w(5, l)
		}
	}
	for _, m := range left {
		comment(2, fmt.Sprintf("left out: metric %q: %s", m.Kayenta, m.Skip))
		if len(m.Raw()) > 0 {
			comment(2, "  its Kayenta query: "+m.Raw())
		}
	}
	return []byte(b.String()), nil
}

// Raw is the metric's Kayenta query as JSON, "" when there is none.
func (m Metric) Raw() string { return m.raw }

// judgeLines are the judge block's keys, every one explicit so that the file says how
// the metric is judged.
func judgeLines(m Metric) []string {
	s := m.Spec
	l := []string{
		"type: mannwhitney",
		"direction: " + string(s.Direction),
		"confidence: " + num(s.Confidence),
		"effect_size: " + string(s.EffectSize),
		"allowed_increase: " + num(s.AllowedIncrease),
		"allowed_decrease: " + num(s.AllowedDecrease),
		"tolerance: " + num(s.Tolerance),
	}
	if s.Critical {
		l = append(l, "critical: true",
			"critical_increase: "+num(s.CriticalIncrease),
			"critical_decrease: "+num(s.CriticalDecrease))
	}
	if s.MustHaveData {
		l = append(l, "must_have_data: true")
	}
	if s.Muted {
		l = append(l, "muted: true")
	}
	l = append(l, "nan_strategy: "+string(s.NaNStrategy))
	if s.RemoveOutliers {
		l = append(l, "remove_outliers: true", "outlier_factor: "+num(s.OutlierFactor))
	}
	return append(l, "min_points: 1   # Kayenta judges any cohort with a point")
}

// provider is the type most translated queries are for (prometheus on a tie).
func (a *Analysis) provider() string {
	n := map[string]int{}
	for _, m := range a.Metrics {
		if m.Skip == "" {
			n[m.Provider]++
		}
	}
	types := make([]string, 0, len(n))
	for t := range n {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if n[types[i]] != n[types[j]] {
			return n[types[i]] > n[types[j]]
		}
		return types[i] > types[j] // "prometheus" before "datadog"
	})
	if len(types) == 0 {
		return "prometheus"
	}
	return types[0]
}

// quote renders s as a YAML double-quoted scalar, every byte outside printable ASCII
// escaped, so that any input stays one scalar on one line.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// commentText keeps a comment on its line: anything but printable ASCII becomes "?"
// (a line break in a name would end the comment and start YAML).
func commentText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	if b.Len() > 400 {
		return b.String()[:400] + "..."
	}
	return b.String()
}
