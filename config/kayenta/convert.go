package kayenta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/canaryd/canaryd/judge"
)

// Kayenta's NetflixACAJudge, the judge whose semantics the conversion carries over.
const (
	JudgeName = "NetflixACAJudge-v1.0"
	// Confidence is NetflixACAJudge's fixed confidence level.
	Confidence = 0.98
)

// Analysis is a Kayenta canary config converted to canaryd's terms, with a note on
// everything that could not be carried over. YAML renders it as a config file.
type Analysis struct {
	// Name is the canaryd analysis name; Source the Kayenta config's name.
	Name, Source string
	Notes        []string
	// Groups are the weights of every group a metric names, in percent as Kayenta
	// gives them (a group Kayenta leaves unweighted gets its share of what the named
	// ones leave of 100); GroupOrder lists them sorted.
	Groups     map[string]float64
	GroupOrder []string
	// Score is Kayenta's scoring: rules kayenta, its thresholds when the config has
	// them.
	Score     judge.Thresholds
	ScoreNote string
	Metrics   []Metric
}

// Metric is one Kayenta metric in canaryd's terms.
type Metric struct {
	// Name is the canaryd metric name; Kayenta the name Kayenta's metricSetPairList
	// uses for it.
	Name, Kayenta string
	Spec          judge.MetricSpec
	// Provider is the provider type the query is for ("" when it could not be
	// translated); Query the canaryd query template.
	Provider, Query string
	// Skip says why the metric cannot be judged by canaryd's scheduler (its query,
	// or a judge setting canaryd refuses); the metric is left out of the YAML.
	Skip string
	// Invalid is set when the judge settings themselves are refused (Skip says why):
	// the remote judge cannot judge such a metric either.
	Invalid bool
	Notes   []string
	raw     string // the Kayenta query, compact JSON
}

// InGroups is every group the metric counts in.
func (m Metric) InGroups() []string {
	if len(m.Spec.Groups) > 0 {
		return m.Spec.Groups
	}
	return []string{m.Spec.Group}
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// safeName turns a Kayenta name into a canaryd one ([A-Za-z0-9][A-Za-z0-9_.-]*, at
// most 128 bytes).
func safeName(s, fallback string) string {
	if nameRe.MatchString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "_.-")
	if len(out) > 128 {
		out = out[:128]
	}
	if out == "" {
		return fallback
	}
	return out
}

// Convert translates a canary config. It fails only when nothing could be carried over
// (no metric); every field it drops or changes is in a note.
func Convert(c *CanaryConfig) (*Analysis, error) {
	if c == nil {
		return nil, fmt.Errorf("kayenta canary config: empty")
	}
	a := &Analysis{Source: c.Name, Name: safeName(c.Name, "kayenta")}
	if c.Name == "" {
		a.Notes = append(a.Notes, "the config has no name: the analysis is called kayenta")
	} else if a.Name != c.Name {
		a.Notes = append(a.Notes, fmt.Sprintf("renamed from %q (analysis names are [A-Za-z0-9_.-])", c.Name))
	}
	if c.Judge != nil && c.Judge.Name != "" && c.Judge.Name != JudgeName {
		a.Notes = append(a.Notes, fmt.Sprintf("judge %q is not carried over: the metrics are judged as %s judges", c.Judge.Name, JudgeName))
	}
	if c.Judge != nil && len(c.Judge.JudgeConfigurations) > 0 {
		a.Notes = append(a.Notes, "judge.judgeConfigurations not carried over (NetflixACAJudge reads none)")
	}
	if len(c.Applications) > 0 {
		a.Notes = append(a.Notes, fmt.Sprintf("applications %s not carried over: canaryd analyses are not per application", strings.Join(c.Applications, ", ")))
	}
	if len(c.Metrics) == 0 {
		return nil, fmt.Errorf("kayenta canary config %q: no metrics", c.Name)
	}
	a.Score = judge.Thresholds{Pass: judge.DefaultPassScore, Marginal: judge.DefaultMarginalScore, Rules: judge.RulesKayenta}
	a.ScoreNote = "Kayenta takes the score thresholds from each execution request (scoreThresholds): canaryd's defaults"
	if cl := c.Classifier; cl != nil && cl.ScoreThresholds != nil && cl.ScoreThresholds.Pass != nil && cl.ScoreThresholds.Marginal != nil {
		a.Score.Pass, a.Score.Marginal = float64(*cl.ScoreThresholds.Pass), float64(*cl.ScoreThresholds.Marginal)
		a.ScoreNote = "classifier.scoreThresholds; an execution request's scoreThresholds override them in Kayenta"
	}
	used := map[string]bool{}
	for i, mc := range c.Metrics {
		m := convertMetric(c, mc, i)
		base, n := m.Name, 2
		for used[m.Name] {
			m.Name = fmt.Sprintf("%s-%d", base, n)
			n++
		}
		if m.Name != base || (mc.Name != "" && m.Name != mc.Name) {
			m.Notes = append(m.Notes, fmt.Sprintf("renamed from %q (metric names are unique, [A-Za-z0-9_.-])", mc.Name))
		}
		m.Spec.Name = m.Name
		used[m.Name] = true
		a.Metrics = append(a.Metrics, m)
	}
	a.groupWeights(c)
	return a, nil
}

// groupWeights sets the weight of every group the metrics name, as Kayenta's
// WeightedSumScorer weighs them.
func (a *Analysis) groupWeights(c *CanaryConfig) {
	var named map[string]Float
	if c.Classifier != nil {
		named = c.Classifier.GroupWeights
	}
	a.Groups = map[string]float64{}
	sum := 0.0
	for _, w := range named {
		sum += float64(w)
	}
	var unnamed []string
	for _, m := range a.Metrics {
		for _, g := range m.InGroups() {
			if _, ok := named[g]; !ok && !slices.Contains(unnamed, g) {
				unnamed = append(unnamed, g)
			}
		}
	}
	for _, g := range slices.Sorted(maps.Keys(named)) {
		w := named[g]
		if !(w > 0) || math.IsInf(float64(w), 0) {
			a.Notes = append(a.Notes, fmt.Sprintf("group %q: weight %v left out (canaryd weights are > 0; its metrics count at the others' mean weight)", g, float64(w)))
			continue
		}
		used := false
		for _, m := range a.Metrics {
			used = used || slices.Contains(m.InGroups(), g)
		}
		if !used {
			a.Notes = append(a.Notes, fmt.Sprintf("group %q: no metric is in it, left out", g))
			continue
		}
		a.Groups[g] = float64(w)
	}
	if len(unnamed) > 0 {
		share := (100 - sum) / float64(len(unnamed))
		for _, g := range unnamed {
			if share > 0 {
				a.Groups[g] = share
				a.Notes = append(a.Notes, fmt.Sprintf("group %q has no weight in classifier.groupWeights: %s, its share of what the others leave of 100, as Kayenta weighs it", g, num(share)))
			} else {
				a.Groups[g] = 1
				a.Notes = append(a.Notes, fmt.Sprintf("group %q has no weight and the others use all of 100 (Kayenta weighs it 0): weight 1 here, canaryd weights are > 0", g))
			}
		}
	}
	for g := range a.Groups {
		a.GroupOrder = append(a.GroupOrder, g)
	}
	sort.Strings(a.GroupOrder)
}

// convertMetric translates one metric's judge settings and query.
func convertMetric(c *CanaryConfig, mc MetricConfig, i int) Metric {
	m := Metric{Name: safeName(mc.Name, "metric-"+strconv.Itoa(i+1)), Kayenta: mc.Name}
	var buf bytes.Buffer
	if json.Compact(&buf, mc.Query.Raw) == nil {
		m.raw = buf.String()
	}
	s := judge.MetricSpec{
		Kind: judge.KindMannWhitney, Direction: judge.DirectionEither, Confidence: Confidence,
		EffectSize: judge.EffectMeanRatio, Tolerance: judge.DefaultKayentaTolerance, MinPoints: 1,
		NaNStrategy: judge.NaNRemove,
	}
	groups := slices.Compact(slices.Clone(mc.Groups))
	groups = slices.DeleteFunc(groups, func(g string) bool { return g == "" })
	if len(groups) == 0 {
		groups = []string{"ungrouped"}
		m.Notes = append(m.Notes, "no groups: put in group ungrouped (Kayenta leaves such a metric out of every group's score and counts it only for its critical and no-data rules)")
	}
	s.Group = groups[0]
	if len(groups) > 1 {
		s.Groups = groups
	}
	ca, unknown, err := mc.canaryAnalysis()
	if err != nil {
		m.Skip, m.Invalid = err.Error(), true
		m.Spec = s
		return m
	}
	for _, k := range unknown {
		m.Notes = append(m.Notes, fmt.Sprintf("analysisConfigurations.canary.%s not carried over (NetflixACAJudge does not read it)", k))
	}
	for _, k := range slices.Sorted(maps.Keys(mc.AnalysisConfigurations)) {
		if k != "canary" {
			m.Notes = append(m.Notes, fmt.Sprintf("analysisConfigurations.%s not carried over (NetflixACAJudge reads only canary)", k))
		}
	}
	if ca.Direction != nil {
		switch d := judge.Direction(*ca.Direction); d {
		case judge.DirectionIncrease, judge.DirectionDecrease, judge.DirectionEither:
			s.Direction = d
		default:
			m.Notes = append(m.Notes, fmt.Sprintf("direction %q is not one Kayenta knows: either, as Kayenta reads it", string(*ca.Direction)))
		}
	}
	if ca.NaNStrategy != nil && *ca.NaNStrategy == "replace" {
		s.NaNStrategy = judge.NaNZero
		m.Notes = append(m.Notes, "nanStrategy replace: NaN points count as 0; a cohort with no points at all is nodata here (Kayenta passes it)")
	}
	if o := ca.Outliers; o != nil && o.Strategy != nil && *o.Strategy == "remove" {
		s.RemoveOutliers = true
		s.OutlierFactor = 3
		if o.OutlierFactor != nil {
			s.OutlierFactor = float64(*o.OutlierFactor)
		}
	}
	s.Critical = ca.Critical != nil && bool(*ca.Critical)
	s.MustHaveData = ca.MustHaveData != nil && bool(*ca.MustHaveData)
	s.Muted = ca.Muted != nil && bool(*ca.Muted)
	if e := ca.EffectSize; e != nil {
		if e.Measure != nil && *e.Measure == "cles" {
			s.EffectSize = judge.EffectCLES
		} else if e.Measure != nil && *e.Measure != "meanRatio" {
			m.Notes = append(m.Notes, fmt.Sprintf("effectSize.measure %q: the mean ratio, as Kayenta reads any measure but cles", string(*e.Measure)))
		}
		for _, f := range []struct {
			dst *float64
			v   *Float
		}{{&s.AllowedIncrease, e.AllowedIncrease}, {&s.AllowedDecrease, e.AllowedDecrease},
			{&s.CriticalIncrease, e.CriticalIncrease}, {&s.CriticalDecrease, e.CriticalDecrease}} {
			if f.v != nil {
				*f.dst = float64(*f.v)
			}
		}
	}
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		m.Skip, m.Invalid = "judge settings refused: "+strings.ReplaceAll(err.Error(), "\n", "; "), true
	}
	if mc.ScopeName != "" && mc.ScopeName != "default" {
		m.Notes = append(m.Notes, fmt.Sprintf("scopeName %q: canaryd judges one pair of cohorts, the registration's baseline and canary", mc.ScopeName))
	}
	m.Spec = s
	if m.Skip == "" {
		m.Provider, m.Query, m.Skip = translateQuery(c, mc.Query)
		if m.Skip == "" && strings.Contains(string(mc.Query.Raw), "${") {
			m.Notes = append(m.Notes, "Kayenta's ${scope} and ${location} are the cohort variables scope and location, its other template variables (extendedScopeParams) shared variables")
		}
	}
	return m
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
