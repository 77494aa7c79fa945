package main

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canaryd/canaryd/internal/syncbuf"
	"github.com/canaryd/canaryd/internal/testutil"
)

// demoPage is what the browser test reads from a report page.
type demoPage struct {
	Verdict string `json:"verdict"`
	Failing []struct {
		Metric string `json:"metric"`
		Text   string `json:"text"`
	} `json:"failing"`
	Charts []struct {
		Kind   string `json:"kind"`
		Metric string `json:"metric"`
		Series []struct {
			Points int     `json:"points"`
			Length float64 `json:"length"`
		} `json:"series"`
	} `json:"charts"`
}

const demoPageJS = `(() => {
  const squash = s => (s || '').replace(/\s+/g, ' ').trim();
  const v = document.querySelector('#verdict');
  return {
    verdict: squash(v && v.textContent),
    failing: [...document.querySelectorAll('#failing li')].map(li => ({metric: li.dataset.metric, text: squash(li.textContent)})),
    charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
      kind: svg.dataset.kind, metric: svg.dataset.metric,
      series: [...svg.querySelectorAll('path.series')].map(p => ({
        points: ((p.getAttribute('d') || '').match(/[MLHVh]/g) || []).length, length: p.getTotalLength()})),
    })),
  };
})()`

// startDemo starts `canaryd demo` with flags on a free port, killed at the test's end:
// its stdout comes a line at a time on lines (closed at its end), its stderr goes to
// logs.
func startDemo(t *testing.T, flags ...string) (cmd *exec.Cmd, lines <-chan string, logs *syncbuf.Buffer) {
	t.Helper()
	cmd = exec.Command(binPath, append([]string{"demo", "--listen", freeAddr(t)}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ch := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return cmd, ch, logs
}

var reportURLRe = regexp.MustCompile(`(http://\S+/canaries/([a-z2-7]{16}))`)

// TestDemoInBrowser is issue 7's promise: `canaryd demo` (what `make run` starts) shows a
// failed canary's report in a real browser, and both canaries reach the verdicts the
// README announces within about a minute.
func TestDemoInBrowser(t *testing.T) {
	exe := testutil.Chromium(t)
	// Read the demo's output: the URLs first, then each verdict as it arrives.
	cmd, lines, logs := startDemo(t, "--exit-when-done")
	var out []string
	var badURL string
	timeout := time.After(2 * time.Minute)
	for badURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended early:\n%s\n%s", strings.Join(out, "\n"), logs.String())
			}
			out = append(out, l)
			if strings.Contains(l, ": fail after") {
				// The next lines carry the reason and the report's URL.
				for badURL == "" {
					l2 := <-lines
					out = append(out, l2)
					if m := reportURLRe.FindStringSubmatch(l2); m != nil {
						badURL = m[1]
					}
				}
			}
		case <-timeout:
			t.Fatalf("no failed canary after 2 minutes:\n%s\n%s", strings.Join(out, "\n"), logs.String())
		}
	}
	if !strings.Contains(strings.Join(out, "\n"), "errors ×10") {
		t.Errorf("the failed canary is not the regressing one:\n%s", strings.Join(out, "\n"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(badURL)); err != nil {
		t.Fatalf("load %s: %v", badURL, err)
	}
	page, err := chromedp.Run(bctx, chromedp.Evaluate[demoPage](demoPageJS))
	if err != nil {
		t.Fatalf("read the report: %v", err)
	}
	if page.Verdict != "fail" {
		t.Errorf("verdict %q, want fail", page.Verdict)
	}
	var errorRate bool
	for _, f := range page.Failing {
		if f.Metric == "error-rate" && strings.Contains(f.Text, "critical") && strings.Contains(f.Text, "vs") {
			errorRate = true
		}
	}
	if !errorRate {
		t.Errorf("the critical error-rate metric is not shown failing with its reason: %+v", page.Failing)
	}
	drawn := map[string]bool{}
	for _, c := range page.Charts {
		ok := len(c.Series) > 0
		for _, s := range c.Series {
			// A confidence sequence of one interval (the canary failed at its first) is
			// a point: its path has no length.
			ok = ok && s.Points > 0 && (s.Length > 0 || c.Kind == "confidence")
		}
		if !ok {
			t.Errorf("chart %s of %s has not drawn its series: %+v", c.Kind, c.Metric, c.Series)
		}
		drawn[c.Kind+":"+c.Metric] = ok
	}
	if _, ok := drawn["timeseries:latency"]; ok {
		t.Errorf("the histogram metric latency has a time-series chart, but no per-step points to draw")
	}
	// error-rate and latency are sequential judges (their confidence sequences); latency
	// reads buckets, so it has no per-step points to draw, and no empty charts of them.
	for _, want := range []string{"timeseries:error-rate", "ecdf:error-rate", "confidence:error-rate", "confidence:latency", "timeseries:saturation"} {
		if !drawn[want] {
			t.Errorf("no drawn %s chart; charts: %v", want, drawn)
		}
	}

	// The healthy canary passes and the demo exits 0 (both verdicts as expected).
	done := make(chan error, 1)
	go func() {
		for l := range lines {
			out = append(out, l)
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(strings.Join(out, "\n"), "(healthy): pass after") {
			t.Fatalf("demo exit %v:\n%s\n%s", err, strings.Join(out, "\n"), logs.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the healthy canary has no verdict after 2 minutes:\n%s", strings.Join(out, "\n"))
	}
}
