package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/web"
)

// levelProvider answers a query "<level> <track>" with 30 points around that level, so
// that a cohort's variables pick its level (the track keeps the two cohorts' queries
// apart, as registration requires).
type levelProvider struct{}

func (levelProvider) Query(_ context.Context, q metrics.Query) (metrics.Series, error) {
	level := map[string]float64{"low": 100, "high": 300}[strings.Fields(q.Text)[0]]
	var pts []metrics.Point
	for i := 0; i < 30; i++ {
		pts = append(pts, metrics.Point{T: q.Start.UnixMilli() + int64(i)*1000, V: level + float64(i%7)})
	}
	return metrics.Series{Streams: []metrics.Stream{{Points: pts}}}, nil
}

const cliConfig = `
server: {min_interval: 100ms}
providers:
  fake: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  cli:
    provider: fake
    interval: 300ms
    step: 100ms
    lifetime: 900ms
    warmup: 100ms
    groups: {errors: 80, latency: 20}
    metrics:
      - name: errors
        group: errors
        query: '{{ .Cohort.errors }} {{ .Cohort.track }}'
        judge: {type: mannwhitney, direction: increase, critical: true}
      - name: latency
        group: latency
        query: '{{ .Cohort.latency }} {{ .Cohort.track }}'
        judge: {type: mannwhitney, direction: increase}
`

// cliServer runs the real API and scheduler on a fake provider.
func cliServer(t *testing.T) string {
	t.Helper()
	cfg, err := config.Parse([]byte(cliConfig), kinds())
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "c.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := analysis.NewScheduler(analysis.Options{Store: st})
	s.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"fake": levelProvider{}}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The whole surface as the daemon serves it (its JSON 404s included), without auth.
	srv := httptest.NewServer(web.New(web.Options{Canaries: s}))
	t.Cleanup(func() {
		srv.Close()
		s.Stop(context.Background())
		st.Close()
	})
	return srv.URL
}

func TestCanaryCLI(t *testing.T) {
	url := cliServer(t)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := dispatch(append(args[:1:1], append([]string{args[1], "--server", url}, args[2:]...)...), &out, &errOut)
		return code, strings.TrimSpace(out.String()), errOut.String()
	}
	cases := []struct {
		name           string
		errors, latecy string
		code           int
		stderr         string
	}{
		{"healthy passes", "low", "low", exitPass, "pass, 3/3 intervals, score 100.0"},
		{"critical regression fails", "high", "low", exitFail, "errors: high: "},
		{"minor regression is marginal", "low", "high", exitMarginal, "score 80.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run("canary", "create", "--analysis", "cli", "--name", "web v2",
				"--baseline", "track=stable", "--baseline", "errors=low", "--baseline", "latency=low",
				"--canary", "track=v2", "--canary", "errors="+tc.errors, "--canary", "latency="+tc.latecy, "--wait", "--poll", "50ms")
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr:\n%s", code, tc.code, errOut)
			}
			if len(out) != 16 { // the id alone, so that ID=$(canaryd canary create …) works
				t.Errorf("stdout %q, want the id", out)
			}
			// get and list see the same canary.
			if code, got, _ := run("canary", "get", out); code != 0 || !strings.Contains(got, `"id": "`+out+`"`) {
				t.Errorf("get: %d %s", code, got)
			}
			if code, got, _ := run("canary", "list"); code != 0 || !strings.Contains(got, out) {
				t.Errorf("list: %d %s", code, got)
			}
		})
	}

	t.Run("abort ends wait with 3", func(t *testing.T) {
		code, id, errOut := run("canary", "create", "--analysis", "cli", "--name", "slow", "--lifetime", "1h", "--interval", "10m",
			"--baseline", "track=stable", "--baseline", "errors=low", "--baseline", "latency=low",
			"--canary", "track=v2", "--canary", "errors=low", "--canary", "latency=high")
		if code != 0 {
			t.Fatalf("create: %d %s", code, errOut)
		}
		done := make(chan int)
		go func() {
			code, _, _ := run("canary", "wait", id, "--poll", "20ms")
			done <- code
		}()
		if code, out, errOut := run("canary", "abort", id, "--reason", "bad deploy", "--actuate=false"); code != 0 || out != id+" aborted" {
			t.Fatalf("abort: %d %q %s", code, out, errOut)
		}
		select {
		case code := <-done:
			if code != exitError {
				t.Errorf("wait after abort: %d, want %d", code, exitError)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("wait did not return after the abort")
		}
		if code, _, errOut := run("canary", "promote", id); code != exitCLI || !strings.Contains(errOut, "HTTP 409") {
			t.Errorf("promote after abort: %d %s", code, errOut)
		}
		// An abort of an ended canary says how it ended.
		if code, _, errOut := run("canary", "abort", id); code != exitCLI || !strings.Contains(errOut, "canary has already ended with status aborted") {
			t.Errorf("abort after abort: %d %s", code, errOut)
		}
	})

	// Issue 16 item 8: a retried create with --key prints the same id (and --wait its
	// verdict); the same key with other flags is a 409 naming the flag's field.
	t.Run("key makes create idempotent", func(t *testing.T) {
		args := []string{"canary", "create", "--analysis", "cli", "--name", "web v3", "--key", "web/run-77@4f1c",
			"--baseline", "track=stable", "--baseline", "errors=low", "--baseline", "latency=low",
			"--canary", "track=v3", "--canary", "errors=low", "--canary", "latency=low"}
		code, first, errOut := run(append(args, "--wait", "--poll", "50ms")...)
		if code != exitPass || len(first) != 16 {
			t.Fatalf("first: exit %d, stdout %q, stderr %s", code, first, errOut)
		}
		// The retry after the verdict: the same id, and wait reads the ended canary's verdict.
		code, again, errOut := run(append(args, "--wait", "--poll", "50ms")...)
		if code != exitPass || again != first || !strings.Contains(errOut, "pass, 3/3 intervals") {
			t.Errorf("retry: exit %d, id %q (first %q), stderr %s", code, again, first, errOut)
		}
		changed := append(append([]string{}, args...), "--canary", "errors=high")
		if code, _, errOut := run(changed...); code != exitCLI || !strings.Contains(errOut, "HTTP 409") || !strings.Contains(errOut, "canary.errors") || !strings.Contains(errOut, first) {
			t.Errorf("changed flags: exit %d, stderr %s", code, errOut)
		}
		if code, got, _ := run("canary", "list", "--json"); code != 0 || strings.Count(got, `"web/run-77@4f1c"`) != 1 {
			t.Errorf("list: the key should name one canary: %s", got)
		}
	})

	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown analysis names the field and the valid ones", []string{"canary", "create", "--analysis", "nope", "--name", "x", "--baseline", "errors=low", "--canary", "errors=high"},
			`HTTP 400 from ` + url + `/api/v1/canaries: analysis: unknown analysis "nope"; this server has "cli"`},
		{"missing cohort variable names it", []string{"canary", "create", "--analysis", "cli", "--name", "x",
			"--baseline", "track=stable", "--baseline", "errors=low", "--canary", "track=v2", "--canary", "errors=high"}, "baseline.latency: metric latency needs it\n"},
		{"bad k=v", []string{"canary", "create", "--analysis", "cli", "--baseline", "errors"}, `"errors" is not key=value`},
		{"unknown id", []string{"canary", "wait", "aaaaaaaaaaaaaaaa"}, "HTTP 404"},
		{"unexpected argument", []string{"canary", "list", "extra"}, "usage: canaryd canary list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(tc.args...)
			if code != exitCLI || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d, stderr %q, want %d and %q", code, errOut, exitCLI, tc.stderr)
			}
		})
	}

	// A server that is not there is a CLI failure, never a pass.
	var errOut bytes.Buffer
	if code := dispatch([]string{"canary", "list", "--server", "http://127.0.0.1:1"}, new(bytes.Buffer), &errOut); code != exitCLI {
		t.Errorf("unreachable server: exit %d (%s)", code, errOut.String())
	}
}

// The first-day findings of issue 19 (items 5 and 6): each message says what went wrong
// and where, and the exit code keeps 4 for the command failing.
func TestCanaryCLIFirstDay(t *testing.T) {
	url := cliServer(t)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{name: "unknown subcommand says so", args: []string{"canary", "frobnicate"}, code: exitCLI,
			stderr: []string{`canaryd canary: unknown subcommand "frobnicate"`, "usage: canaryd canary"}},
		{name: "canary --help exits 0", args: []string{"canary", "--help"}, code: exitPass, stdout: "usage: canaryd canary"},
		{name: "wait --help exits 0", args: []string{"canary", "wait", "--help"}, code: exitPass, stderr: []string{"-timeout"}},
		{name: "create --help exits 0 and has --timeout", args: []string{"canary", "create", "--help"}, code: exitPass, stderr: []string{"-timeout", "-wait"}},
		{name: "list --help exits 0", args: []string{"canary", "list", "-h"}, code: exitPass, stderr: []string{"-status"}},
		{name: "--server with /api/v1 names the URL", args: []string{"canary", "get", "abc", "--server", url + "/api/v1"}, code: exitCLI,
			stderr: []string{"HTTP 404 from " + url + "/api/v1/api/v1/canaries/abc: no route GET /api/v1/api/v1/canaries/abc", "without /api/v1"}},
		{name: "wait on a daemon never reached", args: []string{"canary", "wait", "abc", "--server", "http://127.0.0.1:1", "--timeout", "300ms", "--poll", "100ms"}, code: exitCLI,
			stderr: []string{"could not reach http://127.0.0.1:1/api/v1/canaries/abc: ", "connection refused (gave up after"}},
		{name: "create --wait --timeout on a daemon never reached", args: []string{"canary", "create", "--analysis", "cli", "--server", "http://127.0.0.1:1", "--wait", "--timeout", "1s"}, code: exitCLI,
			stderr: []string{"could not reach http://127.0.0.1:1/api/v1/canaries: "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(tc.args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.stdout)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errOut.String(), want) {
					t.Errorf("stderr %q lacks %q", errOut.String(), want)
				}
			}
			if strings.Contains(errOut.String(), "no verdict after") && tc.code == exitCLI && strings.Contains(tc.name, "never reached") {
				t.Errorf("a daemon never reached reads as a timeout: %s", errOut.String())
			}
		})
	}
}
