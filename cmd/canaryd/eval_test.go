package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/internal/testutil"
)

func TestEvalCommand(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "eval.svg")
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
		wantSVG   bool
		wantJSON  bool
	}{
		{name: "table and plot",
			args: []string{"--config", "../../configs/golden-signals-mannwhitney.yml", "--runs", "4", "--runs-ab", "4", "--scenarios", "aa,errors-x10",
				"--variant", "tuned=golden-signals:error-rate.allowed_increase=1.5", "--svg", svg, "--quiet"},
			code: 0, stdoutHas: "| tuned | errors-x10 | 4 | 100.0 (51.0–100.0) |", wantSVG: true},
		{name: "json",
			args: []string{"--config", "../../configs/golden-signals-mannwhitney.yml", "--runbook=false", "--runs", "3", "--runs-ab", "0", "--scenarios", "aa", "--json", "--quiet"},
			code: 0, wantJSON: true},
		{name: "sequential preset on the synthetic provider",
			args: []string{"--config", "../../configs/golden-signals.yml", "--runs", "2", "--runs-ab", "4", "--scenarios", "aa,errors-x10", "--quiet"},
			code: 0, stdoutHas: "| golden-signals | errors-x10 | 4 | 100.0 (51.0–100.0) |"},
		{name: "unknown scenario", args: []string{"--scenarios", "aa,nope"}, code: 2, stderrHas: `unknown scenario "nope"`},
		{name: "oracle without prometheus", args: []string{"--oracle"}, code: 2, stderrHas: "--oracle and --oracle-only need --backend prometheus"},
		{name: "bad variant", args: []string{"--config", "../../configs/golden-signals-mannwhitney.yml", "--variant", "x=missing:warmup=1m"}, code: 2, stderrHas: `no analysis "missing"`},
		{name: "no runs", args: []string{"--runs", "0", "--runs-ab", "0"}, code: 2, stderrHas: "usage: canaryd eval"},
		{name: "missing file", args: []string{"--config", "nope.yml"}, code: 1, stderrHas: "nope.yml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runEval(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdoutHas) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdoutHas, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrHas, stderr.String())
			}
			if tc.wantSVG {
				b, err := os.ReadFile(svg)
				if err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
					t.Errorf("plot: %v %.40q", err, b)
				}
			}
			if tc.wantJSON {
				var rep struct {
					Rows []struct {
						Target string `json:"target"`
						Runs   int    `json:"runs"`
					} `json:"rows"`
				}
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || len(rep.Rows) != 1 || rep.Rows[0].Runs != 3 {
					t.Errorf("json: %v %+v", err, rep)
				}
			}
		})
	}
}

// TestEvalPrometheus: `canaryd eval --backend prometheus` judges canaries with the
// shipped preset's PromQL on data backfilled into a real Prometheus and prints the table.
func TestEvalPrometheus(t *testing.T) {
	for _, bin := range []string{"promtool", "prometheus"} {
		testutil.LookPath(t, bin)
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas []string
		stderrHas string
	}{
		{name: "table",
			args: []string{"--backend", "prometheus", "--config", "../../configs/golden-signals.yml", "--runs", "2", "--runs-ab", "2",
				"--scenarios", "aa-quiet,errors-x10", "--data-dir", t.TempDir(), "--quiet"},
			stdoutHas: []string{"| golden-signals | aa-quiet (A/A) | 2 |", "| golden-signals | errors-x10 | 2 |", "4 canaries"}},
		{name: "oracle",
			args: []string{"--backend", "prometheus", "--config", "../../configs/golden-signals.yml", "--runs", "2", "--runs-ab", "3",
				"--scenarios", "aa,errors-x10", "--data-dir", t.TempDir(), "--quiet", "--oracle"},
			stdoutHas: []string{"| golden-signals | errors-x10 | 3 |", "The oracle (level 0.01, from the true onset, looks every 1m)",
				"| aa (A/A) | oracle, errors test | 2 |", "| aa (A/A) | oracle, latency test | 2 |", "| errors-x10 | oracle | 3 |",
				"| errors-x10 | golden-signals | 3 |", "Misses of golden-signals", "| errors-x10 | all | | | | "}},
		{name: "oracle only",
			args: []string{"--backend", "prometheus", "--config", "../../configs/golden-signals.yml", "--runs", "3", "--runs-ab", "4",
				"--scenarios", "aa,latency+25%", "--oracle-only"},
			stdoutHas: []string{"| aa (A/A) | oracle, errors test | 3 |", "| latency+25% | oracle | 4 |", "| latency+25% | oracle, α/looks | 4 |"}},
		{name: "unknown scenario", args: []string{"--backend", "prometheus", "--scenarios", "aa,errors-x5-step"}, code: 2,
			stderrHas: `unknown scenario "errors-x5-step", want some of aa,aa-quiet`},
		{name: "unknown backend", args: []string{"--backend", "influx"}, code: 2, stderrHas: `--backend: "influx", want synthetic or prometheus`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runEval(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			for _, want := range tc.stdoutHas {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrHas, stderr.String())
			}
		})
	}
}
