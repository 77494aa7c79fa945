package eval

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/config"
)

// Target is one analysis to evaluate, rewritten to query the synthetic provider.
type Target struct {
	// Name identifies the target in the report: the analysis' name, prefixed with its file
	// when two files define the same name.
	Name string `json:"name"`
	// File is where the analysis came from ("" for built-in ones).
	File string `json:"file,omitempty"`
	// Signals maps each metric to the synthetic signal that stands in for its query.
	Signals map[string]string `json:"signals"`
	// Source is the rewritten analysis, as YAML.
	Source []byte `json:"-"`

	Interval time.Duration `json:"interval"`
	Step     time.Duration `json:"step"`
	Lifetime time.Duration `json:"lifetime"`
	Warmup   time.Duration `json:"warmup"`

	// asWritten: the queries were kept as written, for a real provider (NewPromTarget).
	asWritten bool
}

// PromProvider is the provider name every analysis kept for Prometheus uses.
const PromProvider = "prom"

// SimProvider is the provider name every rewritten analysis uses.
const SimProvider = "sim"

// RunbookName is the built-in analysis of the runbook rules.
const RunbookName = "runbook-rule"

// RunbookYAML is the rule SREs already page on, written as canaryd judges: "error rate >
// 2% for 5m" (threshold) and "p99 > 1.5× baseline for 10m" (ratio), either one failing
// the canary, on the golden-signals preset's schedule. It is the baseline strategy the
// statistical presets must beat.
const RunbookYAML = `provider: sim
interval: 1m
step: 15s
lifetime: 30m
warmup: 2m
metrics:
  - name: error-rate
    query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
    judge: {type: threshold, max: 0.02, for: 5m, critical: true, unit: ratio}
  - name: p99-latency
    query: 'signal=latency_p99 cohort={{ .Cohort.track }} app={{ .Vars.app }}'
    judge: {type: ratio, max: 1.5, for: 10m, critical: true, unit: seconds}
`

// signalRules map a metric's name and query (lower case) to a synthetic signal, first
// match wins. A Prometheus or Datadog query cannot run on the synthetic provider; what
// it measures can.
var signalRules = []struct {
	re     *regexp.Regexp
	signal string
}{
	{regexp.MustCompile(`signal=([a-z0-9_]+)`), ""}, // already synthetic: keep its signal
	{regexp.MustCompile(`quantile\(\s*0?\.99\b|p99`), "latency_p99"},
	{regexp.MustCompile(`quantile\(\s*0?\.9\b|p90`), "latency_p90"},
	{regexp.MustCompile(`quantile\(\s*0?\.5\b|p50|median`), "latency_p50"},
	{regexp.MustCompile(`(5\.\.|5xx|error).*/|error[-_ ]?(rate|ratio)`), "error_rate"},
	{regexp.MustCompile(`5\.\.|5xx|error`), "errors_per_second"},
	{regexp.MustCompile(`saturation|cpu|utili[sz]ation`), "saturation"},
	{regexp.MustCompile(`request|rps|throughput`), "request_rate"},
}

// SignalFor picks the synthetic signal that stands in for a metric: from its query, or
// when the query says nothing recognisable, from its name.
func SignalFor(name, query string) (string, error) {
	for _, text := range []string{strings.ToLower(query), strings.ToLower(name)} {
		for _, r := range signalRules {
			m := r.re.FindStringSubmatch(text)
			if m == nil {
				continue
			}
			if r.signal == "" {
				return m[1], nil
			}
			return r.signal, nil
		}
	}
	return "", fmt.Errorf("metric %s: no synthetic signal matches its name or query (want one about latency quantiles, errors, saturation or requests)", name)
}

// LoadFiles reads config files, whose provider and actuator types are in kinds, and
// returns every analysis in them as a Target, in file then name order.
func LoadFiles(files []string, kinds config.Kinds) ([]Target, error) {
	return loadFiles(files, kinds, NewTarget)
}

// LoadPromFiles is LoadFiles for a real Prometheus: every analysis as NewPromTarget keeps it.
func LoadPromFiles(files []string, kinds config.Kinds) ([]Target, error) {
	return loadFiles(files, kinds, NewPromTarget)
}

func loadFiles(files []string, kinds config.Kinds, mk func(string, []byte) (Target, error)) ([]Target, error) {
	var out []Target
	seen := map[string]int{}
	for _, f := range files {
		c, err := config.Load(f, kinds)
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", f, err)
		}
		names := make([]string, 0, len(c.Analyses))
		for n := range c.Analyses {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t, err := mk(n, c.Analyses[n].Source)
			if err != nil {
				return nil, fmt.Errorf("eval: %s: %w", f, err)
			}
			t.File = f
			seen[n]++
			out = append(out, t)
		}
	}
	for i := range out {
		if seen[out[i].Name] > 1 {
			out[i].Name = strings.TrimSuffix(filepath.Base(out[i].File), filepath.Ext(out[i].File)) + "." + out[i].Name
		}
	}
	return out, nil
}

// dropKey reports whether an analysis' key names things outside it (actuators: the
// hooks) or gates them; the simulation has no actuators.
func dropKey(key string) bool {
	return key == "require_approval" || slices.Contains(config.HookKeys(), key)
}

// NewTarget rewrites an analysis (its YAML, as in a config file) to run on the synthetic
// provider: provider sim, each metric's query replaced by the signal it measures unless
// it is already synthetic, actuators left out. Judges, schedule and score are untouched.
func NewTarget(name string, src []byte) (Target, error) {
	return newTarget(name, src, false)
}

// NewPromTarget keeps an analysis as written for a real Prometheus: provider prom, the
// queries (PromQL) untouched, actuators left out. Judges, schedule and score are untouched.
// Signals is empty: nothing stands in for a query.
func NewPromTarget(name string, src []byte) (Target, error) {
	return newTarget(name, src, true)
}

func newTarget(name string, src []byte, asWritten bool) (Target, error) {
	provider := SimProvider
	if asWritten {
		provider = PromProvider
	}
	var ms yaml.MapSlice
	if err := yaml.Unmarshal(src, &ms); err != nil {
		return Target{}, fmt.Errorf("analysis %s: %w", name, err)
	}
	t := Target{Name: name, Signals: map[string]string{}, asWritten: asWritten}
	var kept yaml.MapSlice
	for _, it := range ms {
		key, _ := it.Key.(string)
		switch {
		case dropKey(key):
			continue
		case key == "provider":
			it.Value = provider
		case key == "metrics" && !asWritten:
			list, ok := it.Value.([]any)
			if !ok {
				return Target{}, fmt.Errorf("analysis %s: metrics is not a list", name)
			}
			for i, raw := range list {
				m, ok := raw.(yaml.MapSlice)
				if !ok {
					return Target{}, fmt.Errorf("analysis %s: metrics[%d] is not a mapping", name, i)
				}
				var mname, query, kind string
				qi, ri := -1, -1
				for j, f := range m {
					switch f.Key {
					case "name":
						mname, _ = f.Value.(string)
					case "query":
						query, _ = f.Value.(string)
						qi = j
					case "requests_query":
						ri = j
					case "judge":
						kind = judgeType(f.Value)
					}
				}
				// A counts metric's query counts errors and its requests_query requests
				// per step; a histogram metric's query gives buckets: unless they are
				// synthetic already, the synthetic per-step counts stand in for them.
				var signal string
				switch {
				case kind == "counts" && !strings.Contains(query, "signal="):
					signal = "errors"
				case kind == "histogram" && !strings.Contains(query, "signal="):
					signal = "latency_bucket"
				default:
					var err error
					if signal, err = SignalFor(mname, query); err != nil {
						return Target{}, fmt.Errorf("analysis %s: %w", name, err)
					}
				}
				t.Signals[mname] = signal
				if qi >= 0 && !strings.Contains(query, "signal=") {
					m[qi].Value = synthQuery(signal)
				}
				if rq, _ := m[max(ri, 0)].Value.(string); ri >= 0 && !strings.Contains(rq, "signal=") {
					m[ri].Value = synthQuery("requests")
				}
				list[i] = m
			}
		}
		kept = append(kept, it)
	}
	out, err := yaml.Marshal(kept)
	if err != nil {
		return Target{}, fmt.Errorf("analysis %s: %w", name, err)
	}
	a, err := config.ParseAnalysis(name, out)
	if err != nil {
		return Target{}, fmt.Errorf("analysis %s after rewriting for provider %s: %w", name, provider, err)
	}
	t.Source = out
	t.Interval, t.Step, t.Lifetime, t.Warmup = a.Interval, a.Step, a.Lifetime, a.Warmup
	return t, nil
}

// judgeType is a metric's judge type as written ("" when it has none).
func judgeType(v any) string {
	j, ok := v.(yaml.MapSlice)
	if !ok {
		return ""
	}
	for _, f := range j {
		if f.Key == "type" {
			s, _ := f.Value.(string)
			return s
		}
	}
	return ""
}

// synthQuery is the synthetic query of signal for a run's cohort.
func synthQuery(signal string) string {
	return "signal=" + signal + " cohort={{ .Cohort.track }} app={{ .Vars.app }}"
}

// Runbook is the built-in runbook-rule target.
func Runbook() Target {
	t, err := NewTarget(RunbookName, []byte(RunbookYAML))
	if err != nil {
		panic(err) // a constant that does not parse is a bug caught by the tests
	}
	return t
}
