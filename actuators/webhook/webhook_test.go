package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

func event() actuators.Event {
	e := testutil.Event("notify")
	e.Reason = "error rate up"
	e.Vars = map[string]string{"app": "web"}
	return e
}

// receiver is a loopback webhook receiver that checks signatures and answers with the
// statuses it is told, in order (200 once they run out).
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	codes  []int
	delay  time.Duration
	got    []Body
	keys   []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("request %s %s", r.Method, r.Header.Get("Content-Type"))
	}
	if rc.secret != nil && !Verify(rc.secret, b, r.Header.Get(DefaultSignatureHeader)) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body Body
	if err := json.Unmarshal(b, &body); err != nil {
		rc.t.Errorf("body %q: %v", b, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, body)
	rc.keys = append(rc.keys, r.Header.Get(actuators.HeaderIdempotencyKey))
	code := http.StatusOK
	if len(rc.codes) > 0 {
		code, rc.codes = rc.codes[0], rc.codes[1:]
	}
	delay := rc.delay
	rc.mu.Unlock()
	if delay > 0 {
		select {
		case <-r.Context().Done():
		case <-time.After(delay):
		}
	}
	w.WriteHeader(code)
}

func newWebhook(t *testing.T, c Config) *Webhook {
	t.Helper()
	w, err := New(c, actuators.Options{Name: "notify"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func cfg(url string) Config {
	c := DefaultConfig()
	c.URL = url
	return c
}

func TestWebhookSignedPost(t *testing.T) {
	t.Setenv("HOOK_SECRET", "k3y")
	rc := &receiver{t: t, secret: []byte("k3y")}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	c := cfg(srv.URL + "/hooks/{{ .Vars.app }}")
	c.SecretEnv = "HOOK_SECRET"
	c.Headers = map[string]string{"X-Service": "{{ .Service }}"}
	w := newWebhook(t, c)
	res, err := w.Act(t.Context(), event())
	if err != nil || res.Status != 200 {
		t.Fatalf("act: %+v %v", res, err)
	}
	if len(rc.got) != 1 || rc.got[0].Version != Version || rc.got[0].ID != "c1" || rc.got[0].Key != "c1/on_fail/notify" || rc.keys[0] != "c1/on_fail/notify" {
		t.Errorf("received %+v keys %v", rc.got, rc.keys)
	}
	req, err := w.Render(event())
	if err != nil || req.Target != "POST "+srv.URL+"/hooks/web" || req.Header["X-Service"] != "web" || !strings.HasPrefix(req.Header[DefaultSignatureHeader], "sha256=") {
		t.Errorf("render: %+v %v", req, err)
	}
	// A receiver with another secret refuses it, finally.
	rc.secret = []byte("other")
	if _, err := w.Act(t.Context(), event()); err == nil || actuators.IsRetryable(err) {
		t.Errorf("bad signature: want a final error, got %v", err)
	}
}

func TestWebhookOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		codes   []int
		delay   time.Duration
		timeout time.Duration
		retry   bool
		ok      bool
	}{
		{name: "2xx", codes: []int{204}, ok: true},
		{name: "5xx retries", codes: []int{502}, retry: true},
		{name: "429 retries", codes: []int{429}, retry: true},
		{name: "4xx gives up", codes: []int{422}},
		{name: "timeout retries", delay: 2 * time.Second, timeout: 50 * time.Millisecond, retry: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := &receiver{t: t, codes: tc.codes, delay: tc.delay}
			srv := httptest.NewServer(rc)
			t.Cleanup(srv.Close)
			c := cfg(srv.URL)
			if tc.timeout > 0 {
				c.Timeout = model.Duration(tc.timeout)
			}
			_, err := newWebhook(t, c).Act(t.Context(), event())
			if (err == nil) != tc.ok || actuators.IsRetryable(err) != tc.retry {
				t.Errorf("err %v retry %v", err, actuators.IsRetryable(err))
			}
		})
	}
}

func TestWebhookBadRender(t *testing.T) {
	w := newWebhook(t, cfg("http://{{ .Vars.host }}/x"))
	if _, err := w.Act(t.Context(), event()); err == nil || !strings.Contains(err.Error(), `no entry for key "host"`) {
		t.Errorf("missing var: %v", err)
	}
	e := event()
	e.Vars = map[string]string{"app": "web", "host": ""}
	if _, err := w.Render(e); err == nil || !strings.Contains(err.Error(), "no host") {
		t.Errorf("empty host: %v", err)
	}
}

func TestWebhookConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "url: required"},
		{"bad scheme", func(c *Config) { c.URL = "file:///etc/passwd" }, `url: URL scheme must be http or https, got "file"`},
		{"bad template", func(c *Config) { c.URL = "http://x/{{ .Vars.app" }, "url: parse template: template: url:1: unclosed action"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout: must be > 0"},
		{"bad secret env", func(c *Config) { c.SecretEnv = "MY-SECRET" }, `secret_env: "MY-SECRET" is not an environment variable name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg("http://127.0.0.1:9/hook")
			tc.mod(&c)
			if got := c.Validate().Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	c := cfg("http://127.0.0.1:9/hook")
	c.SecretEnv = "CANARYD_TEST_UNSET_SECRET"
	if _, err := New(c, actuators.Options{Name: "n"}); err == nil || !strings.Contains(err.Error(), "CANARYD_TEST_UNSET_SECRET is not set") {
		t.Errorf("unset secret: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	// RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
	got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if got != "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Sign = %s", got)
	}
	if !Verify([]byte("Jefe"), []byte("what do ya want for nothing?"), got) || Verify([]byte("Jefe"), []byte("x"), got) {
		t.Error("Verify")
	}
}

// A variable lands in the URL as one escaped path segment or one query value: the
// receiver sees the path and parameters the config wrote, never ones a client added.
func TestWebhookURLEscapesVars(t *testing.T) {
	const attack = "../../admin/delete?all=1&x="
	type seen struct{ path, rawQuery string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.EscapedPath(), r.URL.RawQuery}
	}))
	t.Cleanup(srv.Close)
	w := newWebhook(t, cfg(srv.URL+"/hooks/{{ .Vars.app }}/abort?app={{ .Vars.app }}&dry=false"))
	e := event()
	e.Vars = map[string]string{"app": attack}
	if _, err := w.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if want := "/hooks/..%2F..%2Fadmin%2Fdelete%3Fall=1&x=/abort"; s.path != want {
		t.Errorf("path %q, want %q", s.path, want)
	}
	q, err := url.ParseQuery(s.rawQuery)
	if err != nil || len(q) != 2 || q.Get("app") != attack || q.Get("dry") != "false" {
		t.Errorf("query %q: %v %v", s.rawQuery, q, err)
	}
}
