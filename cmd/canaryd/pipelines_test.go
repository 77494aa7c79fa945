package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// pipelineConfig serves the analysis the pipeline examples name (golden-signals, with the
// app variable and track cohorts) on the synthetic provider, judged in seconds: app
// "checkout" is healthy, app "broken" has its canary's error rate ×8.
const pipelineConfig = `
server: {min_interval: 1s}
providers:
  sim:
    type: synthetic
    seed: 3
    regressions:
      canary-broken:
        error_rate: {ratio: 8}
analyses:
  golden-signals:
    provider: sim
    interval: 3s
    step: 500ms
    lifetime: 6s
    warmup: 0s
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }}-{{ .Vars.app }} streams=5'
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2, critical: true}
`

// pipelineStep is one example's canary step: the script, and how the CI runs it.
type pipelineStep struct {
	script string
	shell  []string // the CI's shell command, the script's path appended
	// env is what the CI sets for a run of commit sha, beside CANARYD_URL and APP.
	env func(sha string) []string
}

// pipelineSteps reads the canary step out of each example under examples/pipelines, as
// each CI would run it: GitHub's run: with its default bash, GitLab's script: lines with
// sh -e, the shell example as it is.
func pipelineSteps(t *testing.T) map[string]pipelineStep {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "pipelines")
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var gh struct {
		Jobs map[string]struct {
			Env   map[string]string `yaml:"env"`
			Steps []struct {
				Name string `yaml:"name"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	read("github-actions.yml", &gh)
	job := gh.Jobs["canary"]
	var ghRun string
	for _, s := range job.Steps {
		if s.Name == "Canary analysis" {
			ghRun = s.Run
		}
	}
	if ghRun == "" || job.Env["CANARYD_URL"] == "" || job.Env["APP"] == "" {
		t.Fatalf("github-actions.yml: no job canary with env CANARYD_URL and APP and a step \"Canary analysis\": %+v", job)
	}
	var gl struct {
		Job struct {
			Variables map[string]string `yaml:"variables"`
			Script    []string          `yaml:"script"`
		} `yaml:"canary-analysis"`
	}
	read("gitlab-ci.yml", &gl)
	glJob := gl.Job
	if len(glJob.Script) == 0 || glJob.Variables["CANARYD_URL"] == "" || glJob.Variables["APP"] == "" {
		t.Fatalf("gitlab-ci.yml: no job canary-analysis with variables CANARYD_URL and APP and a script: %+v", glJob)
	}
	sh, err := os.ReadFile(filepath.Join(dir, "canary.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]pipelineStep{
		// GitHub's default shell on Linux runners: bash --noprofile --norc -eo pipefail {0}.
		"github-actions": {ghRun, []string{"bash", "--noprofile", "--norc", "-eo", "pipefail"}, func(sha string) []string {
			return []string{"GITHUB_SHA=" + sha, "GITHUB_REPOSITORY=acme/shop"}
		}},
		"gitlab-ci": {strings.Join(glJob.Script, "\n"), []string{"sh", "-e"}, func(sha string) []string {
			return []string{"CI_COMMIT_SHA=" + sha, "CI_COMMIT_SHORT_SHA=" + sha[:8], "CI_PROJECT_PATH=acme/platform/shop"}
		}},
		"shell": {string(sh), []string{"sh"}, func(sha string) []string { return []string{"VERSION=" + sha} }},
	}
}

var canaryIDRe = regexp.MustCompile(`canar(?:y|ies/)\s*([a-z2-7]{16})`)

// Issue 16 item 8: each pipeline example registers with a key, so that running its step
// again (a retried job, a re-run pipeline) prints the same canary and its verdict rather
// than registering a second one; a regressing deploy fails the step with exit 1. The
// steps run against the real daemon, with the canaryd binary on PATH, as a CI runs them.
func TestPipelineExamples(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "canaryd.yml")
	if err := os.WriteFile(cfg, []byte(pipelineConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfg, filepath.Join(t.TempDir(), "c.db"))
	path := filepath.Dir(binPath) + string(os.PathListSeparator) + os.Getenv("PATH")
	for name, step := range pipelineSteps(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "step.sh")
			if err := os.WriteFile(file, []byte(step.script), 0o700); err != nil {
				t.Fatal(err)
			}
			run := func(app, sha string) (code int, id, out string) {
				t.Helper()
				cmd := exec.CommandContext(t.Context(), step.shell[0], append(step.shell[1:], file)...)
				cmd.Env = append([]string{"PATH=" + path, "HOME=" + t.TempDir(), "CANARYD_URL=" + p.url, "APP=" + app}, step.env(sha)...)
				var buf bytes.Buffer
				cmd.Stdout, cmd.Stderr = &buf, &buf
				err := cmd.Run()
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if m := canaryIDRe.FindStringSubmatch(buf.String()); m != nil {
					id = m[1]
				}
				return code, id, buf.String()
			}
			sha := fmt.Sprintf("%x", []byte(name+"-healthy-commit"))[:40]
			code, id, out := run("checkout", sha)
			if code != exitPass || id == "" {
				t.Fatalf("healthy deploy: exit %d, id %q, output:\n%s", code, id, out)
			}
			// The step again, as a retried job runs it: the same canary, its verdict.
			code, again, out := run("checkout", sha)
			if code != exitPass || again != id || !strings.Contains(out, "pass") {
				t.Errorf("the step again: exit %d, canary %q (first %q), output:\n%s", code, again, id, out)
			}
			var c struct {
				Key string `json:"key"`
			}
			p.call("GET", "/api/v1/canaries/"+id, nil, &c)
			var page struct {
				Canaries []struct {
					ID string `json:"id"`
				} `json:"canaries"`
			}
			if c.Key == "" || !strings.Contains(c.Key, sha) {
				t.Errorf("canary %s has key %q, want one naming the commit %s", id, c.Key, sha)
			} else if p.call("GET", "/api/v1/canaries?key="+url.QueryEscape(c.Key), nil, &page); len(page.Canaries) != 1 || page.Canaries[0].ID != id {
				t.Errorf("canaries with key %q: %+v, want %s alone", c.Key, page.Canaries, id)
			}
			// A regressing deploy of another commit: a new canary, which fails the step.
			code, bad, out := run("broken", fmt.Sprintf("%x", []byte(name+"-broken-commit!"))[:40])
			if code != exitFail || bad == "" || bad == id {
				t.Errorf("regressing deploy: exit %d (want %d), canary %q, output:\n%s", code, exitFail, bad, out)
			}
		})
	}
}
