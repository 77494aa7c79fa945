package synthetic

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxStreams bounds streams= so that one query cannot ask for unbounded work.
const MaxStreams = 1000

// Spec is a parsed synthetic query. The language is whitespace-separated key=value words,
// in any order, each key at most once:
//
//	signal=NAME    required: request_rate, error_rate, errors_per_second, latency_p50,
//	               latency_p90, latency_p99 or saturation (a value per step); requests,
//	               errors (counts per step, for a counts judge's requests_query and
//	               query) or latency_bucket (a histogram: one series per le, cumulative
//	               counts per step with +Inf = requests, for a histogram judge)
//	cohort=NAME    required: whose series (baseline, canary, …); regressions are keyed by it
//	app=NAME       optional: another service draws other noise (default "")
//	seed=INT       optional: overrides the provider's seed (a signed 64-bit integer)
//	streams=N      optional: N independent series (instances) of the cohort, 1 to 1000,
//	               which the scheduler pools (default 1)
//
// A typical query template: `signal=latency_p99 cohort={{ .Cohort.track }} app={{ .Vars.app }}`.
// errors, requests and latency_bucket of one (seed, app, cohort, stream) are drawn
// together: at every step errors <= requests = the +Inf bucket, and errors / requests
// is error_rate's point.
// Values hold no spaces, quotes or '='; anything else is an error naming the word.
type Spec struct {
	Signal  string
	Cohort  string
	App     string
	Seed    int64
	HasSeed bool
	Streams int
}

// ParseQuery parses a synthetic query's text.
func ParseQuery(text string) (Spec, error) {
	s := Spec{Streams: 1}
	var seen []string // at most five keys: a slice beats a map here
	for _, word := range strings.Fields(text) {
		key, val, ok := strings.Cut(word, "=")
		if !ok {
			return Spec{}, fmt.Errorf("word %q: want key=value", word)
		}
		if val == "" {
			return Spec{}, fmt.Errorf("word %q: %s has an empty value", word, key)
		}
		if strings.ContainsAny(val, "=\"'`") {
			return Spec{}, fmt.Errorf("word %q: a value must not contain '=' or quotes", word)
		}
		if slices.Contains(seen, key) {
			return Spec{}, fmt.Errorf("word %q: %s given twice", word, key)
		}
		seen = append(seen, key)
		switch key {
		case "signal":
			if !knownSignal(val) {
				return Spec{}, fmt.Errorf("word %q: unknown signal %q, want one of %v", word, val, SignalNames())
			}
			s.Signal = val
		case "cohort":
			s.Cohort = val
		case "app":
			s.App = val
		case "seed":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return Spec{}, fmt.Errorf("word %q: seed must be a 64-bit integer", word)
			}
			s.Seed, s.HasSeed = n, true
		case "streams":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > MaxStreams {
				return Spec{}, fmt.Errorf("word %q: streams must be an integer in [1, %d]", word, MaxStreams)
			}
			s.Streams = n
		default:
			return Spec{}, fmt.Errorf("word %q: unknown key %q, want signal, cohort, app, seed or streams", word, key)
		}
	}
	switch {
	case s.Signal == "":
		return Spec{}, fmt.Errorf("no signal= in %q: want one of %v", text, SignalNames())
	case s.Cohort == "":
		return Spec{}, fmt.Errorf("no cohort= in %q", text)
	}
	return s, nil
}

// String is the spec in the query language, keys in a fixed order; ParseQuery reads it back.
func (s Spec) String() string {
	var b strings.Builder
	b.WriteString("signal=" + s.Signal + " cohort=" + s.Cohort)
	if s.App != "" {
		b.WriteString(" app=" + s.App)
	}
	if s.HasSeed {
		b.WriteString(" seed=" + strconv.FormatInt(s.Seed, 10))
	}
	if s.Streams != 1 {
		b.WriteString(" streams=" + strconv.Itoa(s.Streams))
	}
	return b.String()
}
