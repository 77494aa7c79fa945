// Package cwtest starts a real moto server (Python's moto, `python3 -m moto.server`, the
// AWS API emulator) on a free loopback port for tests and benchmarks. It is imported only
// from _test.go files; it never talks to anything but loopback.
package cwtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/syncbuf"
)

// Options says how to run moto.
type Options struct {
	// Auth makes moto check every request's credentials against its own IAM (moto's
	// INITIAL_NO_AUTH_ACTION_COUNT=0): only keys of users created in it are accepted.
	Auth bool
}

// Start runs moto and returns its base URL once it answers. It stops with the test.
func Start(t testing.TB, o Options) (url string) {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		t.Fatalf("cwtest: python3 cannot import moto.server (scripts/ensure-deps.sh installs it): %v", err)
	}
	port := freePort(t)
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_CALL_RESET_API=true")
	if o.Auth {
		cmd.Env = append(cmd.Env, "INITIAL_NO_AUTH_ACTION_COUNT=0")
	}
	var logs syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cwtest: start moto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("moto log:\n%s", logs.String())
		}
	})
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/moto-api/data.json", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-done:
			t.Fatalf("cwtest: moto exited before answering:\n%s", logs.String())
		case <-ctx.Done():
			t.Fatalf("cwtest: moto did not answer within 30s:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { return freePort(t) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cwtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
