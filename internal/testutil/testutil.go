// Package testutil holds what the tests of several packages share: the lookup of the
// binaries they run (Chromium, prometheus, promtool: skipped under -short when missing,
// failed otherwise), the actuator event they act on, and dated secret files. It is
// imported only from _test.go files (it links "testing"); code that ships uses
// internal/syncbuf and the like instead.
package testutil

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// Chromium finds the browser: $CHROMIUM, else Debian's chromium on PATH. When there is
// none the test is skipped under -short and fails otherwise (see Missing).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "chromium (or $CHROMIUM, a Chromium binary)")
	return ""
}

// LookPath finds a binary a test runs (prometheus, promtool) on PATH. When it is not
// there the test is skipped under -short and fails otherwise (see Missing).
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return p
}

// Missing ends a test that needs a binary the machine lacks: `go test -short` skips it,
// so a quick run works anywhere; a full run (`make test`, CI) fails, because `make deps`
// (scripts/ensure-deps.sh) installs every such binary and a skip there would hide a
// broken install.
func Missing(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s not found on PATH: skipped under -short; `make deps` installs it", what)
	}
	t.Fatalf("%s not found on PATH: run `make deps` (scripts/ensure-deps.sh installs it)", what)
}

// Event is a canary's failure as the guard hands it to actuator, the one the actuator
// tests act on: canary c1 "web v2" of service web failed analysis golden (a critical
// metric) at 2026-03-01 12:00 UTC and fired on_fail. Tests set what their kind reads
// (Vars, Reason, Score, Failing, Link) on the copy.
func Event(actuator string) actuators.Event {
	return actuators.Event{
		Key: "c1/on_fail/" + actuator, Action: actuators.ActionTrigger, DedupKey: "c1", Actuator: actuator,
		ID: "c1", Name: "web v2", Analysis: "golden", Status: "fail", Kind: "verdict",
		Trigger: "on_fail", Cause: "critical", Service: "web",
		Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// WriteSecret writes a secret file (mode 0600) holding content, modified at mod: the
// rotation tests date each version, so that a rewrite within one clock tick still
// changes the modification time.
func WriteSecret(t testing.TB, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}
