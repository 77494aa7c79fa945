package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `canaryd import kayenta` prints YAML that `canaryd check-config` accepts, and a config
// it cannot carry over is exit 1 with the reason.
func TestImportKayentaProcess(t *testing.T) {
	src := filepath.Join("..", "..", "config", "kayenta", "testdata", "checkout.json")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), binPath, "import", "kayenta", src)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{`  "checkout-canary":`, "score: {rules: kayenta, pass: 90, marginal: 70}", `# left out: metric "heap"`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("import printed no %q:\n%s", want, stdout.String())
		}
	}
	out := filepath.Join(t.TempDir(), "checkout.yml")
	if err := os.WriteFile(out, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := exec.CommandContext(t.Context(), binPath, "check-config", out).CombinedOutput()
	if err != nil || !strings.Contains(string(check), "ok (1 provider(s), 0 actuator(s), analyses [checkout-canary])") {
		t.Errorf("check-config of the import: %v\n%s", err, check)
	}

	bad := filepath.Join(t.TempDir(), "atlas.json")
	if err := os.WriteFile(bad, []byte(`{"name": "x", "metrics": [{"name": "m", "query": {"type": "atlas"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	cmd = exec.CommandContext(t.Context(), binPath, "import", "kayenta", bad)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || stdout.Len() != 0 ||
		!strings.Contains(stderr.String(), `no metric could be carried over (m: query type "atlas": canaryd has no provider for it`) {
		t.Errorf("import of an atlas config: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}
