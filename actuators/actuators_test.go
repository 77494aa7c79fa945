package actuators

import (
	"context"
	"errors"
	"github.com/canaryd/canaryd/internal/field"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func testEvent() Event {
	score := 42.5
	return Event{
		Key: "abc/on_fail/rollback", Action: ActionTrigger, DedupKey: "abc", Actuator: "rollback",
		ID: "abc", Name: "web v2", Analysis: "golden", Status: "fail", Score: &score,
		Reason: `critical metric "error-rate" failed`, Kind: "verdict", Trigger: "on_fail", Cause: "critical",
		Service: "web", Vars: map[string]string{"app": "web"}, Canary: map[string]string{"track": "canary"},
		Failing: []FailingMetric{{Name: "error-rate", Classification: "high", Critical: true, Reason: "up 60%"}},
		Time:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func TestTemplateRender(t *testing.T) {
	cases := []struct {
		name, text, want, err string
		secrets               map[string]string
	}{
		{name: "vars and cohorts", text: "deployment/{{ .Vars.app }} {{ .Canary.track }} {{ .ID }}", want: "deployment/web canary abc"},
		{name: "json escapes", text: `{"r": {{ json .Reason }}}`, want: `{"r": "critical metric \"error-rate\" failed"}`},
		{name: "funcs", text: `{{ upper .Service }} {{ lower "AB" }} {{ trunc 3 .Name }} {{ index .Vars "env" | default "prod" }}`, want: "WEB ab web prod"},
		{name: "failing metrics", text: `{{ range .Failing }}{{ .Name }}={{ .Classification }}{{ end }}`, want: "error-rate=high"},
		{name: "score", text: `{{ .ScoreText }}`, want: "42.5"},
		{name: "secret", text: `Bearer {{ .Secrets.token }}`, secrets: map[string]string{"token": "s3cr3t"}, want: "Bearer s3cr3t"},
		{name: "missing var is an error", text: "{{ .Vars.namespace }}", err: `map has no entry for key "namespace"`},
		{name: "missing secret is an error", text: "{{ .Secrets.nope }}", err: `map has no entry for key "nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := ParseTemplate("t", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(Data{Event: testEvent(), Secrets: tc.secrets})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestTemplateLimits(t *testing.T) {
	if _, err := ParseTemplate("t", "{{ .Vars.app "); err == nil {
		t.Error("unterminated action parsed")
	}
	// A template cannot build an unbounded request.
	tmpl, err := ParseTemplate("big", `{{ range .Failing }}{{ .Reason }}{{ end }}`)
	if err != nil {
		t.Fatal(err)
	}
	e := testEvent()
	e.Failing = make([]FailingMetric, 3000)
	for i := range e.Failing {
		e.Failing[i].Reason = strings.Repeat("x", 1000)
	}
	if _, err := tmpl.Render(Data{Event: e}); !errors.Is(err, errTooLarge) {
		t.Errorf("want errTooLarge, got %v", err)
	}
	if got := Redacted(map[string]string{"a": "x", "b": "y"}); got["a"] != Secret || got["b"] != Secret {
		t.Errorf("Redacted: %v", got)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 0, "hello"},
		{"hello world", 5, "hello…[6 bytes cut]"},
		{"héllo", 2, "h…[5 bytes cut]"}, // never splits a rune
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestSendClassifies(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		wantErr    bool
		retry      bool
		retryAfter time.Duration
	}{
		{name: "200", status: 200, body: "ok"},
		{name: "202", status: 202, body: `{"status":"success"}`},
		{name: "400 is final", status: 400, body: "invalid_payload", wantErr: true},
		{name: "404 is final", status: 404, body: "no_service", wantErr: true},
		{name: "408 retries", status: 408, wantErr: true, retry: true},
		{name: "429 retries after", status: 429, header: map[string]string{"Retry-After": "7"}, wantErr: true, retry: true, retryAfter: 7 * time.Second},
		{name: "500 retries", status: 500, body: "rollup_error", wantErr: true, retry: true},
		{name: "503 retries", status: 503, wantErr: true, retry: true},
		{name: "301 is final", status: 301, header: map[string]string{"Location": "/elsewhere"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get(HeaderIdempotencyKey) != "k1" || r.Header.Get("User-Agent") != UserAgent {
					t.Errorf("headers: %v", r.Header)
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := NewRequest(ctx, "POST", srv.URL, []byte(`{}`), "k1", nil)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := Send(ctx, client, req, 100)
			if (err != nil) != tc.wantErr || IsRetryable(err) != tc.retry || RetryAfterOf(err) != tc.retryAfter {
				t.Fatalf("err %v (retry %v, after %s)", err, IsRetryable(err), RetryAfterOf(err))
			}
			if res.Status != tc.status || res.Output != tc.body {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestSendNetworkErrors(t *testing.T) {
	// A port nothing listens on: connection refused is worth retrying.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := NewRequest(ctx, "POST", "http://"+addr+"/secret/path", nil, "", nil)
	_, err = Send(ctx, http.DefaultClient, req, 0)
	if !IsRetryable(err) {
		t.Errorf("refused: want retryable, got %v", err)
	}
	// A secret URL never shows in the error.
	sctx := WithSecretURL(ctx)
	req, _ = NewRequest(sctx, "POST", "http://"+addr+"/services/T000/B000/XXXX", nil, "", nil)
	_, err = Send(sctx, http.DefaultClient, req, 0)
	if err == nil || strings.Contains(err.Error(), "XXXX") || !strings.Contains(err.Error(), Secret) {
		t.Errorf("secret URL in error: %v", err)
	}
	// A receiver slower than the attempt's deadline: retryable.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	tctx, tcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer tcancel()
	req, _ = NewRequest(tctx, "POST", slow.URL, nil, "", nil)
	if _, err := Send(tctx, http.DefaultClient, req, 0); !IsRetryable(err) {
		t.Errorf("timeout: want retryable, got %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-3", 0}, {"soon", 0}, {"999999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
	} {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestFieldChecks(t *testing.T) {
	var es field.Errors
	CheckEnvName(&es, "a", "")
	CheckEnvName(&es, "b", "1X")
	CheckEnvName(&es, "c", "OK_1")
	CheckURL(&es, "d", "ftp://x")
	CheckURL(&es, "e", "http://{{ .Vars.host }}/x") // checked after rendering
	CheckHeaders(&es, "headers", map[string]string{"Bad Name": "x", "X-Ok": "{{ .ID }}", "X-Broken": "{{"})
	want := []string{
		"a: required",
		`b: "1X" is not an environment variable name`,
		`d: URL scheme must be http or https, got "ftp"`,
		"headers.Bad Name: not a valid header name",
		"headers.X-Broken: parse template: template: headers.X-Broken:1: unclosed action",
	}
	if len(es) != len(want) {
		t.Fatalf("got %v", es)
	}
	for i := range want {
		if es[i].Error() != want[i] {
			t.Errorf("[%d] %q, want %q", i, es[i].Error(), want[i])
		}
	}
}

// FuzzTemplate: no template text makes parsing or rendering panic, and what the audit
// log shows (rendered with redacted secrets) never holds a secret the template text does
// not itself contain.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"deployment/{{ .Vars.app }}",
		`{"r": {{ json .Reason }}, "t": "{{ .Secrets.token }}"}`,
		`{{ range .Failing }}{{ .Name }} {{ end }}`,
		`{{ .Secrets.token | trunc 3 | upper }}`,
		`{{ printf "%s" .Secrets }}`,
		"{{ index .Vars \"x\" | default \"y\" }}",
	} {
		f.Add(s)
	}
	const secret = "Zq9-very-secret-value"
	f.Fuzz(func(t *testing.T, text string) {
		tmpl, err := ParseTemplate("fuzz", text)
		if err != nil {
			return
		}
		out, err := tmpl.Render(Data{Event: testEvent(), Secrets: Redacted(map[string]string{"token": secret})})
		if err == nil && strings.Contains(out, secret) && !strings.Contains(text, secret) {
			t.Fatalf("redacted render leaked the secret: %q", out)
		}
	})
}

// Each action of a URL template is escaped for the part of the URL it lands in.
func TestURLTemplateEscapes(t *testing.T) {
	const attack = "../../admin/delete?all=1&x="
	vars := map[string]string{"app": attack, "dots": "..", "host": "flags.internal", "evil_host": "evil.com/x?", "pw": "p@ss:w/rd", "env": "prod eu", "q": "urlq&x"}
	cases := []struct {
		name, text, want, err string
	}{
		{name: "path segment", text: "http://deploy/v1/{{ .Vars.app }}/abort", want: "http://deploy/v1/..%2F..%2Fadmin%2Fdelete%3Fall=1&x=/abort"},
		{name: "query value", text: "http://deploy/abort?app={{ .Vars.app }}&env={{ .Vars.env }}", want: "http://deploy/abort?app=..%2F..%2Fadmin%2Fdelete%3Fall%3D1%26x%3D&env=prod+eu"},
		{name: "fragment", text: "http://deploy/abort#{{ .Vars.app }}", want: "http://deploy/abort#..%2F..%2Fadmin%2Fdelete%3Fall=1&x="},
		{name: "a segment of dots", text: "http://deploy/v1/{{ .Vars.dots }}/abort", want: "http://deploy/v1/%2E%2E/abort"},
		{name: "host label", text: "http://{{ .Vars.host }}:8080/x", want: "http://flags.internal:8080/x"},
		{name: "host refuses delimiters", text: "http://{{ .Vars.evil_host }}/x", err: `value "evil.com/x?" cannot be part of the URL's host`},
		{name: "userinfo", text: "http://u:{{ .Vars.pw }}@h/x", want: "http://u:p%40ss%3Aw%2Frd@h/x"},
		{name: "already urlquery", text: "http://h/x?q={{ .Vars.q | urlquery }}", want: "http://h/x?q=urlq%26x"},
		{name: "inside if", text: "http://h/x{{ if .Vars.app }}/{{ .Vars.app }}{{ end }}?a={{ .Vars.env }}", want: "http://h/x/..%2F..%2Fadmin%2Fdelete%3Fall=1&x=?a=prod+eu"},
		{name: "range in path", text: "http://h/{{ range .Failing }}{{ .Name }}/{{ end }}", want: "http://h/error-rate/"},
		{name: "literal parts kept", text: "http://h/a%2Fb?x=1&y=2#top", want: "http://h/a%2Fb?x=1&y=2#top"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := ParseURLTemplate("url", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			e := testEvent()
			e.Vars = vars
			got, err := tmpl.Render(Data{Event: e})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
	for _, text := range []string{"{{ .Vars.url }}", "http{{ .Vars.s }}://h/"} {
		var es field.Errors
		if CheckURLTemplate(&es, "url", text) != nil || !strings.Contains(es.Error(), `write the scheme and "://" literally`) {
			t.Errorf("%s: want a config error, got %v", text, es)
		}
	}
}
