// Package daemontest runs the canaryd binary as a test's child process: it builds it once,
// starts it, waits until it is ready and kills it at the test's end. The process tests
// of cmd/canaryd and of the integrations modules (which import it by path) share it. It
// is imported only from _test.go files.
package daemontest

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/syncbuf"
)

// Build builds ./cmd/canaryd of the main module at root (with -race when race is set,
// which also checks the daemon for data races) into a temporary folder, and returns
// the binary and the function that removes the folder.
func Build(root string, race bool) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "canaryd-bin")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "canaryd")
	args := []string{"-C", root, "build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "./cmd/canaryd")...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build canaryd: %w\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Main is a process test package's TestMain: it builds canaryd (see Build) into *bin,
// runs the tests through run (m.Run, or a wrapper of it that also stops a shared
// server), removes the binary and exits with run's code.
func Main(m *testing.M, root string, race bool, bin *string, run func(*testing.M) int) {
	b, remove, err := Build(root, race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := run(m)
	remove()
	os.Exit(code)
}

// FreeAddr is a loopback address nothing listens on, for --listen.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Proc is a started canaryd.
type Proc struct {
	Cmd  *exec.Cmd
	URL  string
	Logs *syncbuf.Buffer
	// Done is closed when the process has exited; Err then holds how it exited.
	Done chan struct{}
	Err  error
}

// Start starts cmd with its output in Proc.Logs, kills it at the test's end (showing
// its log when the test failed), and waits up to 30 s until url's /readyz answers 200;
// the test fails if it exits before or is not ready by then.
func Start(t testing.TB, cmd *exec.Cmd, url string) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, URL: url, Logs: &syncbuf.Buffer{}, Done: make(chan struct{})}
	// Readiness only: the test's own client checks the certificate where it matters.
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Err = cmd.Wait(); close(p.Done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("canaryd log (%s):\n%s", url, p.Logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.Done:
			t.Fatalf("canaryd exited before ready (%v):\n%s", p.Err, p.Logs.String())
		default:
		}
		if resp, err := probe.Get(url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("canaryd not ready after 30s:\n%s", p.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill is kill -9 (no chance to persist anything more), and waits for the exit.
func (p *Proc) Kill() {
	select {
	case <-p.Done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Done
}
