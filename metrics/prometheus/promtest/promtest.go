// Package promtest starts a real Prometheus (Debian's /usr/bin/prometheus) for tests and
// benchmarks, and serves test exporters whose series grow at known rates. It is imported
// only from _test.go files; it never talks to anything but loopback.
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	bin := requireBinary(t, "prometheus")
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
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
	if err := os.WriteFile(cfgPath, []byte(config(o)), 0o644); err != nil {
		t.Fatalf("promtest: write config: %v", err)
	}

	// The port is free when we look and taken by Prometheus a moment later; another
	// process may win it in between, so a failed start is tried again on a new port.
	var lastErr error
	for try := 0; try < 3; try++ {
		addr := freePort(t)
		url, err := run(t, bin, cfgPath, dataDir, addr, o.StartTimeout)
		if err == nil {
			return url
		}
		lastErr = err
	}
	t.Fatalf("promtest: %v", lastErr)
	return ""
}

func config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", o.ScrapeInterval, o.ScrapeInterval)
	if len(o.ScrapeTargets) > 0 {
		b.WriteString("scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets:\n")
		for _, target := range o.ScrapeTargets {
			fmt.Fprintf(&b, "          - %q\n", target)
		}
	}
	return b.String()
}

// run starts one Prometheus process and waits until /-/ready answers 200.
func run(t testing.TB, bin, cfgPath, dataDir, addr string, timeout time.Duration) (string, error) {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+dataDir,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	url := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return "", fmt.Errorf("prometheus exited before ready (%v):\n%s", err, logs.String())
		case <-ctx.Done():
			stop()
			return "", fmt.Errorf("prometheus not ready after %s:\n%s", timeout, logs.String())
		case <-tick.C:
		}
		if ready(ctx, url) {
			break
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	return url, nil
}

func ready(ctx context.Context, url string) bool {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url+"/-/ready", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Backfill writes the OpenMetrics file into dataDir as TSDB blocks with promtool.
func Backfill(t testing.TB, openMetrics, dataDir string) {
	t.Helper()
	bin := requireBinary(t, "promtool")
	out, err := exec.Command(bin, "tsdb", "create-blocks-from", "openmetrics", openMetrics, dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("promtest: promtool backfill of %s: %v\n%s", openMetrics, err, out)
	}
}

// requireBinary fails (never skips) when a binary is missing: `make test` installs it.
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("promtest: %s not found in PATH (%v); install Debian's prometheus package: run `make deps` or scripts/ensure-deps.sh", name, err)
	}
	return path
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("promtest: find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
