package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
	"github.com/canaryd/canaryd/internal/syncbuf"
	"github.com/canaryd/canaryd/internal/testutil/daemontest"
)

// binPath is the canaryd binary the process tests run, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	// -race so that the process tests also check the daemon for data races; pgtest.Run
	// stops the PostgreSQL cluster the tests shared after m.Run.
	daemontest.Main(m, "../..", true, &binPath, pgtest.Run)
}

// proc is a canaryd serve process started by a test: d's fields under the names the
// tests use.
type proc struct {
	t    *testing.T
	d    *daemontest.Proc
	cmd  *exec.Cmd
	url  string
	logs *syncbuf.Buffer
	done chan struct{}
}

func freeAddr(t *testing.T) string { return daemontest.FreeAddr(t) }

// startServe runs `canaryd serve` with the config and store given and waits until it
// is ready. Extra arguments are appended.
func startServe(t *testing.T, configPath, storage string, extra ...string) *proc {
	t.Helper()
	return startServeScheme(t, "http", configPath, storage, extra...)
}

// startServeTLS is startServe for a config that serves HTTPS.
func startServeTLS(t *testing.T, configPath, storage string, extra ...string) *proc {
	t.Helper()
	return startServeScheme(t, "https", configPath, storage, extra...)
}

func startServeScheme(t *testing.T, scheme, configPath, storage string, extra ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"serve", "--config", configPath, "--storage", storage, "--listen", addr, "--log-level", "debug"}, extra...)
	d := daemontest.Start(t, exec.Command(binPath, args...), scheme+"://"+addr)
	return &proc{t: t, d: d, cmd: d.Cmd, url: d.URL, logs: d.Logs, done: d.Done}
}

// kill is kill -9: no chance to persist anything more.
func (p *proc) kill() { p.d.Kill() }

// call does an API request and decodes the JSON answer into out (when not nil),
// returning the status code.
func (p *proc) call(method, path string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	if out != nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// canaryJSON is the part of the API's canary the tests read.
type canaryJSON struct {
	ID        string   `json:"id"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason"`
	Score     *float64 `json:"score"`
	Judged    *int     `json:"intervals_judged"`
	Count     int      `json:"interval_count"`
	Intervals []struct {
		Index   int          `json:"index"`
		Verdict string       `json:"verdict"`
		Metrics []metricJSON `json:"metrics"`
	} `json:"intervals"`
	Actions []struct {
		Kind    string `json:"kind"`
		Status  string `json:"status"`
		Trigger string `json:"trigger"`
	} `json:"actions"`
}

// waitStatus polls a canary until it is no longer running, or fails after timeout.
func (p *proc) waitEnded(id string, timeout time.Duration) canaryJSON {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var c canaryJSON
		if code := p.call("GET", "/api/v1/canaries/"+id, nil, &c); code != http.StatusOK {
			p.t.Fatalf("GET canary %s: %d", id, code)
		}
		if c.Status != "running" {
			return c
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("canary %s still running after %s: %+v", id, timeout, c)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
