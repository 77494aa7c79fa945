package datadogevent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

const apiKey = "0123456789abcdef0123456789abcdef"

// fakeDatadog answers POST /api/v1/events as Datadog's API reference documents "Post an
// event" (docs.datadoghq.com/api/latest/events/#post-an-event): the API key in the
// DD-API-KEY header (403 {"errors":["Forbidden"]} otherwise), a JSON body whose title and
// text are required (400 {"errors":[…]} otherwise), and 202 with an EventCreateResponse:
// {"status":"ok","event":{"id","id_str","title","text","date_happened","priority",
// "tags","url"}}. It keeps each request as received and answers with the statuses queued
// in fail first (a 429 with X-RateLimit-Reset); echo makes a 403 quote the header it got.
type fakeDatadog struct {
	mu   sync.Mutex
	fail []int
	echo bool
	got  []received
}

type received struct {
	header http.Header
	body   string
}

func (f *fakeDatadog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/dd/api/v1/events" {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errors":["Not Found"]}`)
		return
	}
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("X-RateLimit-Reset", "7")
		}
		w.WriteHeader(code)
		io.WriteString(w, `{"errors":["Rate limit exceeded"]}`)
		return
	}
	if got := r.Header.Get("DD-API-KEY"); got != apiKey {
		w.WriteHeader(http.StatusForbidden)
		if f.echo {
			io.WriteString(w, `{"errors":["Forbidden: key `+got+` is not valid"]}`)
			return
		}
		io.WriteString(w, `{"errors":["Forbidden"]}`)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var ev struct {
		Title        string   `json:"title"`
		Text         string   `json:"text"`
		Tags         []string `json:"tags"`
		DateHappened int64    `json:"date_happened"`
	}
	if err := json.Unmarshal(b, &ev); err != nil || ev.Title == "" || ev.Text == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"errors":["Event title and text are required"]}`)
		return
	}
	// The client ends its JSON with a newline.
	f.got = append(f.got, received{header: r.Header.Clone(), body: strings.TrimSuffix(string(b), "\n")})
	id := 7000000000000000000 + len(f.got)
	out, _ := json.Marshal(map[string]any{"status": "ok", "event": map[string]any{
		"id": id, "id_str": "7000000000000000001", "title": ev.Title, "text": ev.Text, "date_happened": ev.DateHappened,
		"priority": nil, "tags": ev.Tags, "url": "https://app.datadoghq.com/event/event?id=7000000000000000001",
	}})
	w.WriteHeader(http.StatusAccepted)
	w.Write(out)
}

var now = time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)

func newDD(t *testing.T, edit func(*Config)) (*DatadogEvent, *fakeDatadog, *httptest.Server) {
	t.Helper()
	fd := &fakeDatadog{}
	srv := httptest.NewServer(fd)
	t.Cleanup(srv.Close)
	t.Setenv("DD_EVENT_TEST_KEY", apiKey)
	c := DefaultConfig()
	c.APIURL, c.APIKeyEnv = srv.URL+"/dd", "DD_EVENT_TEST_KEY"
	if edit != nil {
		edit(&c)
	}
	d, err := New(c, actuators.Options{Name: "dd-events"})
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return now }
	return d, fd, srv
}

func startEvent() actuators.Event {
	e := testutil.Event("dd-events")
	e.Key, e.Trigger, e.Kind, e.Status, e.Cause, e.Reason = "c1/on_start/dd-events", "on_start", "start", "running", "", "canary registered"
	e.Name, e.Service = "checkout v2.14", "checkout"
	e.Start = time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)
	e.Link = "http://canaryd.example/api/v1/canaries/c1"
	return e
}

func failEvent() actuators.Event {
	e := startEvent()
	score := 20.0
	e.Key, e.Trigger, e.Kind, e.Status, e.Cause, e.Reason, e.Score = "c1/on_fail/dd-events", "on_fail", "verdict", "fail", "critical", "error-rate high", &score
	e.Failing = []actuators.FailingMetric{{Name: "error-rate", Classification: "high", Critical: true, Reason: "+900%"}}
	return e
}

// The exact event for a start and for a failure, through the official client: the
// title, text, tags, alert type picked from the event, the canary's start as the date
// for on_start, the API key in DD-API-KEY and the action's idempotency key.
func TestDatadogEvents(t *testing.T) {
	cases := []struct {
		name string
		ev   actuators.Event
		body string
	}{
		{"on_start", startEvent(),
			`{"aggregation_key":"canaryd-c1","alert_type":"info","date_happened":1772366340,"source_type_name":"canaryd","tags":["source:canaryd","service:checkout","analysis:golden","canary_trigger:on_start"],` +
				`"text":"Canary checkout v2.14 (c1) of checkout started, analysis golden.\nhttp://canaryd.example/api/v1/canaries/c1","title":"Canary checkout v2.14 of checkout started"}`},
		{"on_fail", failEvent(),
			`{"aggregation_key":"canaryd-c1","alert_type":"error","date_happened":1772366400,"source_type_name":"canaryd","tags":["source:canaryd","service:checkout","analysis:golden","canary_trigger:on_fail"],` +
				`"text":"Canary checkout v2.14 (c1) of checkout: fail, score 20.0. error-rate high\n- error-rate: high (critical): +900%\nhttp://canaryd.example/api/v1/canaries/c1","title":"Canary checkout v2.14 of checkout fail"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, fd, _ := newDD(t, nil)
			res, err := d.Act(t.Context(), tc.ev)
			if err != nil || res.Status != 202 || !strings.Contains(res.Output, `"status":"ok"`) {
				t.Fatalf("act: %+v %v", res, err)
			}
			got := fd.got[0]
			if got.body != tc.body {
				t.Errorf("body\n got %s\nwant %s", got.body, tc.body)
			}
			for k, want := range map[string]string{"DD-API-KEY": apiKey, "Content-Type": "application/json", "Idempotency-Key": tc.ev.Key, "User-Agent": "canaryd"} {
				if v := got.header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			req, err := d.Render(tc.ev)
			if err != nil || req.Body != tc.body || req.Header["DD-API-KEY"] != "<secret>" || strings.Contains(req.Body+req.Target, apiKey) ||
				!strings.HasSuffix(req.URL, "/dd/api/v1/events") {
				t.Errorf("render: %+v %v", req, err)
			}
		})
	}
}

// Hostile values stay inert: JSON never gains a key, an @ mentions nobody, tags keep
// only a tag's characters (a comma or a space cannot add a tag), markdown cannot be
// injected into a %%% text, and nothing reaches a header.
func TestDatadogHostileValues(t *testing.T) {
	d, fd, _ := newDD(t, func(c *Config) {
		c.Tags = []string{"app:{{ .Vars.app }}", "{{ .Reason }}"}
		c.Text = "%%% \n**{{ .Name }}**: {{ .Reason }} [report]({{ .Link }})\n %%%"
		c.Title = "{{ .Name }} {{ .Reason }}"
	})
	e := failEvent()
	e.Name = `x","title":"pwned`
	e.Reason = "@pagerduty-oncall [click](http://evil) %%% \r\nX-Injected: 1"
	e.Vars = map[string]string{"app": "web,env:prod !team:x"}
	if _, err := d.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(fd.got[0].body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || got["alert_type"] != "error" {
		t.Errorf("keys: %v", got)
	}
	title, text := got["title"].(string), got["text"].(string)
	if strings.Contains(title, "@pagerduty") || strings.ContainsAny(title, "\r\n") || !strings.HasPrefix(title, e.Name+" @\u200bpagerduty-oncall") {
		t.Errorf("title %q", title)
	}
	wantText := "%%% \n**x\",\"title\":\"pwned**: @\u200bpagerduty-oncall \\[click\\]\\(http://evil\\) \\%\\%\\% \r\nX-Injected: 1 [report](http://canaryd.example/api/v1/canaries/c1)\n %%%"
	if text != wantText {
		t.Errorf("text\n got %q\nwant %q", text, wantText)
	}
	tags := got["tags"].([]any)
	if len(tags) != 2 || tags[0] != "app:web_env:prod__team:x" || strings.ContainsAny(tags[1].(string), " ,@[]()\r\n") {
		t.Errorf("tags %q", tags)
	}
	if fd.got[0].header.Get("X-Injected") != "" {
		t.Error("a value added a header")
	}
}

// The key never shows, even when Datadog quotes it; 403 is final, 429 (with the reset
// as the retry hint), 5xx and an unreachable API are retried.
func TestDatadogAnswers(t *testing.T) {
	d, fd, srv := newDD(t, nil)
	fd.fail = []int{429, 503}
	_, err := d.Act(t.Context(), startEvent())
	if !actuators.IsRetryable(err) || actuators.RetryAfterOf(err) != 7*time.Second || actuators.ResultOf(err).Status != 429 {
		t.Errorf("429: %v (retry after %s)", err, actuators.RetryAfterOf(err))
	}
	if _, err := d.Act(t.Context(), startEvent()); !actuators.IsRetryable(err) {
		t.Errorf("503: %v", err)
	}
	t.Setenv("DD_EVENT_WRONG", "wrong-key-but-long-enough")
	wrong, wfd, _ := newDD(t, func(c *Config) { c.APIKeyEnv = "DD_EVENT_WRONG" })
	wfd.echo = true
	_, err = wrong.Act(t.Context(), startEvent())
	if err == nil || actuators.IsRetryable(err) || actuators.ResultOf(err).Status != 403 {
		t.Fatalf("403: %v", err)
	}
	if out := actuators.ResultOf(err).Output; strings.Contains(out+err.Error(), "wrong-key-but-long-enough") || !strings.Contains(out, "key <secret> is not valid") {
		t.Errorf("echoed key: %s / %v", out, err)
	}
	srv.Close()
	if _, err := d.Act(t.Context(), startEvent()); !actuators.IsRetryable(err) || strings.Contains(err.Error(), apiKey) {
		t.Errorf("unreachable: %v", err)
	}
	// An event older than Datadog takes is sent without a date (it is "now").
	d.now = func() time.Time { return now.Add(19 * time.Hour) }
	req, err := d.Render(startEvent())
	if err != nil || strings.Contains(req.Body, "date_happened") {
		t.Errorf("old event: %s %v", req.Body, err)
	}
}

func TestDatadogConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"site with scheme", func(c *Config) { c.Site = "https://datadoghq.eu" }, `site: "https://datadoghq.eu" must be a bare site name such as datadoghq.eu; use api_url for a full URL`},
		{"api_url without scheme", func(c *Config) { c.APIURL = "dd-proxy:8080" }, `api_url: URL scheme must be http or https, got "dd-proxy"`},
		{"key in the URL", func(c *Config) { c.APIURL = "https://dd-proxy/?api_key=x" }, `api_url: must be a base URL without credentials, query or fragment (the key comes from api_key_env)`},
		{"bad env name", func(c *Config) { c.APIKeyEnv = "0123456789abcdef" }, `api_key_env: "0123456789abcdef" is not an environment variable name`},
		{"alert type", func(c *Config) { c.AlertType = "critical" }, `alert_type: "critical" is not one of [error warning info success user_update recommendation snapshot]`},
		{"priority", func(c *Config) { c.Priority = "high" }, `priority: "high" is not one of [normal low]`},
		{"unknown field", func(c *Config) { c.Title = "{{ .Sevrice }}" }, `title: .Sevrice is not a field of the event (see the template fields in actuators/README.md)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			if got := c.Validate().Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	c := DefaultConfig()
	c.APIKeyEnv = "DD_EVENT_UNSET"
	if _, err := New(c, actuators.Options{Name: "dd"}); err == nil || !strings.Contains(err.Error(), "DD_EVENT_UNSET is not set") {
		t.Errorf("unset key: %v", err)
	}
	t.Setenv("DD_EVENT_SET", apiKey)
	c.APIKeyEnv, c.Site = "DD_EVENT_SET", "datadoghq.eu"
	d, err := New(c, actuators.Options{Name: "dd"})
	if err != nil || d.baseURL != "https://api.datadoghq.eu/api/v1/events" {
		t.Errorf("site: %v %v", d, err)
	}
}
