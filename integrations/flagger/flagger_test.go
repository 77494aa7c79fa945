// Package flagger tests canaryd's Flagger webhooks with Flagger's own code: every request
// here is built and sent by github.com/fluxcd/flagger/pkg/controller's CallWebhook (the
// exported entry of its unexported callWebhook, which marshals a
// flaggerv1.CanaryWebhookPayload and POSTs it with go-retryablehttp) and CallEventWebhook,
// the functions Flagger's scheduler calls for each webhook of a Canary. The Canary is the
// example in examples/flagger/canary.yaml, and canaryd is the real binary (canaryd serve)
// on its synthetic provider, with a healthy and a regressing workload. This is a module of
// its own so that canaryd's module never depends on Kubernetes libraries.
package flagger

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	"github.com/fluxcd/flagger/pkg/controller"
	"sigs.k8s.io/yaml"

	"github.com/canaryd/canaryd/internal/syncbuf"
	"github.com/canaryd/canaryd/internal/testutil/daemontest"
)

const (
	flaggerToken = "flagger-token-of-the-integration-test-0123"
	readerToken  = "reader-token-of-the-integration-test-0123"
)

// binPath is canaryd, built once by TestMain from the main module.
var binPath string

func TestMain(m *testing.M) {
	// Built in the main module, as cmd/canaryd's own tests build it (-race, which also
	// checks the daemon for data races): make test has it in the build cache by then.
	daemontest.Main(m, "../..", true, &binPath, (*testing.M).Run)
}

// daemon is a canaryd serve process.
type daemon struct {
	t    *testing.T
	url  string
	logs *syncbuf.Buffer
}

// startCanaryd runs canaryd serve on testdata/canaryd.yml and waits until it is ready.
func startCanaryd(t *testing.T) *daemon {
	t.Helper()
	addr := daemontest.FreeAddr(t)
	cmd := exec.Command(binPath, "serve", "--config", "testdata/canaryd.yml", "--storage", filepath.Join(t.TempDir(), "c.db"),
		"--listen", addr, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "CANARYD_FLAGGER_TOKEN="+flaggerToken, "CANARYD_READER_TOKEN="+readerToken)
	p := daemontest.Start(t, cmd, "http://"+addr)
	return &daemon{t: t, url: p.URL, logs: p.Logs}
}

// get reads canaryd's API as the reader and decodes the answer into out; it returns the
// body as it came.
func (d *daemon) get(path string, out any) string {
	d.t.Helper()
	req, _ := http.NewRequest("GET", d.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+readerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != 200 {
		d.t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		d.t.Fatal(err)
	}
	return string(raw)
}

type canaryView struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Key      string            `json:"key"`
	Status   string            `json:"status"`
	Reason   string            `json:"reason"`
	Baseline map[string]string `json:"baseline"`
	Canary   map[string]string `json:"canary"`
	Vars     map[string]string `json:"vars"`
}

// canaries are the canaries canaryd holds for a Flagger canary, by their name.
func (d *daemon) canaries(name string) []canaryView {
	var page struct {
		Canaries []canaryView `json:"canaries"`
	}
	d.get("/api/v1/canaries?limit=1000", &page)
	var out []canaryView
	for _, c := range page.Canaries {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// example is examples/flagger/canary.yaml as Flagger would hold it, named name, with its
// webhooks pointed at d and the placeholder token replaced, at a revision whose spec is
// spec (Flagger's checksum is computed from it).
func example(t *testing.T, d *daemon, name, spec string) *flaggerv1.Canary {
	t.Helper()
	b, err := os.ReadFile("../../examples/flagger/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c flaggerv1.Canary
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("examples/flagger/canary.yaml: %v", err)
	}
	c.Name, c.Spec.TargetRef.Name = name, name
	for i := range c.Spec.Analysis.Webhooks {
		w := &c.Spec.Analysis.Webhooks[i]
		u, err := url.Parse(w.URL)
		if err != nil {
			t.Fatal(err)
		}
		w.URL = d.url + u.Path
		if md := w.Metadata; md != nil && (*md)["token"] == "CANARYD_FLAGGER_TOKEN" {
			(*md)["token"] = flaggerToken
		}
	}
	c.Status.LastAppliedSpec = spec
	c.Status.Phase = flaggerv1.CanaryPhaseProgressing
	return &c
}

// hook is the Canary's webhook of a type, copied so that a test may change it.
func hook(t *testing.T, c *flaggerv1.Canary, typ flaggerv1.HookType) flaggerv1.CanaryWebhook {
	t.Helper()
	for _, w := range c.Spec.Analysis.Webhooks {
		if w.Type == typ {
			md := map[string]string{}
			for k, v := range *w.Metadata {
				md[k] = v
			}
			w.Metadata = &md
			return w
		}
	}
	// confirm-rollout is not in the example (canaryd has nothing to gate before traffic):
	// the same webhook as the others, at its own path.
	w := hook(t, c, flaggerv1.RolloutHook)
	w.Type, w.URL = typ, strings.Replace(w.URL, "/rollout", "/"+string(typ), 1)
	return w
}

// call is Flagger calling one of the Canary's webhooks, as its scheduler does.
func call(t *testing.T, c *flaggerv1.Canary, typ flaggerv1.HookType, phase flaggerv1.CanaryPhase) error {
	t.Helper()
	return controller.CallWebhook(*c, phase, hook(t, c, typ))
}

// wantOK and wantNo check a webhook's answer as Flagger reads it: nil is yes; an error
// carries the body canaryd sent, which Flagger shows in its events.
func wantOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: Flagger got %v, want a 2xx", what, err)
	}
}

func wantNo(t *testing.T, what string, err error, says ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: Flagger got a 2xx, want a no", what)
		return
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: Flagger got %q, want it to say %q", what, err, s)
		}
	}
}

// Flagger's own webhook code against a live canaryd: a healthy rollout passes and is
// promoted, a regressing one is refused at every check and rolled back.
func TestFlaggerDrivesCanaryd(t *testing.T) {
	d := startCanaryd(t)
	good := example(t, d, "podinfo", `{"image":"podinfo:6.1.0"}`)
	bad := example(t, d, "badinfo", `{"image":"badinfo:6.1.0"}`)

	for _, c := range []*flaggerv1.Canary{good, bad} {
		wantOK(t, c.Name+" confirm-rollout", call(t, c, flaggerv1.ConfirmRolloutHook, flaggerv1.CanaryPhaseWaiting))
		wantOK(t, c.Name+" pre-rollout", call(t, c, flaggerv1.PreRolloutHook, flaggerv1.CanaryPhaseProgressing))
		// Flagger retries a pre-rollout that failed: the same canary, not a second one.
		wantOK(t, c.Name+" pre-rollout again", call(t, c, flaggerv1.PreRolloutHook, flaggerv1.CanaryPhaseProgressing))
		cs := d.canaries("test/" + c.Name)
		if len(cs) != 1 {
			t.Fatalf("%s: %d canaries after two pre-rollouts, want 1: %+v", c.Name, len(cs), cs)
		}
		got := cs[0]
		if !strings.HasPrefix(got.Key, "flagger/test/"+c.Name+"/") || got.Baseline["workload"] != c.Name+"-primary" ||
			got.Canary["workload"] != c.Name || got.Vars["app"] != "podinfo" || got.Vars["namespace"] != "test" {
			t.Errorf("%s registered as %+v", c.Name, got)
		}
		wantOK(t, c.Name+" rollout while running", call(t, c, flaggerv1.RolloutHook, flaggerv1.CanaryPhaseProgressing))
		wantNo(t, c.Name+" confirm-promotion while running", call(t, c, flaggerv1.ConfirmPromotionHook, flaggerv1.CanaryPhaseProgressing),
			"not promoted: canary "+got.ID+" is running")
		wantNo(t, c.Name+" rollback while running", call(t, c, flaggerv1.RollbackHook, flaggerv1.CanaryPhaseProgressing), "no rollback")
	}

	final := map[string]canaryView{}
	for deadline := time.Now().Add(60 * time.Second); len(final) < 2; time.Sleep(200 * time.Millisecond) {
		for _, name := range []string{"podinfo", "badinfo"} {
			if cs := d.canaries("test/" + name); len(cs) == 1 && cs[0].Status != "running" {
				final[name] = cs[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verdicts after 60s: %+v", final)
		}
	}
	if final["podinfo"].Status != "pass" || final["badinfo"].Status != "fail" {
		t.Fatalf("verdicts %+v, want podinfo pass and badinfo fail", final)
	}

	// The healthy rollout: every check passes, promotion is confirmed, no rollback.
	wantOK(t, "podinfo rollout", call(t, good, flaggerv1.RolloutHook, flaggerv1.CanaryPhaseProgressing))
	wantOK(t, "podinfo confirm-promotion", call(t, good, flaggerv1.ConfirmPromotionHook, flaggerv1.CanaryPhaseProgressing))
	wantNo(t, "podinfo rollback", call(t, good, flaggerv1.RollbackHook, flaggerv1.CanaryPhaseProgressing), "no rollback", "ended pass")
	wantOK(t, "podinfo post-rollout", call(t, good, flaggerv1.PostRolloutHook, flaggerv1.CanaryPhaseSucceeded))

	// The regressing one: the check fails with canaryd's reason, promotion is refused, the
	// rollback hook says roll back.
	reason := final["badinfo"].Reason
	if reason == "" {
		t.Errorf("badinfo failed without a reason")
	}
	wantNo(t, "badinfo rollout", call(t, bad, flaggerv1.RolloutHook, flaggerv1.CanaryPhaseProgressing),
		"canary "+final["badinfo"].ID+" ended fail: "+reason, `"status":"fail"`)
	wantNo(t, "badinfo confirm-promotion", call(t, bad, flaggerv1.ConfirmPromotionHook, flaggerv1.CanaryPhaseWaitingPromotion), "not promoted", "ended fail")
	wantOK(t, "badinfo rollback", call(t, bad, flaggerv1.RollbackHook, flaggerv1.CanaryPhaseProgressing))
	wantOK(t, "badinfo post-rollout", call(t, bad, flaggerv1.PostRolloutHook, flaggerv1.CanaryPhaseFailed))

	// Flagger's events land in the audit log, with the canary they are about.
	good.Status.Phase = flaggerv1.CanaryPhaseSucceeded
	wantOK(t, "event", controller.CallEventWebhook(good, hook(t, good, flaggerv1.EventHook), "Promotion completed! Scaling down podinfo.test", "Normal"))
	var audit struct {
		Entries []struct {
			Kind, Who, Canary, CanaryName, Outcome, Reason string
		} `json:"entries"`
	}
	auditJSON := d.get("/api/v1/audit?kind=event", &audit)
	want := map[string]bool{
		"Normal Flagger (Succeeded): Promotion completed! Scaling down podinfo.test " + final["podinfo"].ID:            true,
		"Succeeded Flagger ended the rollout Succeeded (post-rollout); canaryd's verdict: pass " + final["podinfo"].ID: true,
		"Failed Flagger ended the rollout Failed (post-rollout); canaryd's verdict: fail " + final["badinfo"].ID:       true,
	}
	for _, e := range audit.Entries {
		k := e.Outcome + " " + e.Reason + " " + e.Canary
		if !want[k] || e.Who != "token:flagger" {
			t.Errorf("audit entry %+v", e)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("audit log lacks %v", want)
	}

	// The token Flagger put in every webhook's metadata is nowhere canaryd keeps or says.
	var detail map[string]any
	for _, c := range final {
		if s := d.get("/api/v1/canaries/"+c.ID, &detail); strings.Contains(s, flaggerToken) {
			t.Errorf("canary %s holds the token: %s", c.ID, s)
		}
	}
	if strings.Contains(auditJSON, flaggerToken) || strings.Contains(d.logs.String(), flaggerToken) {
		t.Errorf("the token is in the audit log or canaryd's log")
	}
}

// What Flagger shows its user when a webhook is misconfigured: a 4xx naming the field or
// the missing token, sent by Flagger's own code (a 4xx is not retried).
func TestFlaggerSeesWhyCanarydRefuses(t *testing.T) {
	d := startCanaryd(t)
	c := example(t, d, "podinfo", `{"image":"podinfo:6.2.0"}`)
	cases := []struct {
		name  string
		typ   flaggerv1.HookType
		edit  func(md map[string]string)
		canon func(c *flaggerv1.Canary)
		says  []string
	}{
		{"no analysis", flaggerv1.PreRolloutHook, func(md map[string]string) { delete(md, "analysis") }, nil,
			[]string{`"field":"metadata.analysis"`, "required: the canaryd analysis"}},
		{"an unknown analysis", flaggerv1.PreRolloutHook, func(md map[string]string) { md["analysis"] = "golden" }, nil,
			[]string{`"field":"metadata.analysis"`, "golden"}},
		{"a bad lifetime", flaggerv1.PreRolloutHook, func(md map[string]string) { md["lifetime"] = "soon" }, nil,
			[]string{`"field":"metadata.lifetime"`, `\"soon\" is not a duration`}},
		{"no token", flaggerv1.RolloutHook, func(md map[string]string) { delete(md, "token") }, nil,
			[]string{"an API token is required: metadata.token"}},
		{"a wrong token", flaggerv1.RolloutHook, func(md map[string]string) { md["token"] = "not-the-token-of-this-test-0123" }, nil,
			[]string{"the API token is not valid"}},
		{"a token without register", flaggerv1.PreRolloutHook, func(md map[string]string) { md["token"] = readerToken }, nil,
			[]string{"token reader lacks the register role"}},
		{"no pre-rollout for this revision", flaggerv1.RolloutHook, nil, nil,
			[]string{"no canary registered for test/podinfo at checksum"}},
		{"no name", flaggerv1.RolloutHook, nil, func(c *flaggerv1.Canary) { c.Name = "" }, []string{`"field":"name"`, "required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := hook(t, c, tc.typ)
			if tc.edit != nil {
				tc.edit(*w.Metadata)
			}
			cc := c.DeepCopy()
			if tc.canon != nil {
				tc.canon(cc)
			}
			wantNo(t, tc.name, controller.CallWebhook(*cc, flaggerv1.CanaryPhaseProgressing, w), tc.says...)
		})
	}
	if cs := d.canaries("test/podinfo"); len(cs) != 0 {
		t.Errorf("refused webhooks registered %+v", cs)
	}
	if strings.Contains(d.logs.String(), flaggerToken) || strings.Contains(d.logs.String(), readerToken) {
		t.Errorf("a token is in canaryd's log")
	}
}
