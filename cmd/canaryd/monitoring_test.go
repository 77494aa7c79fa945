package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/internal/testutil"
)

// ownMetricNames are the series names canaryd exports: every family of its registry,
// with a histogram's _bucket, _sum and _count.
func ownMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := analysis.NewMetrics(reg)
	// Vectors without a child are not gathered: touch one of each.
	m.Verdicts.WithLabelValues("a", "pass")
	m.Score.WithLabelValues("id", "n", "a")
	m.Classifications.WithLabelValues("a", "m", "pass")
	m.QueryDuration.WithLabelValues("p")
	m.QueryErrors.WithLabelValues("p")
	m.TimeToVerdict.WithLabelValues("a", "pass")
	m.Intervals.WithLabelValues("a", "pass")
	m.TimeToDetect.WithLabelValues("a")
	m.TimeToRollback.WithLabelValues("a")
	m.TimeToRecover.WithLabelValues("a")
	m.InitRecovery([]string{"a"})
	g := guard.NewMetrics(reg)
	g.Actions.WithLabelValues("a", "t", "o")
	g.Attempts.WithLabelValues("a", "t", "r")
	g.BreakerRefusals.WithLabelValues("a")
	g.CooldownSuppressions.WithLabelValues("a")
	g.VerdictToAction.WithLabelValues("a", "o")
	g.AttemptDuration.WithLabelValues("a", "t")
	g.TimeToDecide.WithLabelValues("a")
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

var canarydMetricRe = regexp.MustCompile(`\bcanaryd_[a-z_]+`)

// The dashboard is valid JSON, every query parses as PromQL (promtool checks them as
// recording rules) and names only metrics canaryd exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) < 6 {
		t.Fatalf("%d panels", len(dash.Panels))
	}
	own := ownMetricNames(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for j, tg := range p.Targets {
			for _, name := range canarydMetricRe.FindAllString(tg.Expr, -1) {
				if !own[name] {
					t.Errorf("panel %q queries %s, which canaryd does not export", p.Title, name)
				}
			}
			expr := strings.ReplaceAll(tg.Expr, "$instance", ".*")
			fmt.Fprintf(&rules, "      - record: panel_%d_%d\n        expr: %q\n", i, j, expr)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testutil.LookPath(t, "promtool"), "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query is not valid PromQL: %v\n%s", err, out)
	}
}

// The alerting rules pass promtool's check and their unit tests, and name only metrics
// canaryd exports.
func TestAlertingRules(t *testing.T) {
	pt := testutil.LookPath(t, "promtool")
	if out, err := exec.Command(pt, "check", "rules", "../../monitoring/alerts.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(pt, "test", "rules", "alerts_test.yml")
	cmd.Dir = "../../monitoring"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	b, err := os.ReadFile("../../monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	own := ownMetricNames(t)
	var unknown []string
	for _, name := range canarydMetricRe.FindAllString(string(b), -1) {
		if !own[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("alerts.yml names metrics canaryd does not export: %v", unknown)
	}
}
