package judge

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateResults = flag.Bool("update-kayenta", false, "rewrite the Kayenta agreement tables in benchmarks/RESULTS.md")

// kayentaOutcome is what a case of Kayenta's suites asserts, or canaryd's documented
// answer where it differs by design.
type kayentaOutcome struct {
	Classification string    `json:"classification"` // Kayenta's label: Pass, High, Low, Nodata
	Critical       *bool     `json:"critical"`
	Deviation      any       `json:"deviation"` // a number, or "NaN"
	Reason         string    `json:"reason"`    // "not empty"
	Score          *float64  `json:"score"`
	GroupScores    []float64 `json:"group_scores"`
}

// classifierCase is one test of Kayenta's ClassifierSuite: the classifier's parameters
// as the Scala test sets them; the vectors are in the file.
type classifierCase struct {
	Test               string         `json:"test"`
	File               string         `json:"file"`
	Classifier         string         `json:"classifier"` // MeanInequalityClassifier when not Mann-Whitney
	Tolerance          float64        `json:"tolerance"`
	Confidence         float64        `json:"confidence"`
	EffectThresholds   []float64      `json:"effect_thresholds"`   // (decrease, increase)
	CriticalThresholds []float64      `json:"critical_thresholds"` // (decrease, increase)
	Measure            string         `json:"measure"`
	Direction          Direction      `json:"direction"`
	NaNStrategy        string         `json:"nan_strategy"`
	Critical           bool           `json:"critical"`
	Kayenta            kayentaOutcome `json:"kayenta"`
	// Canaryd is canaryd's answer where it differs by design, and Why says why.
	Canaryd *kayentaOutcome `json:"canaryd"`
	Why     string          `json:"why"`
}

type scorerCase struct {
	Test         string             `json:"test"`
	GroupWeights map[string]float64 `json:"group_weights"`
	Metrics      []struct {
		Name           string   `json:"name"`
		Classification string   `json:"classification"`
		Groups         []string `json:"groups"`
		Critical       bool     `json:"critical"`
	} `json:"metrics"`
	Kayenta kayentaOutcome  `json:"kayenta"`
	Canaryd *kayentaOutcome `json:"canaryd"`
	Why     string          `json:"why"`
}

func readSuite[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kayenta", name))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Cases []T `json:"cases"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s.Cases
}

// kayentaLabel maps a canaryd classification onto Kayenta's label for the same outcome.
func kayentaLabel(r MetricResult) string {
	switch r.Classification {
	case ClassPass:
		return "Pass"
	case ClassHigh:
		return "High"
	case ClassLow:
		return "Low"
	case ClassNoData:
		if r.MustHaveData && !r.Critical {
			return "NodataFailMetric"
		}
		return "Nodata"
	}
	return "Error"
}

// spec is the canaryd spec a migrated config gets for the case's classifier: Kayenta's
// measure, tolerance, thresholds and direction, one point per cohort enough.
func (c classifierCase) spec() MetricSpec {
	s := MetricSpec{
		Name: "m", Kind: KindMannWhitney, Direction: c.Direction, Confidence: c.Confidence,
		EffectSize: EffectMeanRatio, Tolerance: c.Tolerance, Critical: c.Critical, MinPoints: 1,
	}
	if c.Measure == "cles" {
		s.EffectSize = EffectCLES
	}
	if c.NaNStrategy == "replace" {
		s.NaNStrategy = NaNZero
	}
	if len(c.EffectThresholds) == 2 {
		s.AllowedDecrease, s.AllowedIncrease = c.EffectThresholds[0], c.EffectThresholds[1]
	}
	if len(c.CriticalThresholds) == 2 {
		s.CriticalDecrease, s.CriticalIncrease = c.CriticalThresholds[0], c.CriticalThresholds[1]
	}
	if c.Classifier != "" {
		// Kayenta's MeanInequalityClassifier has no parameters and no counterpart: the
		// case is judged as NetflixACAJudge would judge a config with defaults.
		s.Tolerance, s.Confidence = DefaultKayentaTolerance, 0.98
	}
	return s
}

// TestKayentaClassifierSuite runs every test of Kayenta's ClassifierSuite through
// canaryd's judge under Kayenta's semantics (effect_size, tolerance, critical bounds),
// asserting Kayenta's answer, or canaryd's documented one where it differs by design.
func TestKayentaClassifierSuite(t *testing.T) {
	cases := readSuite[classifierCase](t, "classifier-suite.json")
	if len(cases) != 37 {
		t.Fatalf("%d cases, the suite has 37", len(cases))
	}
	var rows []string
	var s Scratch
	for _, tc := range cases {
		want := tc.Kayenta
		if tc.Canaryd != nil {
			want = *tc.Canaryd
			if tc.Why == "" {
				t.Errorf("%s: canaryd differs without a why", tc.Test)
			}
		}
		var got MetricResult
		t.Run(tc.Test, func(t *testing.T) {
			kc := loadKayenta(t, tc.File)
			got = s.Classify(tc.spec(), kc.baseline, kc.canary)
			if l := kayentaLabel(got); want.Classification != "" && l != want.Classification {
				t.Errorf("classification %s, want %s: %s", l, want.Classification, got.Reason)
			}
			if crit := got.Critical && (got.Failed() || got.Unjudged()); want.Critical != nil && crit != *want.Critical {
				t.Errorf("critical %v, want %v: %s", crit, *want.Critical, got.Reason)
			}
			switch d := want.Deviation.(type) {
			case string:
				if r := got.KayentaRatio(); !math.IsNaN(r) {
					t.Errorf("ratio %v, want NaN", r)
				}
			case float64:
				if r := got.KayentaRatio(); r != d {
					t.Errorf("ratio %v, want %v", r, d)
				}
			}
			if want.Reason != "" && got.Reason == "" {
				t.Errorf("empty reason")
			}
		})
		rows = append(rows, agreementRow(tc.Test, outcome(tc.Kayenta), outcome(want), tc.Why))
	}
	checkTable(t, "classifier", rows)
}

// TestKayentaScorerSuite scores the metric results of every test of Kayenta's
// ScorerSuite with score rules kayenta.
func TestKayentaScorerSuite(t *testing.T) {
	cases := readSuite[scorerCase](t, "scorer-suite.json")
	if len(cases) != 13 {
		t.Fatalf("%d cases, the suite has 13", len(cases))
	}
	labels := map[string]Classification{"Pass": ClassPass, "High": ClassHigh, "Low": ClassLow, "Nodata": ClassNoData}
	var rows []string
	for _, tc := range cases {
		want := tc.Kayenta
		if tc.Canaryd != nil {
			want = *tc.Canaryd
		}
		t.Run(tc.Test, func(t *testing.T) {
			var results []MetricResult
			for _, m := range tc.Metrics {
				c, ok := labels[m.Classification]
				if !ok {
					t.Fatalf("label %q", m.Classification)
				}
				results = append(results, MetricResult{Name: m.Name, Group: m.Groups[0], Groups: m.Groups,
					Kind: KindMannWhitney, Classification: c, Critical: m.Critical})
			}
			got := Score(results, tc.GroupWeights, Thresholds{Rules: RulesKayenta})
			if want.Score != nil && got.Score != *want.Score {
				t.Errorf("score %v, want %v (%s)", got.Score, *want.Score, got.Reason)
			}
			if want.GroupScores != nil {
				var gs []float64
				for _, g := range got.Groups {
					gs = append(gs, g.Score)
				}
				if fmt.Sprint(gs) != fmt.Sprint(want.GroupScores) {
					t.Errorf("group scores %v, want %v", gs, want.GroupScores)
				}
			}
		})
		rows = append(rows, agreementRow(tc.Test, outcome(tc.Kayenta), outcome(want), tc.Why))
	}
	checkTable(t, "scorer", rows)
}

// outcome renders an expected outcome for the agreement table.
func outcome(o kayentaOutcome) string {
	var parts []string
	if o.Classification != "" {
		parts = append(parts, o.Classification)
	}
	if o.Critical != nil {
		parts = append(parts, map[bool]string{true: "critical", false: "not critical"}[*o.Critical])
	}
	if o.Deviation != nil {
		parts = append(parts, fmt.Sprintf("ratio %v", o.Deviation))
	}
	if o.Reason != "" {
		parts = append(parts, "reason "+o.Reason)
	}
	if o.Score != nil {
		parts = append(parts, fmt.Sprintf("score %v", *o.Score))
	}
	if o.GroupScores != nil {
		parts = append(parts, fmt.Sprintf("groups %v", o.GroupScores))
	}
	return strings.Join(parts, ", ")
}

func agreementRow(test, kayenta, canaryd, why string) string {
	agrees := "yes"
	if kayenta != canaryd {
		agrees = "no: " + why
	}
	return fmt.Sprintf("| %s | %s | %s | %s |", test, kayenta, canaryd, agrees)
}

// checkTable keeps the agreement table in benchmarks/RESULTS.md the one the test
// computes (go test ./judge -run TestKayenta -update-kayenta rewrites it).
func checkTable(t *testing.T, suite string, rows []string) {
	t.Helper()
	begin := fmt.Sprintf("<!-- kayenta-%s-suite: begin (go test ./judge -run TestKayenta -update-kayenta) -->", suite)
	end := fmt.Sprintf("<!-- kayenta-%s-suite: end -->", suite)
	table := begin + "\n| Kayenta test | Kayenta asserts | canaryd answers | agrees |\n| --- | --- | --- | --- |\n" +
		strings.Join(rows, "\n") + "\n" + end
	path := filepath.Join("..", "benchmarks", "RESULTS.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s table (markers %q … %q)", path, suite, begin, end)
	}
	if doc[i:j+len(end)] == table {
		return
	}
	if !*updateResults {
		t.Errorf("the %s agreement table in %s is stale; rerun with -update-kayenta. Want:\n%s", suite, path, table)
		return
	}
	if err := os.WriteFile(path, []byte(doc[:i]+table+doc[j+len(end):]), 0o644); err != nil {
		t.Fatal(err)
	}
}
