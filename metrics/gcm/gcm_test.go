package gcm_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/gcm"
	"github.com/canaryd/canaryd/metrics/gcm/gcmtest"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

func TestQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	target := promtest.ServeExporter(t, promtest.Exporter{Counters: []promtest.Counter{
		{Name: "kubernetes_requests_total", Labels: map[string]string{"track": "canary"}, PerSecond: 3},
	}})
	promURL := promtest.Start(t, target)
	promtest.WaitFor(t, promURL, `rate(kubernetes_requests_total[3s])`, 1, 30*time.Second)
	time.Sleep(2 * time.Second)
	fakes := gcmtest.Start(t, promURL)
	keyFile := gcmtest.ServiceAccountKey(t, fakes.TokenURL)
	cfg := gcm.DefaultConfig()
	cfg.Project, cfg.Endpoint, cfg.CredentialsFile, cfg.Retries = gcmtest.Project, fakes.APIURL, keyFile, 0
	p, err := gcm.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	q := metrics.Query{Text: `sum(rate(kubernetes_requests_total{track="canary"}[3s]))`, Start: now.Add(-3 * time.Second), End: now, Step: time.Second}
	for i := range 2 {
		s, err := p.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 1 || len(s.Streams[0].Points) < 2 {
			t.Fatalf("%+v", s)
		}
		if last := s.Streams[0].Points[len(s.Streams[0].Points)-1]; last.T != now.UnixMilli() || last.V < 2.99 || last.V > 3.01 {
			t.Errorf("query %d: last point %+v, want 3/s at %d", i, last, now.UnixMilli())
		}
	}
	if n := fakes.Tokens(); n != 1 {
		t.Errorf("%d token requests for two queries, want 1 (the token is reused until it expires)", n)
	}
	t.Run("bad query: Prometheus' message", func(t *testing.T) {
		_, err := p.Query(t.Context(), metrics.Query{Text: `sum(rate(x[3s])`, Start: q.Start, End: q.End, Step: time.Second})
		if err == nil || !strings.HasPrefix(err.Error(), "gcm: ") || !strings.Contains(err.Error(), "parse error") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("another project: Google's 404", func(t *testing.T) {
		c := cfg
		c.Project = "someone-elses-project"
		other, err := gcm.New(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.Query(t.Context(), q)
		if err == nil || !strings.HasPrefix(err.Error(), "gcm: ") || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a key the token endpoint refuses", func(t *testing.T) {
		c := cfg
		c.CredentialsFile = gcmtest.ServiceAccountKey(t, fakes.TokenURL+"?refuse")
		b, _ := os.ReadFile(c.CredentialsFile)
		_ = os.WriteFile(c.CredentialsFile, bytes.Replace(b, []byte("canaryd@"), []byte("intruder@"), 1), 0o600)
		bad, err := gcm.New(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Query(t.Context(), q)
		if err == nil || !strings.HasPrefix(err.Error(), "gcm: ") || !strings.Contains(err.Error(), "Invalid JWT Signature") || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*gcm.Config)
		wantErr string
	}{
		{"ok", func(c *gcm.Config) {}, ""},
		{"no project", func(c *gcm.Config) { c.Project = "" }, "project: is required"},
		{"project syntax", func(c *gcm.Config) { c.Project = "My Project" }, "is not a project ID"},
		{"endpoint path", func(c *gcm.Config) { c.Endpoint = "https://monitoring.googleapis.com/v1/projects/x" }, "endpoint: must be a scheme and host only"},
		{"retries", func(c *gcm.Config) { c.Retries = 11 }, "retries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := gcm.DefaultConfig()
			c.Project = gcmtest.Project
			tc.mod(&c)
			err := c.Validate().Err()
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
