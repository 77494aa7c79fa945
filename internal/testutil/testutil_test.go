package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNeedsBinaries is run by TestMissingBinary in a child test binary with an empty
// PATH; on its own (no CANARYD_TESTUTIL_CHILD) it does nothing.
func TestNeedsBinaries(t *testing.T) {
	if os.Getenv("CANARYD_TESTUTIL_CHILD") == "" {
		t.Skip("run by TestMissingBinary")
	}
	switch os.Getenv("CANARYD_TESTUTIL_CHILD") {
	case "chromium":
		Chromium(t)
	default:
		LookPath(t, os.Getenv("CANARYD_TESTUTIL_CHILD"))
	}
	t.Log("REACHED")
}

// A test that needs Chromium, prometheus or promtool on a machine without them is skipped
// under -short and fails without it, both naming `make deps`; the test body never runs.
func TestMissingBinary(t *testing.T) {
	tests := []struct {
		name     string
		binary   string
		short    bool
		wantFail bool
		want     string
	}{
		{"chromium short", "chromium", true, false, "--- SKIP: TestNeedsBinaries"},
		{"chromium full", "chromium", false, true, "--- FAIL: TestNeedsBinaries"},
		{"prometheus short", "prometheus", true, false, "--- SKIP: TestNeedsBinaries"},
		{"promtool full", "promtool", false, true, "--- FAIL: TestNeedsBinaries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-test.run=^TestNeedsBinaries$", "-test.v"}
			if tc.short {
				args = append(args, "-test.short")
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
			cmd.Env = append(os.Environ(), "PATH="+t.TempDir(), "CHROMIUM=", "CANARYD_TESTUTIL_CHILD="+tc.binary)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Fatalf("child failed %v (%v), want %v:\n%s", failed, err, tc.wantFail, out)
			}
			for _, want := range []string{tc.want, tc.binary + " ", "not found on PATH", "`make deps`"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(string(out), "REACHED") {
				t.Errorf("the test body ran without its binary:\n%s", out)
			}
		})
	}
}
