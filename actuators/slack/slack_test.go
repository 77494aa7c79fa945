package slack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

func event(failing int) actuators.Event {
	score := 31.25
	e := testutil.Event("slack")
	e.Name, e.Score, e.Reason = "web <v2>", &score, "error rate & latency up"
	e.Link = "http://canaryd.example/api/v1/canaries/c1"
	for i := range failing {
		e.Failing = append(e.Failing, actuators.FailingMetric{Name: fmt.Sprintf("m%d", i), Classification: "high", Critical: i == 0, Reason: "up"})
	}
	return e
}

// fakeSlack answers as an incoming webhook does: 200 "ok" (text/html) for a payload with
// text or blocks; 400 "invalid_payload" for anything else; 404 "no_service" for a wrong
// path; and the statuses queued in fail, first.
type fakeSlack struct {
	path string
	fail []int
	got  []Message
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	if r.URL.Path != f.path {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no_service")
		return
	}
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "2")
		}
		w.WriteHeader(code)
		io.WriteString(w, "rate_limited")
		return
	}
	var m Message
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil || (m.Text == "" && len(m.Blocks) == 0) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	f.got = append(f.got, m)
	io.WriteString(w, "ok")
}

func newSlack(t *testing.T, base string, mod func(*Config)) (*Slack, *fakeSlack) {
	t.Helper()
	fs := &fakeSlack{path: "/services/T000/B000/XXXXSECRET"}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	t.Setenv("SLACK_URL", srv.URL+fs.path)
	c := DefaultConfig()
	c.URLEnv = "SLACK_URL"
	if mod != nil {
		mod(&c)
	}
	s, err := New(c, actuators.Options{Name: "slack"})
	if err != nil {
		t.Fatal(err)
	}
	return s, fs
}

func TestSlackMessage(t *testing.T) {
	s, fs := newSlack(t, "", func(c *Config) { c.MaxMetrics = 2; c.Channel = "#deploys" })
	res, err := s.Act(t.Context(), event(4))
	if err != nil || res.Output != "ok" {
		t.Fatalf("act: %+v %v", res, err)
	}
	m := fs.got[0]
	wantText := ":red_circle: Canary *web &lt;v2&gt;* of web: *fail* (score 31.2) <http://canaryd.example/api/v1/canaries/c1|details>"
	if m.Text != wantText || m.Channel != "#deploys" {
		t.Errorf("text %q, want %q", m.Text, wantText)
	}
	var all strings.Builder
	for _, b := range m.Blocks {
		if b.Text != nil {
			all.WriteString(b.Text.Text + "\n")
		}
	}
	body := all.String()
	for _, want := range []string{"*Reason*\nerror rate &amp; latency up", "• *m0* (high, critical): up", "• *m1* (high): up", "…and 2 more"} {
		if !strings.Contains(body, want) {
			t.Errorf("message lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "*m2*") {
		t.Errorf("more than max_metrics listed:\n%s", body)
	}
}

func TestSlackAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  []int
		ok    bool
		retry bool
	}{
		{"ok", nil, true, false},
		{"429 retries", []int{429}, false, true},
		{"500 retries", []int{500}, false, true},
		{"403 is final", []int{403}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, fs := newSlack(t, "", nil)
			fs.fail = tc.fail
			_, err := s.Act(t.Context(), event(1))
			if (err == nil) != tc.ok || actuators.IsRetryable(err) != tc.retry {
				t.Errorf("err %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "XXXXSECRET") {
				t.Errorf("error shows the webhook URL: %v", err)
			}
		})
	}
}

func TestSlackRenderHidesURL(t *testing.T) {
	s, _ := newSlack(t, "", nil)
	req, err := s.Render(event(1))
	if err != nil || strings.Contains(req.Target+req.URL, "XXXXSECRET") || !strings.HasSuffix(req.URL, "/"+actuators.Secret) {
		t.Errorf("render: %+v %v", req, err)
	}
	e := event(0)
	e.Action, e.DedupKey = actuators.ActionResolve, "c0"
	m, err := s.message(e)
	if err != nil || !strings.HasPrefix(m.Text, ":white_check_mark: Resolved: canary c0") {
		t.Errorf("resolve message: %q %v", m.Text, err)
	}
}

func TestSlackConfig(t *testing.T) {
	c := DefaultConfig()
	if got := c.Validate().Error(); !strings.HasPrefix(got, "url_env: required") {
		t.Errorf("no url: %q", got)
	}
	c.URLEnv, c.URL = "X", "http://h/x"
	if got := c.Validate().Error(); got != "url: give url_env or url, not both" {
		t.Errorf("both: %q", got)
	}
	c.URLEnv, c.MaxMetrics, c.Text = "", 50, "{{"
	if got := c.Validate().Error(); got != strings.Join([]string{`text: parse template: template: text:1: unclosed action`, `max_metrics: must be in [0, 20]`}, "\n") {
		t.Errorf("got %q", got)
	}
}

// On on_start the default message announces the canary in the release channel: no
// score, reason or metrics (nothing is judged yet), the canary's start, and the
// registration's values escaped for mrkdwn (a variable cannot add a link or a mention).
func TestSlackAnnouncement(t *testing.T) {
	s, fs := newSlack(t, "", func(c *Config) { c.Channel = "#releases" })
	e := testutil.Event("slack")
	e.Key, e.Trigger, e.Kind, e.Status, e.Cause, e.Reason = "c1/on_start/slack", "on_start", "start", "running", "", "canary registered"
	e.Name, e.Service = "checkout v2.14 <!channel> <http://evil|click>", "checkout"
	e.Start = time.Date(2026, 3, 1, 11, 59, 30, 0, time.UTC)
	e.Link = "http://canaryd.example/api/v1/canaries/c1"
	if _, err := s.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	m := fs.got[0]
	want := ":rocket: Canary *checkout v2.14 &lt;!channel&gt; &lt;http://evil|click&gt;* of checkout started <http://canaryd.example/api/v1/canaries/c1|details>"
	if m.Text != want || m.Channel != "#releases" {
		t.Errorf("text\n got %q\nwant %q", m.Text, want)
	}
	b, _ := json.Marshal(m.Blocks)
	for _, bad := range []string{"Score", "Reason", "Ended by", "red_circle"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("announcement has %q: %s", bad, b)
		}
	}
	if !strings.Contains(string(b), `*Started*\n2026-03-01 11:59:30 UTC`) {
		t.Errorf("no start time: %s", b)
	}
}
