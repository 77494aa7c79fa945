package grafana

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

const token = "glsa_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA_0a1b2c3d"

// fakeGrafana answers POST /api/annotations as Grafana's HTTP API documents it
// ("Annotations API", Create Annotation: grafana.com/docs/grafana/latest/developers/
// http_api/annotations/): a service account token as "Authorization: Bearer …" (401
// {"message":"invalid API key"} otherwise), a JSON body with time and timeEnd in epoch
// milliseconds, tags, text and optional dashboardUID and panelId (400 {"message":…} for
// an empty text or a body that is not JSON), and 200 {"message":"Annotation added",
// "id":N}. It keeps each request as received, and answers with the statuses queued in
// fail first; echo makes it put the request's Authorization header in its answer, as a
// debugging proxy might. GET /api/annotations is Find Annotations, as documented on the
// same page: from and to (epoch ms; an annotation is in the range when it overlaps it),
// dashboardUID, panelId, type, tags (each must be on the annotation) and limit, answered
// 200 with a JSON array of annotations (id, dashboardUID, panelId, time, timeEnd, text,
// tags, …) whose tags come back in the database's order (sorted here), a point's timeEnd
// being its time; 403 with Grafana's message for a token without annotations:read
// (noRead).
type fakeGrafana struct {
	mu     sync.Mutex
	token  string
	fail   []int
	echo   bool
	noRead bool
	got    []received
	finds  []string // each GET's raw query
}

type received struct {
	header http.Header
	body   string
}

func (f *fakeGrafana) find(w http.ResponseWriter, r *http.Request) {
	f.finds = append(f.finds, r.URL.RawQuery)
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"invalid API key"}`)
		return
	}
	if f.noRead {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"accessErrorId":"ACE0123456789","message":"You'll need additional permissions to perform this action. Permissions needed: annotations:read","title":"Access denied"}`)
		return
	}
	q := r.URL.Query()
	num := func(k string) int64 { n, _ := strconv.ParseInt(q.Get(k), 10, 64); return n }
	out := []map[string]any{}
	for i, g := range f.got {
		var a Annotation
		_ = json.Unmarshal([]byte(g.body), &a)
		end := max(a.TimeEnd, a.Time)
		if q.Has("from") && end < num("from") || q.Has("to") && a.Time > num("to") ||
			q.Has("dashboardUID") && a.DashboardUID != q.Get("dashboardUID") || q.Has("panelId") && a.PanelID != num("panelId") {
			continue
		}
		tags := slices.Sorted(slices.Values(a.Tags))
		if !slices.ContainsFunc(q["tags"], func(t string) bool { return !slices.Contains(tags, t) }) && len(out) < int(num("limit")) {
			out = append(out, map[string]any{"id": i + 1, "alertId": 0, "dashboardId": 0, "dashboardUID": a.DashboardUID, "panelId": a.PanelID,
				"userId": 2, "newState": "", "prevState": "", "time": a.Time, "timeEnd": end, "text": a.Text, "tags": tags,
				"login": "sa-canaryd", "email": "sa-canaryd", "avatarUrl": "/avatar/0", "data": map[string]any{}})
		}
	}
	b, _ := json.Marshal(out)
	w.Write(b)
}

func (f *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet && r.URL.Path == "/grafana/api/annotations" {
		f.find(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/grafana/api/annotations" {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not found"}`)
		return
	}
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		w.WriteHeader(code)
		io.WriteString(w, `{"message":"Internal Server Error"}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		msg := `{"message":"invalid API key"}`
		if f.echo {
			msg = `{"message":"invalid API key","got":` + quote(r.Header.Get("Authorization")) + `}`
		}
		io.WriteString(w, msg)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var a Annotation
	if err := json.Unmarshal(b, &a); err != nil || a.Text == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":"Failed to save annotation"}`)
		return
	}
	f.got = append(f.got, received{header: r.Header.Clone(), body: string(b)})
	io.WriteString(w, `{"message":"Annotation added","id":`+itoa(len(f.got))+`}`)
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }
func itoa(n int) string     { b, _ := json.Marshal(n); return string(b) }

func newGrafana(t *testing.T, edit func(*Config)) (*Grafana, *fakeGrafana) {
	t.Helper()
	fg := &fakeGrafana{token: token}
	srv := httptest.NewServer(fg)
	t.Cleanup(srv.Close)
	t.Setenv("GRAFANA_TEST_TOKEN", token)
	c := DefaultConfig()
	c.URL = srv.URL + "/grafana/"
	c.TokenEnv = "GRAFANA_TEST_TOKEN"
	if edit != nil {
		edit(&c)
	}
	g, err := New(c, actuators.Options{Name: "annotate"})
	if err != nil {
		t.Fatal(err)
	}
	return g, fg
}

func started() actuators.Event {
	e := testutil.Event("annotate")
	e.Key, e.Trigger, e.Kind, e.Status, e.Cause, e.Reason = "c1/on_start/annotate", "on_start", "start", "running", "", "canary registered"
	e.Start = time.Date(2026, 3, 1, 11, 58, 0, 0, time.UTC)
	e.Vars = map[string]string{"app": "web", "dashboard": "dash-1"}
	return e
}

func failed() actuators.Event {
	e := testutil.Event("annotate")
	score := 12.5
	e.Score, e.Reason = &score, "critical metric errors failed"
	e.Start = time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC)
	e.Vars = map[string]string{"app": "web", "dashboard": "dash-1"}
	return e
}

// The exact request for each hook: a point at the canary's start for on_start, a region
// from the start to the verdict otherwise, on the dashboard and panel configured, with
// the token as a Bearer header and the action's idempotency key.
func TestGrafanaAnnotations(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		ev   actuators.Event
		body string
	}{
		{
			name: "on_start on a dashboard panel",
			edit: func(c *Config) { c.DashboardUID, c.PanelID = "{{ .Vars.dashboard }}", 4 },
			ev:   started(),
			body: `{"dashboardUID":"dash-1","panelId":4,"time":1772366280000,"tags":["canaryd","service:web","analysis:golden","on_start"],"text":"Canary web v2 of web started"}`,
		},
		{
			name: "on_fail as a region, organisation-wide",
			ev:   failed(),
			body: `{"time":1772364600000,"timeEnd":1772366400000,"tags":["canaryd","service:web","analysis:golden","on_fail"],"text":"Canary web v2 of web: fail (score 12.5): critical metric errors failed"}`,
		},
		{
			name: "on_not_recovered as a region to the watch's end",
			ev: func() actuators.Event {
				e := failed()
				e.Key, e.Trigger, e.Cause, e.Reason = "c1/on_not_recovered/annotate", "on_not_recovered", "recovery", "not recovered: error-rate 0.09 vs 0.01 before"
				e.Time = e.Time.Add(5 * time.Minute)
				return e
			}(),
			body: `{"time":1772364600000,"timeEnd":1772366700000,"tags":["canaryd","service:web","analysis:golden","on_not_recovered"],"text":"Canary web v2 of web: fail (score 12.5): not recovered: error-rate 0.09 vs 0.01 before"}`,
		},
		{
			name: "on_fail as a point",
			edit: func(c *Config) {
				c.Region, c.Tags, c.Text = false, []string{"deploy", "{{ .Vars.app }}", "deploy", "{{ index .Vars \"missing\" }}"}, "{{ .Name }} {{ .Status }}"
			},
			ev:   failed(),
			body: `{"time":1772366400000,"tags":["deploy","web"],"text":"web v2 fail"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, fg := newGrafana(t, tc.edit)
			res, err := g.Act(t.Context(), tc.ev)
			if err != nil || res.Status != 200 || res.Output != `{"message":"Annotation added","id":1}` {
				t.Fatalf("act: %+v %v", res, err)
			}
			got := fg.got[0]
			if got.body != tc.body {
				t.Errorf("body\n got %s\nwant %s", got.body, tc.body)
			}
			for k, want := range map[string]string{
				"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json",
				"Idempotency-Key": tc.ev.Key, "User-Agent": "canaryd",
			} {
				if v := got.header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			req, err := g.Render(tc.ev)
			if err != nil || req.Body != tc.body || req.Header["Authorization"] != "Bearer <secret>" || strings.Contains(req.Target+req.Body, token) ||
				!strings.HasSuffix(req.URL, "/grafana/api/annotations") {
				t.Errorf("render: %+v %v", req, err)
			}
		})
	}
}

// Every value from a registration or an API call is hostile: it lands in the JSON body
// (never adding a key), in the text Grafana shows as HTML (escaped), in tags (without
// control characters), and never in the URL or a header.
func TestGrafanaHostileValues(t *testing.T) {
	g, fg := newGrafana(t, func(c *Config) {
		c.DashboardUID = "{{ .Vars.dashboard }}"
		c.Tags = []string{"canaryd", "app:{{ .Vars.app }}", "{{ .Reason }}"}
		c.Text = `{{ .Name }}: {{ .Reason }} <a href="{{ .Link }}">report</a> {{ .Vars.app }}`
	})
	e := failed()
	e.Name = `web"},{"text":"x`
	e.Reason = "\"}, \"panelId\": 999, \"x\": \"<script>alert(1)</script>\r\nInjected: header"
	e.Vars = map[string]string{"app": `<img src=x onerror=alert(1)>`, "dashboard": `../../api/admin/users?x=1`}
	e.Link = "http://canaryd.example/api/v1/canaries/c1"
	if _, err := g.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(fg.got[0].body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got["panelId"] != nil || got["dashboardUID"] != "../../api/admin/users?x=1" {
		t.Errorf("keys: %v", got)
	}
	text := got["text"].(string)
	if want := `web&#34;},{&#34;text&#34;:&#34;x: &#34;}, &#34;panelId&#34;: 999, &#34;x&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;` + "\r\n" +
		`Injected: header <a href="http://canaryd.example/api/v1/canaries/c1">report</a> &lt;img src=x onerror=alert(1)&gt;`; text != want {
		t.Errorf("text\n got %q\nwant %q", text, want)
	}
	tags := got["tags"].([]any)
	if len(tags) != 3 || tags[1] != "app:<img src=x onerror=alert(1)>" || strings.ContainsAny(tags[2].(string), "\r\n") {
		t.Errorf("tags: %q", tags)
	}
	if h := fg.got[0].header; len(h.Values("Injected")) != 0 {
		t.Errorf("a value added a header: %v", h)
	}
	// A control character in the dashboard's UID is refused, not sent.
	e.Vars["dashboard"] = "dash\x00"
	if _, err := g.Act(t.Context(), e); err == nil || actuators.IsRetryable(err) || len(fg.got) != 1 {
		t.Errorf("control character in dashboard_uid: %v (%d sent)", err, len(fg.got))
	}
}

// The token never shows: not in what the audit log keeps, not in an error, not when
// Grafana echoes it back. A token file is read at each attempt, so a rotated token is
// used without a reload; Grafana's 401 is final, 5xx retried.
func TestGrafanaToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("old-token-value-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, fg := newGrafana(t, func(c *Config) { c.TokenEnv, c.TokenFile = "", file })
	fg.echo = true
	_, err := g.Act(t.Context(), failed())
	if err == nil || actuators.IsRetryable(err) || actuators.ResultOf(err).Status != 401 {
		t.Fatalf("wrong token: %v", err)
	}
	out := actuators.ResultOf(err).Output
	if strings.Contains(out, "old-token-value-123") || !strings.Contains(out, `"got":"Bearer <secret>"`) {
		t.Errorf("echoed token: %s", out)
	}
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fg.fail = []int{503}
	if _, err := g.Act(t.Context(), failed()); !actuators.IsRetryable(err) {
		t.Errorf("503: want retryable, got %v", err)
	}
	if _, err := g.Act(t.Context(), failed()); err != nil || len(fg.got) != 1 {
		t.Fatalf("rotated token: %v", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Act(t.Context(), failed()); !actuators.IsRetryable(err) || !strings.Contains(err.Error(), "token_file") {
		t.Errorf("missing file: %v", err)
	}
	c := DefaultConfig()
	c.URL, c.TokenFile = "http://grafana.example", filepath.Join(dir, "absent")
	if _, err := New(c, actuators.Options{Name: "annotate"}); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Errorf("build with a missing token file: %v", err)
	}
	c.TokenFile, c.TokenEnv = "", "GRAFANA_TEST_UNSET"
	if _, err := New(c, actuators.Options{Name: "annotate"}); err == nil || !strings.Contains(err.Error(), "GRAFANA_TEST_UNSET is not set") {
		t.Errorf("build with an unset token env: %v", err)
	}
}

func TestGrafanaConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no scheme", func(c *Config) { c.URL = "grafana.example.com" }, `url: URL scheme must be http or https, got ""`},
		{"a template", func(c *Config) { c.URL = "https://{{ .Vars.host }}/" }, `url: must be a fixed URL, not a template`},
		{"credentials in the URL", func(c *Config) { c.URL = "https://admin:pw@grafana.example.com" }, `url: must be a base URL without credentials, query or fragment (the token comes from token_file or token_env)`},
		{"no token", func(c *Config) { c.TokenEnv = "" }, `token_file: required (or token_env): the service account token`},
		{"both tokens", func(c *Config) { c.TokenFile = "/etc/t" }, `token_env: give token_file or token_env, not both`},
		{"panel without dashboard", func(c *Config) { c.PanelID = 3 }, `panel_id: needs dashboard_uid: a panel belongs to a dashboard`},
		{"unknown field in a tag", func(c *Config) { c.Tags = []string{"ok", "{{ .Sevrice }}"} }, `tags[1]: .Sevrice is not a field of the event (see the template fields in actuators/README.md)`},
		{"empty text", func(c *Config) { c.Text = "" }, `text: must not be empty`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.URL, c.TokenEnv = "https://grafana.example.com", "GRAFANA_TOKEN"
			tc.edit(&c)
			if got := c.Validate().Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Grafana has no idempotency key: before a retry the actuator looks for the annotation
// an earlier attempt may have added (its answer lost) by its time range, dashboard,
// panel and tags, and finds it when time, end, text and tags (in any order) are the
// same; anything else, or a lookup Grafana refuses, is "not found" or an error, and the
// guard posts again.
func TestGrafanaApplied(t *testing.T) {
	onPanel := func(c *Config) { c.DashboardUID, c.PanelID = "{{ .Vars.dashboard }}", 4 }
	cases := []struct {
		name   string
		edit   func(*Config)
		posted *actuators.Event // what an earlier attempt posted, if anything
		ev     actuators.Event
		noRead bool
		found  bool
		err    string
		query  string
	}{
		{
			name: "nothing posted", edit: onPanel, ev: started(),
			query: "dashboardUID=dash-1&from=1772366280000&limit=100&panelId=4&tags=canaryd&tags=service%3Aweb&tags=analysis%3Agolden&tags=on_start&to=1772366280000&type=annotation",
		},
		{name: "the start's point on a panel", edit: onPanel, posted: ptr(started()), ev: started(), found: true},
		{
			name: "the failure's region, organisation-wide", posted: ptr(failed()), ev: failed(), found: true,
			query: "from=1772364600000&limit=100&tags=canaryd&tags=service%3Aweb&tags=analysis%3Agolden&tags=on_fail&to=1772366400000&type=annotation",
		},
		{name: "the failure as a point", edit: func(c *Config) { c.Region = false }, posted: ptr(failed()), ev: failed(), found: true},
		{name: "no tags", edit: func(c *Config) { c.Tags = nil }, posted: ptr(failed()), ev: failed(), found: true,
			query: "from=1772364600000&limit=100&to=1772366400000&type=annotation"},
		{
			name: "another text at the same time", posted: ptr(failed()),
			ev: func() actuators.Event { e := failed(); e.Reason = "aborted by alice"; return e }(),
		},
		{
			name: "another trigger's tags", posted: ptr(failed()),
			ev: func() actuators.Event { e := failed(); e.Trigger = "on_error"; return e }(),
		},
		{
			name: "a token without annotations:read", posted: ptr(failed()), ev: failed(), noRead: true,
			err: "GET http://127.0.0.1:PORT/grafana/api/annotations: 403 Forbidden",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, fg := newGrafana(t, tc.edit)
			if tc.posted != nil {
				if _, err := g.Act(t.Context(), *tc.posted); err != nil {
					t.Fatal(err)
				}
			}
			fg.noRead = tc.noRead
			res, found, err := g.Applied(t.Context(), tc.ev)
			if tc.err != "" {
				host := strings.TrimPrefix(strings.TrimSuffix(g.endpoint, "/grafana/api/annotations"), "http://")
				if err == nil || strings.ReplaceAll(err.Error(), host, "127.0.0.1:PORT") != tc.err || found || res.Status != 403 {
					t.Errorf("got %+v %v %v, want the error %q", res, found, err, tc.err)
				}
				return
			}
			if err != nil || found != tc.found {
				t.Fatalf("applied: %+v %v %v, want found %v", res, found, err, tc.found)
			}
			if want := "annotation 1 is already in Grafana (posted by an earlier attempt): not posted again"; found && res.Output != want {
				t.Errorf("output %q, want %q", res.Output, want)
			}
			if posts := len(fg.got); posts != map[bool]int{true: 1}[tc.posted != nil] {
				t.Errorf("%d annotations posted: a lookup never posts", posts)
			}
			if tc.query != "" && (len(fg.finds) != 1 || fg.finds[0] != tc.query) {
				t.Errorf("query\n got %q\nwant %q", fg.finds, tc.query)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
