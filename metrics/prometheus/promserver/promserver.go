// Package promserver runs a real Prometheus (Debian's /usr/bin/prometheus) on a free
// loopback port, optionally on a TSDB backfilled with promtool, for tests and for
// `canaryd eval --backend prometheus`. It never talks to anything but loopback and never
// leaves a process behind: Stop ends the one it started.
package promserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/canaryd/canaryd/internal/syncbuf"
)

// ErrMissing wraps the error of a binary not found in PATH.
var ErrMissing = errors.New("not found in PATH (install Debian's prometheus package: run `make deps` or scripts/ensure-deps.sh)")

// Options says how to run Prometheus.
type Options struct {
	// DataDir is the TSDB directory (--storage.tsdb.path); it must exist.
	DataDir string
	// ConfigFile is the prometheus.yml to load.
	ConfigFile string
	// Retention is --storage.tsdb.retention.time; 0 keeps Prometheus' default (15d).
	// Backfilled data older than it would be deleted at start.
	Retention time.Duration
	// StartTimeout bounds start-up (TSDB replay included); defaults to 60s.
	StartTimeout time.Duration
	// Tries is how many ports to try (another process may take a free port between the
	// look and the bind); defaults to 3.
	Tries int
}

// Server is a running Prometheus.
type Server struct {
	// URL is its base URL, http://127.0.0.1:port.
	URL string

	cmd    *exec.Cmd
	exited chan error
	logs   *syncbuf.Buffer
	once   sync.Once
}

// Binary returns the path of a binary (prometheus, promtool) or an error wrapping ErrMissing.
func Binary(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s %w: %v", name, ErrMissing, err)
	}
	return path, nil
}

// Backfill writes an OpenMetrics file into dataDir as TSDB blocks with
// `promtool tsdb create-blocks-from openmetrics`.
func Backfill(ctx context.Context, openMetrics, dataDir string) error {
	bin, err := Binary("promtool")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, bin, "tsdb", "create-blocks-from", "openmetrics", openMetrics, dataDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool backfill of %s: %w\n%s", openMetrics, err, out)
	}
	return nil
}

// Start runs Prometheus and returns once /-/ready answers 200.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := Binary("prometheus")
	if err != nil {
		return nil, err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	var lastErr error
	for range o.Tries {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, bin, o, addr)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, bin string, o Options, addr string) (*Server, error) {
	args := []string{
		"--config.file=" + o.ConfigFile,
		"--storage.tsdb.path=" + o.DataDir,
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}
	if o.Retention > 0 {
		// Prometheus reads whole units; hours keep any retention exact enough.
		args = append(args, fmt.Sprintf("--storage.tsdb.retention.time=%dh", int64(o.Retention.Hours()+0.5)))
	}
	s := &Server{URL: "http://" + addr, logs: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	// Not CommandContext: the server outlives the start-up context; Stop ends it.
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.exited <- s.cmd.Wait() }()

	rctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-s.exited:
			s.exited <- err // Stop reads it again
			return nil, fmt.Errorf("prometheus exited before ready (%v):\n%s", err, s.logs.String())
		case <-rctx.Done():
			s.Stop()
			return nil, fmt.Errorf("prometheus not ready after %s: %w:\n%s", o.StartTimeout, rctx.Err(), s.logs.String())
		case <-tick.C:
		}
		if ready(rctx, s.URL) {
			return s, nil
		}
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// Logs is what the process printed so far.
func (s *Server) Logs() string { return s.logs.String() }

// Config is a prometheus.yml with a global scrape interval and the given scrape targets
// (job "test"); with no targets it scrapes nothing.
func Config(scrapeInterval time.Duration, targets ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", scrapeInterval, scrapeInterval)
	if len(targets) > 0 {
		b.WriteString("scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets:\n")
		for _, target := range targets {
			fmt.Fprintf(&b, "          - %q\n", target)
		}
	}
	return b.String()
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

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// WriteConfig writes Config(...) to path.
func WriteConfig(path string, scrapeInterval time.Duration, targets ...string) error {
	if err := os.WriteFile(path, []byte(Config(scrapeInterval, targets...)), 0o644); err != nil {
		return fmt.Errorf("write prometheus config: %w", err)
	}
	return nil
}
