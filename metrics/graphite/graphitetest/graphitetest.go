// Package graphitetest starts a private Graphite for tests and benchmarks: Debian's
// carbon-cache (graphite-carbon) writing whisper files in a temporary directory, and
// graphite-web's Django application (graphite-web) served by Python's wsgiref on a free
// loopback port, reading those files and carbon's cache. It is imported only from
// _test.go files.
package graphitetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/syncbuf"
	"github.com/canaryd/canaryd/metrics/influxdb/influxtest"
)

// Retention is the whisper schema of every metric: 1 s points kept a day, so tests can
// write a point a second.
const Retention = "1s:1d"

// Server is a running carbon-cache and graphite-web.
type Server struct {
	// URL is graphite-web's base URL (render is URL + "/render").
	URL string
	// Carbon is carbon's plaintext receiver, host:port.
	Carbon string
}

// python is Debian's interpreter, which has graphite-web's modules (a python3 first in
// PATH, e.g. pyenv's, may not).
const python = "/usr/bin/python3"

// The wsgiref server graphite-web runs in: quiet, threaded (the render view may ask
// carbon's cache while another request waits).
const serveWSGI = `import os, sys, socketserver
from wsgiref.simple_server import make_server, WSGIServer, WSGIRequestHandler
os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
from graphite.wsgi import application
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
class Threaded(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
make_server('127.0.0.1', int(sys.argv[1]), application, server_class=Threaded, handler_class=Quiet).serve_forever()
`

// Start runs both and returns once carbon accepts connections and render answers. They
// stop with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	for _, bin := range []string{"carbon-cache", python} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("graphitetest: %s not found (Debian packages graphite-carbon and graphite-web; scripts/ensure-deps.sh installs them): %v", bin, err)
		}
	}
	dir := t.TempDir()
	whisper, conf, logs := filepath.Join(dir, "whisper"), filepath.Join(dir, "conf"), filepath.Join(dir, "log")
	for _, d := range []string{whisper, conf, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("graphitetest: %v", err)
		}
	}
	line, pickle, cacheQuery, web := influxtest.FreePort(t), influxtest.FreePort(t), influxtest.FreePort(t), influxtest.FreePort(t)
	files := map[string]string{
		filepath.Join(conf, "carbon.conf"): fmt.Sprintf(`[cache]
STORAGE_DIR = %[1]s
LOCAL_DATA_DIR = %[2]s
WHITELISTS_DIR = %[1]s/lists
CONF_DIR = %[3]s
LOG_DIR = %[4]s
PID_DIR = %[1]s
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = %[5]d
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = %[6]d
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = %[7]d
LOG_LISTENER_CONNECTIONS = False
LOG_UPDATES = False
LOG_CREATES = False
WHISPER_AUTOFLUSH = True
ENABLE_TAGS = False
`, dir, whisper, conf, logs, line, pickle, cacheQuery),
		filepath.Join(conf, "storage-schemas.conf"): "[default]\npattern = .*\nretentions = " + Retention + "\n",
		filepath.Join(dir, "canaryd_graphite_settings.py"): fmt.Sprintf(`SECRET_KEY = 'canaryd-graphitetest'
GRAPHITE_ROOT = '/usr/share/graphite-web'
CONF_DIR = %[1]q
STORAGE_DIR = %[2]q
WHISPER_DIR = %[3]q
STANDARD_DIRS = [%[3]q]
LOG_DIR = %[4]q
INDEX_FILE = %[2]q + '/index'
CARBONLINK_HOSTS = ['127.0.0.1:%[5]d']
DATABASES = {'default': {'NAME': %[2]q + '/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
`, conf, dir, whisper, logs, cacheQuery),
		filepath.Join(dir, "serve.py"): serveWSGI,
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatalf("graphitetest: %v", err)
		}
	}
	out := &syncbuf.Buffer{}
	carbon := exec.Command("carbon-cache", "--config="+filepath.Join(conf, "carbon.conf"), "--pidfile="+filepath.Join(dir, "carbon.pid"), "--logdir="+logs, "--nodaemon", "start")
	webCmd := exec.Command(python, filepath.Join(dir, "serve.py"), fmt.Sprint(web))
	webCmd.Env = append(os.Environ(), "GRAPHITE_SETTINGS_MODULE=canaryd_graphite_settings", "PYTHONPATH="+dir)
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", web), Carbon: fmt.Sprintf("127.0.0.1:%d", line)}
	for _, cmd := range []*exec.Cmd{carbon, webCmd} {
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("graphitetest: start %s: %v", cmd.Path, err)
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
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			console, _ := os.ReadFile(filepath.Join(logs, "console.log"))
			t.Logf("carbon-cache and graphite-web output:\n%s\ncarbon's console.log:\n%s", out.String(), console)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ready := false; !ready; {
		ready = true
		if c, err := net.Dial("tcp", s.Carbon); err != nil {
			ready = false
		} else {
			c.Close()
		}
		if ready {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/render?format=json&target=none", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ready = false
			} else {
				resp.Body.Close()
				ready = resp.StatusCode == http.StatusOK
			}
		}
		if ready {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("graphitetest: not ready within 60s:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s
}

// Write sends lines of carbon's plaintext protocol ("path value unix-seconds\n") and
// waits until render returns want non-null points for target over [from, until]
// (both included: render's own from is exclusive).
func (s *Server) Write(t testing.TB, lines string, target string, from, until time.Time, want int) {
	t.Helper()
	c, err := net.Dial("tcp", s.Carbon)
	if err != nil {
		t.Fatalf("graphitetest: %v", err)
	}
	if _, err := c.Write([]byte(lines)); err != nil {
		t.Fatalf("graphitetest: write: %v", err)
	}
	c.Close()
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		if got = s.count(target, from, until); got >= want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("graphitetest: %s has %d points after 30s, want %d", target, got, want)
}

func (s *Server) count(target string, from, until time.Time) int {
	q := url.Values{"target": {target}, "format": {"json"}, "from": {fmt.Sprint(from.Unix() - 1)}, "until": {fmt.Sprint(until.Unix())}}
	resp, err := http.Get(s.URL + "/render?" + q.Encode())
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var series []struct {
		Datapoints [][2]*float64 `json:"datapoints"`
	}
	if json.NewDecoder(resp.Body).Decode(&series) != nil {
		return 0
	}
	n := 0
	for _, sr := range series {
		for _, p := range sr.Datapoints {
			if p[0] != nil {
				n++
			}
		}
	}
	return n
}
