package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/net/html"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
	"github.com/canaryd/canaryd/web/auth"
)

// fakeOperator records the overrides it is asked for, and ends the canary in the source.
type fakeOperator struct {
	src   *fakeSource
	calls []string
}

func (f *fakeOperator) end(ctx context.Context, id, what string, status analysis.Status) (*analysis.Canary, error) {
	d, ok := f.src.details[id]
	if !ok {
		return nil, analysis.ErrNotFound
	}
	if d.Status.Final() {
		return nil, analysis.ErrFinished
	}
	f.calls = append(f.calls, what+" by "+identity.From(ctx, "nobody").Name)
	d.Status = status
	return d.Canary, nil
}

func (f *fakeOperator) Abort(ctx context.Context, id, reason string, actuate bool) (*analysis.Canary, error) {
	if len(reason) > analysis.MaxReasonLen {
		return nil, &analysis.InputError{Field: "reason", Msg: "too long"}
	}
	what := "abort " + id + " (" + reason + ")"
	if !actuate {
		what += " without actuators"
	}
	return f.end(ctx, id, what, analysis.StatusAborted)
}

func (f *fakeOperator) Promote(ctx context.Context, id, reason string) (*analysis.Canary, error) {
	return f.end(ctx, id, "promote "+id+" ("+reason+")", analysis.StatusPass)
}

// overrideTokenSuffix makes a test token of a name: "sre" authenticates with
// "sre-token-of-the-override-test".
const overrideTokenSuffix = "-token-of-the-override-test"

// mounted is the pages as package web mounts them, behind the auth middleware: with the
// tokens sre and grafana for a request that carries credentials, and without
// authentication (a daemon without server.auth) for one that does not.
func mounted(t *testing.T, h *Handler) http.Handler {
	t.Helper()
	var yaml strings.Builder
	yaml.WriteString("server:\n  auth:\n    tokens:\n")
	for _, name := range []string{"sre", "grafana"} {
		fmt.Fprintf(&yaml, "      - {name: %s, sha256: %q, roles: [read, operate]}\n", name, config.HashToken(name+overrideTokenSuffix))
	}
	cfg, err := config.Parse([]byte(yaml.String()+"analyses: {}\n"), config.Kinds{})
	if err != nil {
		t.Fatal(err)
	}
	authed, open := http.NewServeMux(), http.NewServeMux()
	h.Register(auth.NewRouter(authed, auth.New(cfg.Server.Auth), Surface))
	h.Register(auth.NewRouter(open, nil, Surface))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			authed.ServeHTTP(w, r)
			return
		}
		open.ServeHTTP(w, r)
	})
}

// A running canary's report carries abort and promote forms with a token tied to the
// caller and the canary; a submission without it, with another canary's or another
// user's, is refused and changes nothing.
func TestOverrideForms(t *testing.T) {
	_, a := loadAnalysis(t)
	newSetup := func() (http.Handler, *fakeOperator, *analysis.Detail, *analysis.Detail) {
		run := fixtureDetail(a, 3, false, false)
		run.ID = "runningcanary001"
		other := fixtureDetail(a, 3, false, false)
		other.ID = "runningcanary002"
		src := newFakeSource(run, other)
		op := &fakeOperator{src: src}
		return mounted(t, New(src, Options{Logger: zaptest.NewLogger(t), Now: now, Operator: op, CSRFKey: []byte("test key")})), op, run, other
	}
	// as authenticates as the token named who, or not at all for "anonymous".
	as := func(who string) func(*http.Request) *http.Request {
		return func(r *http.Request) *http.Request {
			if who != "anonymous" {
				r.SetBasicAuth("", who+overrideTokenSuffix)
			}
			return r
		}
	}
	token := func(t *testing.T, h http.Handler, id, who string) string {
		req := as(who)(httptest.NewRequest("GET", "/canaries/"+id, nil))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		doc := parseHTML(t, rec.Body.String())
		forms := findAll(doc, func(n *html.Node) bool { return n.Data == "form" })
		if len(forms) != 2 || attr(forms[0], "action") != id+"/abort" || attr(forms[1], "action") != id+"/promote" || attr(forms[0], "method") != "post" {
			t.Fatalf("forms of %s: %d", id, len(forms))
		}
		in := findAll(forms[0], func(n *html.Node) bool { return attr(n, "name") == "csrf" })
		if len(in) != 1 || len(attr(in[0], "value")) != 64 {
			t.Fatalf("no CSRF token in the form")
		}
		return attr(in[0], "value")
	}
	post := func(h http.Handler, path, who string, form url.Values) (int, string, string) {
		req := as(who)(httptest.NewRequest("POST", path, strings.NewReader(form.Encode())))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, rec.Header().Get("Location"), string(b)
	}

	t.Run("abort with the page's token", func(t *testing.T) {
		h, op, run, _ := newSetup()
		tok := token(t, h, run.ID, "sre")
		code, loc, body := post(h, "/canaries/"+run.ID+"/abort", "sre", url.Values{"csrf": {tok}, "reason": {" bad deploy "}, "actuate": {"true"}})
		if code != http.StatusSeeOther || loc != "/canaries/"+run.ID {
			t.Fatalf("%d %q %s", code, loc, body)
		}
		if len(op.calls) != 1 || op.calls[0] != "abort "+run.ID+" (bad deploy) by token:sre" {
			t.Errorf("calls %q", op.calls)
		}
		// Ended: no more forms, and a second submission is a 409.
		if code, _, _ := post(h, "/canaries/"+run.ID+"/promote", "sre", url.Values{"csrf": {tok}}); code != http.StatusConflict {
			t.Errorf("promote after abort: %d", code)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, as("sre")(httptest.NewRequest("GET", "/canaries/"+run.ID, nil)))
		if strings.Contains(rec.Body.String(), "<form") {
			t.Error("an ended canary's report still has the forms")
		}
	})
	t.Run("promote, actuators unchecked on abort", func(t *testing.T) {
		h, op, run, other := newSetup()
		if code, _, _ := post(h, "/canaries/"+run.ID+"/promote", "anonymous", url.Values{"csrf": {token(t, h, run.ID, "anonymous")}}); code != http.StatusSeeOther {
			t.Fatalf("promote: %d", code)
		}
		if code, _, _ := post(h, "/canaries/"+other.ID+"/abort", "anonymous", url.Values{"csrf": {token(t, h, other.ID, "anonymous")}}); code != http.StatusSeeOther {
			t.Fatalf("abort: %d", code)
		}
		want := "[promote " + run.ID + " () by ui:anonymous abort " + other.ID + " () without actuators by ui:anonymous]"
		if got := "[" + strings.Join(op.calls, " ") + "]"; got != want {
			t.Errorf("calls %s, want %s", got, want)
		}
	})
	for _, tc := range []struct {
		name string
		form func(h http.Handler, run, other *analysis.Detail) url.Values
		who  string
	}{
		{"no token", func(http.Handler, *analysis.Detail, *analysis.Detail) url.Values { return url.Values{"reason": {"x"}} }, "sre"},
		{"a made-up token", func(http.Handler, *analysis.Detail, *analysis.Detail) url.Values {
			return url.Values{"csrf": {strings.Repeat("0", 64)}}
		}, "sre"},
		{"another canary's token", func(h http.Handler, _, other *analysis.Detail) url.Values {
			return url.Values{"csrf": {token(t, h, other.ID, "sre")}}
		}, "sre"},
		{"another user's token", func(h http.Handler, run, _ *analysis.Detail) url.Values {
			return url.Values{"csrf": {token(t, h, run.ID, "sre")}}
		}, "grafana"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			h, op, run, other := newSetup()
			code, _, body := post(h, "/canaries/"+run.ID+"/abort", tc.who, tc.form(h, run, other))
			if code != http.StatusForbidden || !strings.Contains(body, "Form expired or not from this page") {
				t.Errorf("%d %s", code, body)
			}
			if len(op.calls) != 0 || run.Status != analysis.StatusRunning {
				t.Errorf("a refused form changed something: %q, %s", op.calls, run.Status)
			}
		})
	}
	t.Run("a process's tokens die with it", func(t *testing.T) {
		h, _, run, _ := newSetup()
		tok := token(t, h, run.ID, "sre")
		restarted := mounted(t, New(newFakeSource(run), Options{Now: func() time.Time { return now() }, Operator: &fakeOperator{src: newFakeSource(run)}}))
		if code, _, _ := post(restarted, "/canaries/"+run.ID+"/abort", "sre", url.Values{"csrf": {tok}}); code != http.StatusForbidden {
			t.Errorf("a token of another key: %d", code)
		}
	})
	t.Run("without an operator, no forms and no routes", func(t *testing.T) {
		run := fixtureDetail(a, 3, false, false)
		h := mounted(t, New(newFakeSource(run), Options{Now: now}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/canaries/"+run.ID, nil))
		if strings.Contains(rec.Body.String(), "<form") {
			t.Error("forms without an operator")
		}
		if code, _, _ := post(h, "/canaries/"+run.ID+"/abort", "sre", nil); code == http.StatusSeeOther {
			t.Error("the abort route answers without an operator")
		}
	})
}
