// Package promtest starts a real Prometheus (Debian's /usr/bin/prometheus) for tests and
// benchmarks, and serves test exporters whose series grow at known rates. It is imported
// only from _test.go files; it never talks to anything but loopback.
package promtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/testutil"
	"github.com/canaryd/canaryd/metrics/prometheus/promserver"
)

// Options says how to run Prometheus. The zero value scrapes nothing.
type Options struct {
	// ScrapeTargets are host:port addresses scraped at ScrapeInterval under job "test".
	ScrapeTargets []string
	// ScrapeInterval defaults to 1s.
	ScrapeInterval time.Duration
	// OpenMetrics, when set, is the path of an OpenMetrics file backfilled into the TSDB with
	// `promtool tsdb create-blocks-from openmetrics` before Prometheus starts.
	OpenMetrics string
	// StartTimeout bounds start-up (TSDB replay included); defaults to 60s.
	StartTimeout time.Duration
}

// Start runs Prometheus scraping targets every second on a free loopback port and returns
// its base URL once it is ready. It stops with the test.
func Start(t testing.TB, scrapeTargets ...string) (url string) {
	t.Helper()
	return StartWith(t, Options{ScrapeTargets: scrapeTargets})
}

// StartWith is Start with every option.
func StartWith(t testing.TB, o Options) (url string) {
	t.Helper()
	testutil.LookPath(t, "prometheus")
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	if o.OpenMetrics != "" {
		Backfill(t, o.OpenMetrics, dataDir)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := promserver.WriteConfig(cfgPath, o.ScrapeInterval, o.ScrapeTargets...); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	s, err := promserver.Start(context.Background(), promserver.Options{
		DataDir: dataDir, ConfigFile: cfgPath, StartTimeout: o.StartTimeout,
		// Backfilled data may be old: keep it whatever its age.
		Retention: 100 * 365 * 24 * time.Hour,
	})
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", s.Logs())
		}
	})
	return s.URL
}

// Backfill writes the OpenMetrics file into dataDir as TSDB blocks with promtool.
func Backfill(t testing.TB, openMetrics, dataDir string) {
	t.Helper()
	testutil.LookPath(t, "promtool")
	if err := promserver.Backfill(context.Background(), openMetrics, dataDir); err != nil {
		t.Fatalf("promtest: %v", err)
	}
}
