package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// Analysis is one `analyses:` entry: how a canary registered against it is judged.
type Analysis struct {
	Name     string
	Provider string
	Interval time.Duration
	Step     time.Duration
	Lifetime time.Duration
	Warmup   time.Duration
	Score    judge.Thresholds
	// Groups are the weights of the metric groups; empty means every metric counts alike.
	Groups map[string]float64
	// OnStart fires once when a canary is registered (after it is stored); the others
	// when it ends. Hooks lists them all.
	OnStart    []string
	OnFail     []string
	OnPass     []string
	OnMarginal []string
	OnError    []string
	// OnNotRecovered fire once when the recovery watch ends not_recovered (the rollback
	// did not help, or failed).
	OnNotRecovered []string
	// Recovery, when set, watches the service after a failed or aborted canary's
	// actions for the rollback's effect; nil watches nothing.
	Recovery *Recovery
	// RequireApproval holds the actions of a failed verdict (on_fail, on_error) until a
	// human approves them; notifications go out at once.
	RequireApproval bool
	// ServiceVar names the canary variable that says which service a canary is of (the
	// breaker, the cooldown and resolves count per service); empty means
	// actuation.service_var. See ServiceVarOr.
	ServiceVar string
	// Kayenta names the cohort variables a Kayenta execution's scope and location fill
	// (the analysis' `kayenta:` block).
	Kayenta KayentaVars
	// Preflight is what a failed actuator preflight does to a registration:
	// PreflightWarn (the default) or PreflightRefuse.
	Preflight string
	Metrics   []Metric
	// Source is the analysis as YAML, which a canary keeps so that it is judged by the
	// analysis it started with after a reload or a restart (ParseAnalysis reads it back).
	Source []byte
	// Hash identifies Source (sha256, hex).
	Hash string
}

// KayentaVars name the cohort variables that Kayenta's scope and location become when
// the analysis is run as a Kayenta canary config (web/kayenta): Scope defaults to
// "scope", Location to "location".
type KayentaVars struct {
	Scope    string `yaml:"scope_var"`
	Location string `yaml:"location_var"`
}

// Recovery is an analysis' `recovery:` block: after a fail verdict's actions (or an
// abort), judge the service for Within and record whether it recovered.
type Recovery struct {
	Within time.Duration
	// Metrics are the watched metrics' names: the block's, or the analysis' critical
	// metrics that the watch can judge.
	Metrics []string
}

type recoveryYAML struct {
	Within  model.Duration `yaml:"within"`
	Metrics []string       `yaml:"metrics"`
}

// What a failed preflight does (an analysis' `preflight:`).
const (
	// PreflightWarn registers the canary with the failure as a warning on it.
	PreflightWarn = "warn"
	// PreflightRefuse refuses the registration (409), storing nothing.
	PreflightRefuse = "refuse"
)

// ServiceVarOr is the analysis' service_var, or def (actuation.service_var) when it
// names none.
func (a *Analysis) ServiceVarOr(def string) string {
	if a != nil && a.ServiceVar != "" {
		return a.ServiceVar
	}
	return def
}

// The hooks: an analysis' actuator lists, by their key in the file (and the trigger
// of the actions they fire).
const (
	HookStart    = "on_start"
	HookFail     = "on_fail"
	HookPass     = "on_pass"
	HookMarginal = "on_marginal"
	HookError    = "on_error"
	// HookNotRecovered fires when a failed canary's recovery watch ends not_recovered.
	HookNotRecovered = "on_not_recovered"
)

// Hook is one of an analysis' actuator lists.
type Hook struct {
	// Key is the list's key in the file: on_start, on_fail, …
	Key string
	// Actuators are the names it lists, as written.
	Actuators []string
}

// Hooks are every actuator list of the analysis, in the order they can fire. Validation,
// the registration check and the safety layer all read them from here: a new hook is its
// field and one line below.
func (a *Analysis) Hooks() []Hook {
	if a == nil {
		return nil
	}
	return []Hook{
		{HookStart, a.OnStart},
		{HookFail, a.OnFail},
		{HookPass, a.OnPass},
		{HookMarginal, a.OnMarginal},
		{HookError, a.OnError},
		{HookNotRecovered, a.OnNotRecovered},
	}
}

// HookKeys are the keys of every hook (an analysis' lists of actuators).
func HookKeys() []string {
	var a Analysis
	hs := a.Hooks()
	keys := make([]string, len(hs))
	for i, h := range hs {
		keys[i] = h.Key
	}
	return keys
}

// Hook is the list of the hook key, each name once (a name listed twice is one action:
// its idempotency key would be the same); nil for a key that is no hook.
func (a *Analysis) Hook(key string) []string {
	for _, h := range a.Hooks() {
		if h.Key != key {
			continue
		}
		var out []string
		for _, n := range h.Actuators {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}

// Actuators reports whether any of the analysis' lists names an actuator.
func (a *Analysis) Actuators() bool {
	for _, h := range a.Hooks() {
		if len(h.Actuators) > 0 {
			return true
		}
	}
	return false
}

// metricPath names a metric in error paths by its name when it has a valid one
// (metrics[error-rate]), by its index otherwise (metrics[2]): a name survives the
// metrics being reordered and is what the report page shows.
func metricPath(path string, i int, name string) string {
	if nameRe.MatchString(name) {
		return path + "[" + name + "]"
	}
	return index(path, i)
}

// rawName is the name key of an undecoded metric, "" when it has none.
func rawName(raw rawNode) string {
	if ms, ok := raw.v.(map[any]any); ok {
		s, _ := ms["name"].(string)
		return s
	}
	if ms, ok := raw.v.(yaml.MapSlice); ok {
		for _, it := range ms {
			if it.Key == "name" {
				s, _ := it.Value.(string)
				return s
			}
		}
	}
	return ""
}

// UnbreakableWindow returns a threshold or ratio metric whose `for` is longer than the
// judged part of a canary of this lifetime (lifetime − warmup): its bound could be broken
// at every point and the metric would still pass. Config refuses such an analysis, and a
// registration that shortens the lifetime to one.
func (a *Analysis) UnbreakableWindow(lifetime time.Duration) (Metric, bool) {
	for _, m := range a.Metrics {
		if m.Spec.Kind.Window() && m.Spec.For > lifetime-a.Warmup {
			return m, true
		}
	}
	return Metric{}, false
}

// MaxMetricsPerAnalysis bounds an analysis' metrics.
const MaxMetricsPerAnalysis = 100

// Metric is one metric of an analysis.
type Metric struct {
	Name  string
	Group string
	// Groups lists every group of a metric in several (`groups:`), Group being the
	// first; empty for a metric in one group or none.
	Groups []string
	// Query is the template as written; Template is it parsed. For a counts judge it
	// is the errors per step, for a histogram judge the bucket increments by le.
	Query    string
	Template *metrics.QueryTemplate
	// RequestsQuery (requests_query) is a counts judge's requests per step; empty for
	// every other judge. RequestsTemplate is it parsed.
	RequestsQuery    string
	RequestsTemplate *metrics.QueryTemplate
	// Spec is the judge's view, with the analysis' step.
	Spec judge.MetricSpec
}

// analysisYAML is the wire form of an analysis; metrics stay raw so that each one's
// errors carry its index.
type analysisYAML struct {
	Provider   string             `yaml:"provider"`
	Interval   model.Duration     `yaml:"interval"`
	Step       model.Duration     `yaml:"step"`
	Lifetime   model.Duration     `yaml:"lifetime"`
	Warmup     model.Duration     `yaml:"warmup"`
	Score      scoreYAML          `yaml:"score"`
	Groups     map[string]float64 `yaml:"groups"`
	OnStart    []string           `yaml:"on_start"`
	OnFail     []string           `yaml:"on_fail"`
	OnPass     []string           `yaml:"on_pass"`
	OnMarginal []string           `yaml:"on_marginal"`
	OnError    []string           `yaml:"on_error"`
	// OnNotRecovered and Recovery: see Analysis.
	OnNotRecovered []string      `yaml:"on_not_recovered"`
	Recovery       *recoveryYAML `yaml:"recovery"`
	// RequireApproval: see Analysis.
	RequireApproval bool   `yaml:"require_approval"`
	ServiceVar      string `yaml:"service_var"`
	// Preflight: see Analysis.
	Preflight string `yaml:"preflight"`
	// UnjudgedCritical is how a canary ends when a critical metric cannot be judged at
	// its last interval: "error" or "fail"; empty is the score rules' default.
	UnjudgedCritical string      `yaml:"unjudged_critical"`
	Kayenta          KayentaVars `yaml:"kayenta"`
	Metrics          []rawNode   `yaml:"metrics"`
}

type scoreYAML struct {
	Pass     float64 `yaml:"pass"`
	Marginal float64 `yaml:"marginal"`
	// Rules are "canaryd" (the default) or "kayenta".
	Rules string `yaml:"rules"`
}

// UnmarshalYAML fills the defaults (judge every minute on 15 s points, pass at 95,
// marginal at 75), then decodes the file's values onto them.
func (a *analysisYAML) UnmarshalYAML(unmarshal func(any) error) error {
	*a = analysisYAML{
		Interval:  model.Duration(time.Minute),
		Step:      model.Duration(15 * time.Second),
		Score:     scoreYAML{Pass: 95, Marginal: 75, Rules: string(judge.RulesCanaryd)},
		Kayenta:   KayentaVars{Scope: "scope", Location: "location"},
		Preflight: PreflightWarn,
	}
	type plain analysisYAML
	return unmarshal((*plain)(a))
}

// UnmarshalYAML keeps the defaults of a score block that sets only one of its keys.
func (s *scoreYAML) UnmarshalYAML(unmarshal func(any) error) error {
	*s = scoreYAML{Pass: 95, Marginal: 75, Rules: string(judge.RulesCanaryd)}
	type plain scoreYAML
	return unmarshal((*plain)(s))
}

type metricYAML struct {
	Name  string `yaml:"name"`
	Group string `yaml:"group"`
	// Groups: a metric that counts in several groups (Kayenta's groups); not with group.
	Groups []string `yaml:"groups"`
	Query  string   `yaml:"query"`
	// RequestsQuery: a counts judge's second query (requests per step).
	RequestsQuery string  `yaml:"requests_query"`
	Judge         rawNode `yaml:"judge"`
}

// judgeYAML is the `judge:` block of a metric, mapped onto judge.MetricSpec.
type judgeYAML struct {
	Type       string  `yaml:"type"`
	Direction  string  `yaml:"direction"`
	Confidence float64 `yaml:"confidence"`
	// AllowedIncrease and AllowedDecrease: absent is the judge's default for the
	// effect_size (1, or 0.5 for cles).
	AllowedIncrease *float64 `yaml:"allowed_increase"`
	AllowedDecrease *float64 `yaml:"allowed_decrease"`
	AllowedDelta    float64  `yaml:"allowed_delta"`
	// EffectSize, Tolerance, CriticalIncrease, CriticalDecrease: Kayenta's measures
	// (judge.EffectMeasure); absent keys take the measure's defaults.
	EffectSize       string         `yaml:"effect_size"`
	Tolerance        *float64       `yaml:"tolerance"`
	CriticalIncrease *float64       `yaml:"critical_increase"`
	CriticalDecrease *float64       `yaml:"critical_decrease"`
	Muted            bool           `yaml:"muted"`
	Critical         bool           `yaml:"critical"`
	MustHaveData     bool           `yaml:"must_have_data"`
	NaNStrategy      string         `yaml:"nan_strategy"`
	RemoveOutliers   bool           `yaml:"remove_outliers"`
	OutlierFactor    float64        `yaml:"outlier_factor"`
	MinPoints        *int           `yaml:"min_points"`
	Min              *float64       `yaml:"min"`
	Max              *float64       `yaml:"max"`
	For              model.Duration `yaml:"for"`
	Unit             string         `yaml:"unit"`
	// Alpha: the sequential judges' false-alarm bound (absent is the judge's default).
	Alpha *float64 `yaml:"alpha"`
}

// UnmarshalYAML fills the judge's documented defaults, so that what check-config accepts
// is exactly what runs.
func (j *judgeYAML) UnmarshalYAML(unmarshal func(any) error) error {
	*j = defaultJudge()
	type plain judgeYAML
	return unmarshal((*plain)(j))
}

// defaultJudge is the judge's own defaults (judge.MetricSpec.WithDefaults) as YAML; the
// keys whose default depends on the type (min_points, alpha) stay unset.
func defaultJudge() judgeYAML {
	d := judge.MetricSpec{}.WithDefaults()
	return judgeYAML{
		Type:          string(d.Kind),
		Direction:     string(d.Direction),
		Confidence:    d.Confidence,
		EffectSize:    string(d.EffectSize),
		NaNStrategy:   string(d.NaNStrategy),
		OutlierFactor: d.OutlierFactor,
	}
}

// ParseAnalysis reads back an analysis from its Source, as a canary stored it. Only the
// analysis itself is checked, not its references to providers and actuators.
func ParseAnalysis(name string, src []byte) (*Analysis, error) {
	var errs Errors
	a := parseAnalysis(name, src, join("analyses", name), &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return a, nil
}

func parseAnalysis(name string, src []byte, path string, errs *Errors) *Analysis {
	n := len(*errs)
	var w analysisYAML
	if !decodeBytes(src, &w, path, errs) {
		return nil
	}
	sum := sha256.Sum256(src)
	a := &Analysis{
		Name:            name,
		Provider:        w.Provider,
		Interval:        time.Duration(w.Interval),
		Step:            time.Duration(w.Step),
		Lifetime:        time.Duration(w.Lifetime),
		Warmup:          time.Duration(w.Warmup),
		Score:           judge.Thresholds{Pass: w.Score.Pass, Marginal: w.Score.Marginal, Rules: judge.ScoreRules(w.Score.Rules)},
		Groups:          w.Groups,
		OnStart:         w.OnStart,
		OnFail:          w.OnFail,
		OnPass:          w.OnPass,
		OnMarginal:      w.OnMarginal,
		OnError:         w.OnError,
		OnNotRecovered:  w.OnNotRecovered,
		RequireApproval: w.RequireApproval,
		ServiceVar:      w.ServiceVar,
		Kayenta:         w.Kayenta,
		Preflight:       w.Preflight,
		Source:          src,
		Hash:            hex.EncodeToString(sum[:]),
	}
	if a.Provider == "" {
		errs.Add(join(path, "provider"), "required")
	}
	if a.ServiceVar != "" && !varKeyOK(a.ServiceVar) {
		errs.Add(join(path, "service_var"), "%q is not a variable name", a.ServiceVar)
	}
	for _, v := range []struct{ key, name string }{{"scope_var", a.Kayenta.Scope}, {"location_var", a.Kayenta.Location}} {
		if !varKeyOK(v.name) {
			errs.Add(join(path, "kayenta."+v.key), "%q is not a variable name", v.name)
		}
	}
	if a.Kayenta.Scope == a.Kayenta.Location {
		errs.Add(join(path, "kayenta.location_var"), "%q is scope_var too: scope and location must fill different variables", a.Kayenta.Location)
	}
	if a.Preflight != PreflightWarn && a.Preflight != PreflightRefuse {
		errs.Add(join(path, "preflight"), "%q is not %s or %s", a.Preflight, PreflightWarn, PreflightRefuse)
	}
	if a.Interval <= 0 {
		errs.Add(join(path, "interval"), "must be > 0")
	}
	if a.Step <= 0 {
		errs.Add(join(path, "step"), "must be > 0")
	}
	switch {
	case a.Lifetime <= 0:
		errs.Add(join(path, "lifetime"), "required, must be > 0")
	case a.Interval > 0 && a.Lifetime < a.Interval:
		errs.Add(join(path, "lifetime"), "must be >= interval (%s)", a.Interval)
	}
	if a.Warmup < 0 {
		errs.Add(join(path, "warmup"), "must be >= 0")
	} else if a.Lifetime > 0 && a.Warmup >= a.Lifetime {
		errs.Add(join(path, "warmup"), "must be shorter than lifetime (%s)", a.Lifetime)
	}
	if p := a.Score.Pass; p <= 0 || p > 100 {
		errs.Add(join(path, "score.pass"), "must be in (0, 100]")
	}
	if m := a.Score.Marginal; m < 0 || m > a.Score.Pass {
		errs.Add(join(path, "score.marginal"), "must be in [0, score.pass]")
	}
	if !slices.Contains(scoreRules, w.Score.Rules) {
		errs.Add(join(path, "score.rules"), "unknown rules %q, want one of %v", w.Score.Rules, scoreRules)
	}
	switch w.UnjudgedCritical {
	case "":
	case "error":
		a.Score.Unjudged = judge.VerdictUnjudged
	case "fail":
		a.Score.Unjudged = judge.VerdictFail
	default:
		errs.Add(join(path, "unjudged_critical"), "unknown outcome %q, want error or fail", w.UnjudgedCritical)
	}
	a.Score = a.Score.WithDefaults()
	for g, wt := range a.Groups {
		if !(wt > 0) || math.IsInf(wt, 0) {
			errs.Add(join(path, "groups."+g), "weight must be > 0")
		}
	}
	if len(w.Metrics) == 0 {
		errs.Add(join(path, "metrics"), "at least one metric is required")
	} else if len(w.Metrics) > MaxMetricsPerAnalysis {
		// Each metric is two queries per interval per canary: a bound keeps one analysis
		// from swamping the providers.
		errs.Add(join(path, "metrics"), "%d metrics, at most %d", len(w.Metrics), MaxMetricsPerAnalysis)
	}
	seen := map[string]int{}
	for i, raw := range w.Metrics {
		mp := metricPath(join(path, "metrics"), i, rawName(raw))
		m, ok := parseMetric(raw, a, mp, errs)
		if !ok {
			continue
		}
		if j, dup := seen[m.Name]; dup {
			errs.Add(join(index(join(path, "metrics"), i), "name"), "%q already used by metrics[%d]", m.Name, j)
			continue
		}
		seen[m.Name] = i
		a.Metrics = append(a.Metrics, m)
	}
	parseRecovery(a, w.Recovery, path, errs)
	if len(*errs) > n {
		return nil
	}
	return a
}

// parseRecovery checks the recovery block against the analysis' own interval and
// metrics (the server's max_lifetime is checkAnalysis'), and defaults its metrics.
func parseRecovery(a *Analysis, w *recoveryYAML, path string, errs *Errors) {
	if w == nil {
		if len(a.OnNotRecovered) > 0 {
			errs.Add(join(path, "on_not_recovered"), "needs a recovery block: nothing is watched without one")
		}
		return
	}
	rp := join(path, "recovery")
	r := &Recovery{Within: time.Duration(w.Within)}
	switch {
	case r.Within <= 0:
		errs.Add(join(rp, "within"), "required, must be > 0")
	case a.Interval > 0 && r.Within < a.Interval:
		errs.Add(join(rp, "within"), "%s is shorter than one interval (%s): the service would never be judged", model.Duration(r.Within), model.Duration(a.Interval))
	}
	byName := map[string]*Metric{}
	for i := range a.Metrics {
		byName[a.Metrics[i].Name] = &a.Metrics[i]
	}
	for i, name := range w.Metrics {
		mp := index(join(rp, "metrics"), i)
		m, ok := byName[name]
		switch {
		case !ok:
			errs.Add(mp, "%q is not a metric of the analysis", name)
		case slices.Contains(r.Metrics, name):
			errs.Add(mp, "%q listed twice", name)
		case !judge.RecoverySupported(m.Spec.Kind):
			errs.Add(mp, "%q is a %s metric: the watch judges mannwhitney, threshold, ratio and counts metrics", name, m.Spec.Kind)
		default:
			r.Metrics = append(r.Metrics, name)
		}
	}
	if len(w.Metrics) == 0 {
		for _, m := range a.Metrics {
			if m.Spec.Critical && judge.RecoverySupported(m.Spec.Kind) {
				r.Metrics = append(r.Metrics, m.Name)
			}
		}
		if len(a.Metrics) > 0 && len(r.Metrics) == 0 {
			errs.Add(join(rp, "metrics"), "none given, and the analysis has no critical mannwhitney, threshold, ratio or counts metric to default to: list the metrics to watch")
		}
	}
	a.Recovery = r
}

func parseMetric(raw rawNode, a *Analysis, path string, errs *Errors) (Metric, bool) {
	n := len(*errs)
	var w metricYAML
	if !decodeAt(raw.v, &w, path, errs) {
		return Metric{}, false
	}
	m := Metric{Name: w.Name, Group: w.Group, Query: w.Query}
	if !nameRe.MatchString(w.Name) {
		errs.Add(join(path, "name"), "required, must match %s", nameRe)
	}
	groups := []string{w.Group}
	groupKey := "group"
	switch {
	case len(w.Groups) > 0 && w.Group != "":
		errs.Add(join(path, "groups"), "not with group: list every group in groups")
	case len(w.Groups) > 0:
		groups, groupKey = w.Groups, "groups"
		m.Group = w.Groups[0]
		if len(w.Groups) > 1 {
			m.Groups = w.Groups
		}
		for i, g := range w.Groups {
			if g == "" || slices.Index(w.Groups, g) < i {
				errs.Add(index(join(path, "groups"), i), "empty or repeated group %q", g)
			}
		}
	}
	if len(a.Groups) > 0 {
		for _, g := range groups {
			if g == "" {
				errs.Add(join(path, groupKey), "required when the analysis has groups")
			} else if _, ok := a.Groups[g]; !ok {
				errs.Add(join(path, groupKey), "%q is not in the analysis' groups", g)
			}
		}
	}
	if w.Query == "" {
		errs.Add(join(path, "query"), "required")
	} else if t, err := metrics.ParseQuery(w.Name, w.Query); err != nil {
		errs.Add(join(path, "query"), "%v", err)
	} else {
		m.Template = t
	}
	j := defaultJudge()
	if !w.Judge.isZero() {
		if !decodeAt(w.Judge.v, &j, join(path, "judge"), errs) {
			return m, false
		}
	}
	m.Spec = j.spec(w.Name, m.Group, a.Step)
	m.Spec.Groups = m.Groups
	parseSequential(&m, w.RequestsQuery, a, path, errs)
	validateSpec(m.Spec, join(path, "judge"), errs)
	return m, len(*errs) == n
}

var scoreRules = []string{string(judge.RulesCanaryd), string(judge.RulesKayenta)}

// spec maps the block onto the judge's spec, one key to one field; the judge validates
// it (validateSpec), config adds nothing to its rules.
func (j judgeYAML) spec(name, group string, step time.Duration) judge.MetricSpec {
	s := judge.MetricSpec{
		Name:           name,
		Group:          group,
		Kind:           judge.Kind(j.Type),
		Unit:           j.Unit,
		Direction:      judge.Direction(j.Direction),
		Confidence:     j.Confidence,
		AllowedDelta:   j.AllowedDelta,
		EffectSize:     judge.EffectMeasure(j.EffectSize),
		Muted:          j.Muted,
		Critical:       j.Critical,
		MustHaveData:   j.MustHaveData,
		NaNStrategy:    judge.NaNStrategy(j.NaNStrategy),
		RemoveOutliers: j.RemoveOutliers,
		OutlierFactor:  j.OutlierFactor,
		Min:            j.Min,
		Max:            j.Max,
		For:            time.Duration(j.For),
		Step:           step,
	}
	// The keys left out take the judge's default for the type.
	d := s.WithDefaults()
	s.MinPoints, s.Alpha, s.Horizon = d.MinPoints, d.Alpha, d.Horizon
	s.AllowedIncrease, s.AllowedDecrease = d.AllowedIncrease, d.AllowedDecrease
	s.Tolerance, s.CriticalIncrease, s.CriticalDecrease = d.Tolerance, d.CriticalIncrease, d.CriticalDecrease
	for _, k := range []struct {
		dst *float64
		v   *float64
	}{{&s.AllowedIncrease, j.AllowedIncrease}, {&s.AllowedDecrease, j.AllowedDecrease},
		{&s.Tolerance, j.Tolerance}, {&s.CriticalIncrease, j.CriticalIncrease}, {&s.CriticalDecrease, j.CriticalDecrease}} {
		if k.v != nil {
			*k.dst = *k.v
		}
	}
	if j.MinPoints != nil {
		s.MinPoints = *j.MinPoints
	}
	if j.Alpha != nil {
		s.Alpha = *j.Alpha
	}
	return s
}

// validateSpec records the judge's every objection to a metric's spec under the
// metric's judge path.
func validateSpec(s judge.MetricSpec, path string, errs *Errors) {
	var fes Errors
	if err := s.Validate(); err != nil && !errors.As(err, &fes) {
		errs.Add(path, "%v", err)
	}
	errs.AddAll(path, fes)
}
