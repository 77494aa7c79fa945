package actuators

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"text/template"
	"text/template/parse"
)

// MaxRendered bounds what one template may produce, so a template ranging over a large
// map cannot build a request of unbounded size.
const MaxRendered = 1 << 20

// Data is what an actuator's templates see: the Event's fields (.ID, .Name, .Vars.app,
// .Canary.track, .Failing, …) and .Secrets, the kind's secrets read from the environment
// (shown as "<secret>" in what the audit log keeps).
type Data struct {
	Event
	Secrets map[string]string
}

// Template is a parsed actuator template. Parse once when the config is loaded, render
// per event. A missing map key is an error, never the text "<no value>" in a command.
type Template struct {
	tmpl *template.Template
	text string
}

// funcs are the functions templates may call. They are pure: a template cannot read the
// environment or the clock, so that what check-config accepts renders the same way later.
var funcs = template.FuncMap{
	// json encodes a value as JSON, for request bodies: {"comment": {{ json .Reason }}}.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  func(sep string, xs []string) string { return strings.Join(xs, sep) },
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	// trunc keeps the first n bytes of s (on a rune boundary).
	"trunc": func(n int, s string) string {
		if n < 0 || len(s) <= n {
			return s
		}
		for n > 0 && s[n]&0xC0 == 0x80 {
			n--
		}
		return s[:n]
	},
	// default returns def when v is empty: {{ default "prod" .Vars.env }} needs the key
	// to exist; use {{ index .Vars "env" | default "prod" }} when it may not.
	"default": func(def string, v any) string {
		s, _ := v.(string)
		if s == "" {
			return def
		}
		return s
	},
}

// ParseTemplate parses text as an actuator template named name.
func ParseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Funcs(urlEscapers).Funcs(jsonEscapers).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return &Template{tmpl: t, text: text}, nil
}

// Text is the template as written.
func (t *Template) Text() string { return t.text }

// LiteralPrefix is the text the template writes before its first action: what it
// always produces first, whatever the data ("--namespace=" in "--namespace={{ .Vars.ns }}").
func (t *Template) LiteralPrefix() string {
	if t.tmpl.Tree == nil || t.tmpl.Tree.Root == nil || len(t.tmpl.Tree.Root.Nodes) == 0 {
		return ""
	}
	if n, ok := t.tmpl.Tree.Root.Nodes[0].(*parse.TextNode); ok {
		return string(n.Text)
	}
	return ""
}

// Static reports whether the template has no actions: it renders as its text.
func (t *Template) Static() bool {
	if t.tmpl.Tree == nil || t.tmpl.Tree.Root == nil {
		return true
	}
	for _, n := range t.tmpl.Tree.Root.Nodes {
		if _, ok := n.(*parse.TextNode); !ok {
			return false
		}
	}
	return true
}

var errTooLarge = errors.New("rendered text is larger than 1 MiB")

type capWriter struct {
	b strings.Builder
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > MaxRendered {
		return 0, errTooLarge
	}
	return w.b.Write(p)
}

// Render executes the template. Nil maps render as empty ones, so {{ index .Vars "x" }}
// works on an event without variables.
func (t *Template) Render(d Data) (string, error) {
	if d.Vars == nil {
		d.Vars = map[string]string{}
	}
	if d.Baseline == nil {
		d.Baseline = map[string]string{}
	}
	if d.Canary == nil {
		d.Canary = map[string]string{}
	}
	if d.Secrets == nil {
		d.Secrets = map[string]string{}
	}
	var w capWriter
	if err := t.tmpl.Execute(&w, d); err != nil {
		return "", fmt.Errorf("render %s: %w", t.tmpl.Name(), err)
	}
	return w.b.String(), nil
}

// Redacted returns secrets with every value replaced by Secret.
func Redacted(secrets map[string]string) map[string]string {
	out := maps.Clone(secrets)
	for k := range out {
		out[k] = Secret
	}
	return out
}
