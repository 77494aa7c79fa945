package argo

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	log "github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"github.com/canaryd/canaryd/internal/testutil/daemontest"
)

// binPath is the canaryd binary the tests run, built once by TestMain from the main
// module (without -race: the main module's own tests run the daemon under it).
var binPath string

func TestMain(m *testing.M) {
	daemontest.Main(m, "../..", false, &binPath, (*testing.M).Run)
}

// daemon is a `canaryd serve` process on testdata/canaryd.yml, with server.auth on and
// Argo's token in CANARYD_ARGO_TOKEN.
type daemon struct {
	url   string
	token string
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	addr := daemontest.FreeAddr(t)
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	cmd := exec.Command(binPath, "serve", "--config", "testdata/canaryd.yml", "--storage", filepath.Join(t.TempDir(), "canaryd.db"),
		"--listen", addr, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "CANARYD_ARGO_TOKEN="+token)
	p := daemontest.Start(t, cmd, "http://"+addr)
	t.Cleanup(func() {
		p.Kill()
		if strings.Contains(p.Logs.String(), token) {
			t.Error("canaryd's log holds the token")
		}
	})
	return &daemon{url: p.URL, token: token}
}

// canaries lists every canary canaryd holds, through its API.
func (d *daemon) canaries(t *testing.T) []map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", d.url+"/api/v1/canaries?limit=1000", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Canaries []map[string]any `json:"canaries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list canaries: %d %v", resp.StatusCode, err)
	}
	return page.Canaries
}

// templateMetric reads an example AnalysisTemplate as Kubernetes would (strictly: a
// misspelt field fails), checks it as Argo's controller does, and returns its one metric
// with args resolved as Argo resolves them (values given here, secrets included).
func templateMetric(t *testing.T, path string, args map[string]string) v1alpha1.Metric {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict(data, &tmpl); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if tmpl.Kind != "AnalysisTemplate" || tmpl.APIVersion != "argoproj.io/v1alpha1" {
		t.Fatalf("%s: kind %s %s", path, tmpl.APIVersion, tmpl.Kind)
	}
	if err := analysisutil.ValidateMetrics(tmpl.Spec.Metrics); err != nil {
		t.Fatalf("%s: Argo refuses it: %v", path, err)
	}
	if len(tmpl.Spec.Metrics) != 1 {
		t.Fatalf("%s: %d metrics, want 1", path, len(tmpl.Spec.Metrics))
	}
	var in []v1alpha1.Argument
	for name, v := range args {
		in = append(in, v1alpha1.Argument{Name: name, Value: &v})
	}
	merged, err := analysisutil.MergeArgs(in, tmpl.Spec.Args)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	m, err := analysisutil.ResolveMetricArgs(tmpl.Spec.Metrics[0], merged)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return *m
}

// logEntry is the logger Argo's providers take.
func logEntry() log.Entry {
	l := log.New()
	l.SetOutput(os.Stderr)
	return *log.NewEntry(l)
}
