package argo

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	log "github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"github.com/canaryd/canaryd/internal/syncbuf"
)

// binPath is the canaryd binary the tests run, built once by TestMain from the main
// module (without -race: the main module's own tests run the daemon under it).
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "canaryd-argo")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "canaryd")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/canaryd")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build canaryd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a `canaryd serve` process on testdata/canaryd.yml, with server.auth on and
// Argo's token in CANARYD_ARGO_TOKEN.
type daemon struct {
	url   string
	token string
	logs  *syncbuf.Buffer
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	d := &daemon{url: "http://" + addr, token: base64.RawURLEncoding.EncodeToString(b), logs: &syncbuf.Buffer{}}
	cmd := exec.Command(binPath, "serve", "--config", "testdata/canaryd.yml", "--storage", filepath.Join(t.TempDir(), "canaryd.db"),
		"--listen", addr, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "CANARYD_ARGO_TOKEN="+d.token)
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if strings.Contains(d.logs.String(), d.token) {
			t.Error("canaryd's log holds the token")
		}
		if t.Failed() {
			t.Logf("canaryd log:\n%s", d.logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("canaryd exited before ready:\n%s", d.logs.String())
		default:
		}
		if resp, err := http.Get(d.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("canaryd not ready after 30s:\n%s", d.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
