package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
)

const storeTestConfig = `
server: {min_interval: 1s}
providers:
  sim: {type: synthetic, seed: 1}
analyses:
  a:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 4s
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

// A damaged store file stops `canaryd serve` with one line naming the file and what to
// do, never a Go trace: bbolt faults (SIGBUS) reading past the end of a truncated file
// and panics on corrupted pages.
func TestServeRefusesDamagedStore(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfg, []byte(storeTestConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	orig, root, pageSize, used := writeStore(t, filepath.Join(dir, "orig.db"))
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, used/2); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"corrupted page", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0x5A}, pageSize), int64(root)*int64(pageSize)); err != nil {
				t.Fatal(err)
			}
		}, "bucket intervals"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "canaryd.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path)
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), binPath, "serve", "--config", cfg, "--storage", path, "--listen", freeAddr(t), "--log-format", "console")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("want exit code 1, got %v\nstderr:\n%s", err, stderr.String())
			}
			out := stdout.String() + stderr.String()
			for _, bad := range []string{"goroutine", "panic", "SIGBUS", "SIGSEGV", "fatal error"} {
				if strings.Contains(out, bad) {
					t.Errorf("output holds %q:\n%s", bad, out)
				}
			}
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if strings.Contains(l, path) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("want one line naming %s, got %d:\n%s", path, len(lines), stderr.String())
			}
			for _, want := range []string{"canaryd: store " + path + " is damaged", tc.want, "restore it from a backup", "move it aside"} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("line %q lacks %q", lines[0], want)
				}
			}
			// The file is left as it was, for the operator to restore or move.
			if after, err := os.ReadFile(path); err != nil || len(after) == 0 {
				t.Errorf("the damaged file was changed: %d bytes, %v", len(after), err)
			}
		})
	}
}

// writeStore fills a store file with a few dozen canaries and their intervals, and returns
// the root page of its intervals bucket, the page size and the bytes in use.
func writeStore(t *testing.T, path string) (string, uint64, int, int64) {
	t.Helper()
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.DB().NoSync = true
	ctx := t.Context()
	for i := range 40 {
		c := &analysis.Canary{ID: fmt.Sprintf("c%03d", i), Name: "web", Analysis: "a", AnalysisHash: "h",
			Status: analysis.StatusPass, Intervals: 3, NextIndex: 1, CreatedAt: time.Now()}
		if err := s.Create(ctx, c, []byte("src")); err != nil {
			t.Fatal(err)
		}
		for j := 1; j <= 3; j++ {
			pts := make([]analysis.TimeValue, 80)
			for k := range pts {
				pts[k] = analysis.TimeValue{float64(k), float64(k)}
			}
			r := &analysis.IntervalResult{CanaryID: c.ID, Index: j, Points: []analysis.MetricPoints{{Metric: "m", Baseline: pts, Canary: pts}}}
			if _, err := s.RecordInterval(ctx, r, func(c *analysis.Canary) ([]analysis.Action, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	var root uint64
	var used int64
	if err := s.DB().View(func(tx *bolt.Tx) error {
		root, used = uint64(tx.Bucket([]byte("intervals")).RootPage()), tx.Size()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pageSize := s.DB().Info().PageSize
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, root, pageSize, used
}

// server.retention deletes ended canaries (with their intervals and actions) once they
// are older than it; running ones and younger ended ones stay; the audit log keeps its
// entries of the deleted canaries.
func TestServeRetention(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "canaryd.yml")
	config := strings.Replace(strings.Replace(storeTestConfig, "server: {min_interval: 1s}", "server: {min_interval: 1s, retention: 3s}", 1), "lifetime: 4s", "lifetime: 1h", 1)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfg, filepath.Join(dir, "c.db"))
	reg := func(name string) string {
		var c canaryJSON
		body := map[string]any{"name": name, "analysis": "a", "baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "canary"}}
		if code := p.call("POST", "/api/v1/canaries", body, &c); code != 201 {
			t.Fatalf("register %s: %d", name, code)
		}
		return c.ID
	}
	old, running := reg("old"), reg("running")
	if code := p.call("POST", "/api/v1/canaries/"+old+"/abort?actuate=false", nil, nil); code != 200 {
		t.Fatalf("abort: %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.call("GET", "/api/v1/canaries/"+old, nil, nil) != 404 {
		if time.Now().After(deadline) {
			t.Fatalf("the ended canary is still there 20 s after it ended, with retention 3s:\n%s", p.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var list struct {
		Canaries []canaryJSON `json:"canaries"`
	}
	if code := p.call("GET", "/api/v1/canaries", nil, &list); code != 200 || len(list.Canaries) != 1 || list.Canaries[0].ID != running {
		t.Errorf("after retention: %d %+v, want only the running canary", code, list.Canaries)
	}
	var audit struct {
		Entries []struct {
			Kind, Canary string
		} `json:"entries"`
	}
	if code := p.call("GET", "/api/v1/audit?canary="+old, nil, &audit); code != 200 || len(audit.Entries) == 0 || audit.Entries[0].Kind != "abort" {
		t.Errorf("audit of the deleted canary: %d %+v", code, audit.Entries)
	}
	if m := p.metricsText(); !strings.Contains(m, `canaryd_canaries{status="aborted"} 0`) || !strings.Contains(m, `canaryd_canaries{status="running"} 1`) {
		t.Errorf("canaryd_canaries after retention:\n%s", grepLines(m, "canaryd_canaries{"))
	}
	if !strings.Contains(p.logs.String(), "retention: deleted ended canaries") {
		t.Error("the log does not say what retention deleted")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
