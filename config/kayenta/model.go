package kayenta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CanaryConfig is Kayenta's canary config (kayenta-core's CanaryConfig) as its JSON
// reads: the fields canaryd carries over, and the others kept raw so that the importer
// can say it left them out. Decoding is lenient, as Kayenta's own object mapper is:
// unknown fields are ignored.
type CanaryConfig struct {
	Name          string            `json:"name"`
	ID            string            `json:"id"`
	Description   string            `json:"description"`
	ConfigVersion json.RawMessage   `json:"configVersion"`
	Applications  []string          `json:"applications"`
	Judge         *JudgeConfig      `json:"judge"`
	Metrics       []MetricConfig    `json:"metrics"`
	Templates     map[string]string `json:"templates"`
	Classifier    *ClassifierConfig `json:"classifier"`
}

// JudgeConfig names the judge a config asks for.
type JudgeConfig struct {
	Name                string                     `json:"name"`
	JudgeConfigurations map[string]json.RawMessage `json:"judgeConfigurations"`
}

// ClassifierConfig holds the group weights (in percent, summing to 100) and, in
// older configs, the score thresholds.
type ClassifierConfig struct {
	GroupWeights    map[string]Float `json:"groupWeights"`
	ScoreThresholds *ScoreThresholds `json:"scoreThresholds"`
}

// ScoreThresholds is Kayenta's CanaryClassifierThresholdsConfig.
type ScoreThresholds struct {
	Pass     *Float `json:"pass"`
	Marginal *Float `json:"marginal"`
}

// MetricConfig is one of a canary config's metrics (CanaryMetricConfig).
type MetricConfig struct {
	Name                   string                     `json:"name"`
	Query                  Query                      `json:"query"`
	Groups                 []string                   `json:"groups"`
	AnalysisConfigurations map[string]json.RawMessage `json:"analysisConfigurations"`
	ScopeName              string                     `json:"scopeName"`
}

// Query is a metric's query config (CanaryMetricSetQueryConfig): the fields of the
// types canaryd translates, the rest kept raw.
type Query struct {
	Type                 string   `json:"type"`
	MetricName           string   `json:"metricName"`
	ResourceType         string   `json:"resourceType"`
	LabelBindings        []string `json:"labelBindings"`
	GroupByFields        []string `json:"groupByFields"`
	CustomInlineTemplate string   `json:"customInlineTemplate"`
	CustomFilterTemplate string   `json:"customFilterTemplate"`
	CustomFilter         string   `json:"customFilter"`
	// Raw is the whole query object, for the comment on a query left out.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the fields.
func (q *Query) UnmarshalJSON(b []byte) error {
	type plain Query
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*q = Query(p)
	q.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// CanaryAnalysis is a metric's analysisConfigurations.canary: the keys
// NetflixACAJudge reads.
type CanaryAnalysis struct {
	Direction    *String `json:"direction"`
	NaNStrategy  *String `json:"nanStrategy"`
	Critical     *Bool   `json:"critical"`
	MustHaveData *Bool   `json:"mustHaveData"`
	Muted        *Bool   `json:"muted"`
	Outliers     *struct {
		Strategy      *String `json:"strategy"`
		OutlierFactor *Float  `json:"outlierFactor"`
	} `json:"outliers"`
	EffectSize *struct {
		Measure          *String `json:"measure"`
		AllowedIncrease  *Float  `json:"allowedIncrease"`
		AllowedDecrease  *Float  `json:"allowedDecrease"`
		CriticalIncrease *Float  `json:"criticalIncrease"`
		CriticalDecrease *Float  `json:"criticalDecrease"`
	} `json:"effectSize"`
}

// canaryKeys are the keys of analysisConfigurations.canary NetflixACAJudge reads.
var canaryKeys = map[string][]string{
	"":           {"direction", "nanStrategy", "critical", "mustHaveData", "muted", "outliers", "effectSize"},
	"outliers":   {"strategy", "outlierFactor"},
	"effectSize": {"measure", "allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease"},
}

// Float is a number as Kayenta's MapUtils reads one: a JSON number or a string holding
// one.
type Float float64

// UnmarshalJSON takes a number or a numeric string.
func (f *Float) UnmarshalJSON(b []byte) error {
	s, err := scalarText(b)
	if err != nil {
		return err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%.40q is not a number", s)
	}
	*f = Float(v)
	return nil
}

// Bool is a boolean as Kayenta reads one: true/false or the strings "true"/"false".
type Bool bool

// UnmarshalJSON takes a boolean or a string holding one.
func (v *Bool) UnmarshalJSON(b []byte) error {
	s, err := scalarText(b)
	if err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		*v = true
	case "false":
		*v = false
	default:
		return fmt.Errorf("%.40q is not true or false", s)
	}
	return nil
}

// String is a string as Kayenta reads one: any JSON scalar, as its text.
type String string

// UnmarshalJSON takes a string, or a number or boolean as its text.
func (v *String) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return fmt.Errorf("an object or array is not a string")
	}
	s, err := scalarText(b)
	if err != nil {
		return err
	}
	*v = String(s)
	return nil
}

// scalarText is a JSON scalar's text: a string's content, else the value as written
// (Kayenta reads numbers and booleans from either).
func scalarText(b []byte) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	}
	return string(b), nil
}

// Parse decodes a Kayenta canary config. Unknown fields are ignored, as Kayenta does;
// a value of the wrong type is an error naming its field.
func Parse(b []byte) (*CanaryConfig, error) {
	var c CanaryConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("kayenta canary config: %w", describeJSONError(err))
	}
	return &c, nil
}

// describeJSONError names the field of a type error.
func describeJSONError(err error) error {
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
		return fmt.Errorf("%s: a JSON %s where Kayenta expects %s", te.Field, te.Value, te.Type)
	}
	return err
}

// canaryAnalysis decodes a metric's analysisConfigurations.canary and lists the keys
// NetflixACAJudge does not read.
func (m MetricConfig) canaryAnalysis() (CanaryAnalysis, []string, error) {
	var ca CanaryAnalysis
	raw, ok := m.AnalysisConfigurations["canary"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return ca, nil, nil
	}
	if err := json.Unmarshal(raw, &ca); err != nil {
		return ca, nil, fmt.Errorf("analysisConfigurations.canary: %w", describeJSONError(err))
	}
	var unknown []string
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) == nil {
		for k, v := range top {
			if !slices.Contains(canaryKeys[""], k) {
				unknown = append(unknown, k)
				continue
			}
			if sub, ok := canaryKeys[k]; ok {
				var inner map[string]json.RawMessage
				if json.Unmarshal(v, &inner) == nil {
					for ik := range inner {
						if !slices.Contains(sub, ik) {
							unknown = append(unknown, k+"."+ik)
						}
					}
				}
			}
		}
	}
	slices.Sort(unknown) // the notes read the same at every import
	return ca, unknown, nil
}
