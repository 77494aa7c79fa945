// Package flag is the feature-flag kill switch: one templated HTTP request (method, URL,
// headers, body) with secrets read from the environment, which serves LaunchDarkly's flag
// PATCH as well as a self-hosted flag service. It never shows a secret in what it renders
// for the audit log and never retries itself.
package flag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/redact"
)

// Flag is a built flag actuator.
type Flag struct {
	o       actuators.Options
	c       Config
	url     *actuators.Template
	body    *actuators.Template
	headers map[string]*actuators.Template
	secrets map[string]string
	client  *http.Client
	// preflight and on are preflight_url and preflight_on's tokens, nil when not set.
	preflight *actuators.Template
	on        []*actuators.Template
}

var _ actuators.Actuator = (*Flag)(nil)

// New builds a flag actuator, reading its secrets from the environment.
func New(c Config, o actuators.Options) (*Flag, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("flag %s: %w", o.Name, es)
	}
	f := &Flag{o: o, c: c, secrets: map[string]string{}}
	var es field.Errors
	f.url = actuators.CheckURLTemplate(&es, "url", c.URL)
	if c.Body != "" {
		if jsonBody(c.Headers) {
			// Each value lands escaped for its place in the JSON: a quote in a reason or
			// a secret cannot end a string or add a key.
			f.body = actuators.CheckJSONTemplate(&es, "body", c.Body)
		} else {
			f.body = actuators.CheckTemplate(&es, "body", c.Body)
		}
	}
	f.headers = actuators.CheckHeaders(&es, "headers", c.Headers)
	names := slices.Sorted(maps.Keys(c.Secrets))
	if c.PreflightURL != "" {
		f.preflight = actuators.CheckURLTemplate(&es, "preflight_url", c.PreflightURL, names...)
	}
	if c.PreflightOn != "" {
		f.on = pointerTokens(&es, "preflight_on", c.PreflightOn, names)
	}
	for name, env := range c.Secrets {
		v, err := actuators.SecretFromEnv("secrets."+name, env)
		if err != nil {
			return nil, fmt.Errorf("flag %s: %w", o.Name, err)
		}
		f.secrets[name] = v
	}
	var err error
	if f.client, err = actuators.NewHTTPClient(c.HTTPConfig, "flag_"+o.Name); err != nil {
		return nil, fmt.Errorf("flag %s: %w", o.Name, err)
	}
	return f, nil
}

type prepared struct {
	url    string
	header map[string]string
	body   []byte
}

func (f *Flag) prepare(e actuators.Event, secrets map[string]string) (prepared, error) {
	d := actuators.Data{Event: e, Secrets: secrets}
	u, err := f.url.Render(d)
	if err != nil {
		return prepared{}, err
	}
	if err := actuators.CheckRenderedURL(u); err != nil {
		return prepared{}, fmt.Errorf("url: %w", err)
	}
	h, err := actuators.RenderHeaders(f.headers, d)
	if err != nil {
		return prepared{}, err
	}
	var body []byte
	if f.body != nil {
		s, err := f.body.Render(d)
		if err != nil {
			return prepared{}, err
		}
		body = []byte(s)
		// A JSON body the template's own text broke is caught here rather than sent. The
		// error names the place, never the text: it may hold a secret.
		if isJSON(h) {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				var se *json.SyntaxError
				if errors.As(err, &se) {
					return prepared{}, fmt.Errorf("body: rendered text is not valid JSON (at byte %d of %d)", se.Offset, len(body))
				}
				return prepared{}, fmt.Errorf("body: rendered text is not valid JSON (%d bytes)", len(body))
			}
		}
	}
	return prepared{url: u, header: h, body: body}, nil
}

// jsonBody reports whether the configured headers leave the body JSON: no Content-Type,
// a JSON one, or one chosen by a template (checked again once rendered).
func jsonBody(headers map[string]string) bool {
	for k, v := range headers {
		if strings.EqualFold(k, "Content-Type") && !strings.Contains(v, "{{") {
			return isJSON(map[string]string{k: v})
		}
	}
	return true
}

// isJSON reports whether the request's Content-Type is JSON (the default with a body).
func isJSON(h map[string]string) bool {
	for k, v := range h {
		if strings.EqualFold(k, "Content-Type") {
			mt, _, err := mime.ParseMediaType(v)
			return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
		}
	}
	return true
}

// Render returns the request with every secret shown as "<secret>".
func (f *Flag) Render(e actuators.Event) (actuators.Request, error) {
	p, err := f.prepare(e, actuators.Redacted(f.secrets))
	if err != nil {
		return actuators.Request{}, err
	}
	return actuators.Request{
		Target: f.c.Method + " " + redact.URL(p.url), Method: f.c.Method, URL: redact.URL(p.url), Header: p.header,
		Body: actuators.Truncate(string(p.body), f.o.Limit()),
	}, nil
}

// Act sends the request once.
func (f *Flag) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	p, err := f.prepare(e, f.secrets)
	if err != nil {
		return actuators.Result{}, redactErr(err, f.secrets)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(f.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, f.c.Method, p.url, p.body, e.Key, p.header)
	if err != nil {
		return actuators.Result{}, err
	}
	res, err := actuators.Send(ctx, f.client, req, f.o.Limit())
	// A receiver may echo a header back in its body, and a URL may hold a secret.
	res.Output = redactSecrets(res.Output, f.secrets)
	if err != nil {
		err = redactErr(err, f.secrets)
	}
	return res, err
}

// redactSecrets hides each secret in s (actuators.HideSecrets).
func redactSecrets(s string, secrets map[string]string) string {
	return actuators.HideSecrets(s, slices.Collect(maps.Values(secrets))...)
}

func redactErr(err error, secrets map[string]string) error {
	return actuators.HideSecretsErr(err, slices.Collect(maps.Values(secrets))...)
}
