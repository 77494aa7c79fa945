// Package influxtest starts a private InfluxDB 1.x for tests and benchmarks: its data, meta
// and WAL in a temporary directory, HTTP on a free loopback port, reporting off. InfluxQL
// runs on Debian's /usr/bin/influxd (1.6); Flux on InfluxDB 1.8 (FluxVersion) with
// flux-enabled, built once from the module proxy into the user's cache (FluxBinary). It
// is imported only from _test.go files.
package influxtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/syncbuf"
)

// Options says how to run influxd.
type Options struct {
	// Auth turns on authentication; Start then creates an admin user (AdminUser,
	// AdminPassword) before returning.
	Auth bool
	// Flux runs InfluxDB 1.8 (FluxBinary) with flux-enabled, serving /api/v2/query,
	// instead of Debian's 1.6.
	Flux bool
}

// The admin Start creates when Options.Auth is set.
const (
	AdminUser     = "admin"
	AdminPassword = "admin-pw-for-tests"
)

// Server is a running influxd.
type Server struct {
	URL  string
	logs *syncbuf.Buffer
}

// Start runs influxd and returns once /ping answers. It stops with the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	var bin string
	if o.Flux {
		bin = FluxBinary(t)
	} else {
		var err error
		if bin, err = exec.LookPath("influxd"); err != nil {
			t.Fatalf("influxtest: influxd not found (Debian package influxdb; scripts/ensure-deps.sh installs it): %v", err)
		}
	}
	dir := t.TempDir()
	httpPort, rpcPort := freePort(t), freePort(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = %t
  log-enabled = false
%s[continuous_queries]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort, o.Auth, fluxConf(o.Flux))
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	cmd := exec.Command(bin, "-config", confPath)
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), logs: &syncbuf.Buffer{}}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("influxtest: start influxd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("influxd log:\n%s", s.logs.String())
		}
	})
	// 1.8 compiles Flux's standard library at start: several seconds on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/ping", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("influxtest: influxd exited before answering:\n%s", s.logs.String())
		case <-ctx.Done():
			t.Fatalf("influxtest: influxd did not answer within 60s:\n%s", s.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if o.Auth {
		// With auth on and no user yet, InfluxDB 1.x lets exactly this statement through.
		s.Exec(t, fmt.Sprintf("CREATE USER %q WITH PASSWORD '%s' WITH ALL PRIVILEGES", AdminUser, AdminPassword))
	}
	return s
}

// Exec runs one InfluxQL statement (CREATE DATABASE, CREATE USER, …) as the admin.
func (s *Server) Exec(t testing.TB, stmt string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(url.Values{"q": {stmt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(AdminUser, AdminPassword)
	s.check(t, req, http.StatusOK, stmt)
}

// Write posts line protocol into db with millisecond timestamps.
func (s *Server) Write(t testing.TB, db, lines string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/write?"+url.Values{"db": {db}, "precision": {"ms"}}.Encode(), strings.NewReader(lines))
	req.SetBasicAuth(AdminUser, AdminPassword)
	s.check(t, req, http.StatusNoContent, "write")
}

func (s *Server) check(t testing.TB, req *http.Request, want int, what string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("influxtest: %s: %v", what, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want || bytes.Contains(b, []byte(`"error"`)) {
		t.Fatalf("influxtest: %s: HTTP %d: %s", what, resp.StatusCode, b)
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { return freePort(t) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
