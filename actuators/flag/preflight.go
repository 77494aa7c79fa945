package flag

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
)

// pointerTokens splits a JSON pointer template into its tokens' templates: the text is
// cut at each "/" the config writes, so a "/" a value holds stays inside its token.
func pointerTokens(es *field.Errors, path, text string, secrets []string) []*actuators.Template {
	if !strings.HasPrefix(text, "/") {
		es.Add(path, "%q is not a JSON pointer: it starts with / (/environments/production/on)", text)
		return nil
	}
	var ts []*actuators.Template
	n := len(*es)
	for _, tok := range strings.Split(text[1:], "/") {
		ts = append(ts, actuators.CheckTemplate(es, path, tok, secrets...))
	}
	if len(*es) > n {
		return nil
	}
	return ts
}

func checkPointer(es *field.Errors, path, text string, secrets []string) {
	pointerTokens(es, path, text, secrets)
}

// Preflight reads the flag once: the preflight_url's GET must answer 2xx and, with
// preflight_on, the value there must be true. A 404 is "the flag does not exist".
func (f *Flag) Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	if f.preflight == nil {
		return actuators.Result{}, actuators.ErrNoPreflight
	}
	d := actuators.Data{Event: e, Secrets: f.secrets}
	u, err := f.preflight.Render(d)
	if err == nil {
		if err = actuators.CheckRenderedURL(u); err != nil {
			err = fmt.Errorf("preflight_url: %w", err)
		}
	}
	var h map[string]string
	if err == nil {
		h, err = actuators.RenderHeaders(f.headers, d)
	}
	var pointer string
	if err == nil && f.on != nil {
		pointer, err = f.renderPointer(d)
	}
	if err != nil {
		return actuators.Result{}, actuators.PreflightRender(redactErr(err, f.secrets))
	}
	// With preflight_on the whole answer is read (up to 1 MiB: a flag's JSON may be
	// longer than output_limit); what is kept is cut to the limit after.
	limit := f.o.Limit()
	if f.on != nil {
		limit = max(limit, actuators.MaxRendered)
	}
	res, err := actuators.SendPreflight(ctx, f.client, http.MethodGet, u, e.Key, h, limit)
	body := res.Output
	res.Output = actuators.Truncate(redactSecrets(res.Output, f.secrets), f.o.Limit())
	res.Target = redactSecrets(res.Target, f.secrets)
	if err != nil {
		if res.Status == http.StatusNotFound {
			err = fmt.Errorf("%w: the flag does not exist", err)
		}
		return res, redactErr(&actuators.Error{Result: res, Err: err}, f.secrets)
	}
	if f.on == nil {
		return res, nil
	}
	v, err := actuators.JSONField(body, pointer)
	if err != nil {
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("preflight_on: %w", err)}
	}
	if string(v) != "true" {
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("preflight_on: the flag is not on: %s is %s", pointer, actuators.Truncate(string(v), 100))}
	}
	return res, nil
}

// renderPointer renders preflight_on, each token escaped so that a value stays one
// token.
func (f *Flag) renderPointer(d actuators.Data) (string, error) {
	var b strings.Builder
	for _, t := range f.on {
		s, err := t.Render(d)
		if err != nil {
			return "", err
		}
		if !t.Static() {
			s = actuators.EscapePointerToken(s)
		}
		b.WriteString("/" + s)
	}
	return b.String(), nil
}
