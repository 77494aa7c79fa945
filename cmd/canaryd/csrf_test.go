package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canaryd/canaryd/internal/testutil"
)

// A page on another site cannot end a canary through a visitor's browser (a body-less
// fetch to abort, or a form posted to the pages), while curl-like clients and the pages'
// own forms keep working. Issue 13, finding 9.
func TestCrossSiteRequestsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(storeTestConfig, "lifetime: 4s", "lifetime: 1h", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfg, filepath.Join(dir, "c.db"))
	reg := func(name string) string {
		var c canaryJSON
		body := map[string]any{"name": name, "analysis": "a", "baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "canary"}}
		if code := p.call("POST", "/api/v1/canaries", body, &c); code != 201 {
			t.Fatalf("register %s: %d", name, code)
		}
		return c.ID
	}
	status := func(id string) canaryJSON {
		var c canaryJSON
		if code := p.call("GET", "/api/v1/canaries/"+id, nil, &c); code != 200 {
			t.Fatalf("get %s: %d", id, code)
		}
		return c
	}
	target, byForm, byCurl := reg("target"), reg("by-form"), reg("by-curl")

	// Headers as a browser sends them on a cross-site request: 403 with a JSON error.
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "cross-site"},
	} {
		req, _ := http.NewRequest("POST", p.url+"/api/v1/canaries/"+target+"/abort", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		decodeJSON(t, resp, &body)
		if resp.StatusCode != 403 || !strings.Contains(body.Error, "cross-origin request refused") {
			t.Errorf("%v: %d %q", h, resp.StatusCode, body.Error)
		}
	}
	// A client that is not a browser (no Origin, no Sec-Fetch-Site) still aborts.
	if code := p.call("POST", "/api/v1/canaries/"+byCurl+"/abort?actuate=false", nil, nil); code != 200 || status(byCurl).Status != "aborted" {
		t.Errorf("curl-like abort: %d", code)
	}

	exe := testutil.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	// The attacker's page, on another site (localhost, where canaryd is 127.0.0.1).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!DOCTYPE html><title>evil</title><script>
const t = %q;
Promise.allSettled([
  fetch(t + "/api/v1/canaries/%s/abort", {method: "POST", mode: "no-cors", credentials: "include"}),
  fetch(t + "/canaries/%s/abort", {method: "POST", mode: "no-cors", credentials: "include",
    headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "reason=pwned&actuate=true"}),
]).then(() => { document.title = "sent"; });
</script>`, p.url, target, target)
	}))
	t.Cleanup(evil.Close)
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	if err := chromedp.Do(bctx, chromedp.Navigate(evilURL),
		chromedp.Poll[chromedp.Void](`document.title === "sent"`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the attacker's page: %v", err)
	}
	if c := status(target); c.Status != "running" || len(c.Actions) != 0 {
		t.Errorf("a cross-site page changed the canary: %s, actions %+v", c.Status, c.Actions)
	}

	// The report's own form, submitted in the browser, aborts with the reason typed.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(p.url+"/canaries/"+byForm),
		chromedp.WaitVisible(`#abort-form input[name=reason]`),
		chromedp.SendKeys(`#abort-form input[name=reason]`, "bad deploy, by hand"),
		chromedp.Click(`#abort`),
	); err != nil {
		t.Fatalf("the report's abort form: %v\n%s", err, p.logs.String())
	}
	// The form's answer is a redirect to the report, now showing the canary aborted.
	wctx, wcancel := context.WithTimeout(bctx, 10*time.Second)
	defer wcancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(`#verdict[data-status="aborted"]`)); err != nil {
		where, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 500)`))
		t.Logf("browser at %s", where)
		t.Fatalf("the report's abort form: %v\n%s", err, p.logs.String())
	}
	c := status(byForm)
	if c.Status != "aborted" || c.Reason != "bad deploy, by hand" || len(c.Actions) != 1 || c.Actions[0].Kind != "abort" {
		t.Errorf("after the form: %s %q %+v", c.Status, c.Reason, c.Actions)
	}
}

func decodeJSON(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("answer is %q, not JSON", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
