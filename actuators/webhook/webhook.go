// Package webhook is the webhook actuator: it POSTs the event as JSON, signed with
// HMAC-SHA256 when a secret is configured, and reports 2xx as success, 5xx, 429 and
// network errors as worth retrying. It never retries itself and never logs the secret.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"net/http"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/redact"
)

// Version is the body's schema version; receivers should check it.
const Version = "1"

// Body is what a webhook POSTs: the event, flat, with the schema version.
type Body struct {
	Version string `json:"version"`
	actuators.Event
}

// Webhook is a built webhook actuator.
type Webhook struct {
	o       actuators.Options
	c       Config
	url     *actuators.Template
	headers map[string]*actuators.Template
	// preflight is the preflight_url's template, nil when none is set.
	preflight *actuators.Template
	secret    []byte
	client    *http.Client
}

var _ actuators.Actuator = (*Webhook)(nil)

// New builds a webhook from its config, reading the HMAC secret from the environment.
func New(c Config, o actuators.Options) (*Webhook, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("webhook %s: %w", o.Name, es)
	}
	w := &Webhook{o: o, c: c}
	w.url, _ = actuators.ParseURLTemplate("url", c.URL)
	if c.PreflightURL != "" {
		w.preflight, _ = actuators.ParseURLTemplate("preflight_url", c.PreflightURL)
	}
	var es field.Errors
	w.headers = actuators.CheckHeaders(&es, "headers", c.Headers)
	if c.SecretEnv != "" {
		s, err := actuators.SecretFromEnv("secret_env", c.SecretEnv)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", o.Name, err)
		}
		w.secret = []byte(s)
	}
	var err error
	if w.client, err = actuators.NewHTTPClient(c.HTTPConfig, "webhook_"+o.Name); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", o.Name, err)
	}
	return w, nil
}

// Sign returns the signature header's value for body: "sha256=" and the hex HMAC.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in constant time: what a
// receiver does with the header.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

type prepared struct {
	url    string
	header map[string]string
	body   []byte
}

func (w *Webhook) prepare(e actuators.Event) (prepared, error) {
	d := actuators.Data{Event: e}
	u, err := w.url.Render(d)
	if err != nil {
		return prepared{}, err
	}
	if err := actuators.CheckRenderedURL(u); err != nil {
		return prepared{}, fmt.Errorf("url: %w", err)
	}
	h, err := actuators.RenderHeaders(w.headers, d)
	if err != nil {
		return prepared{}, err
	}
	body, err := actuators.MarshalJSON(Body{Version: Version, Event: e})
	if err != nil {
		return prepared{}, fmt.Errorf("encode event: %w", err)
	}
	if w.secret != nil {
		if h == nil {
			h = map[string]string{}
		}
		h[w.c.SignatureHeader] = Sign(w.secret, body)
	}
	return prepared{url: u, header: h, body: body}, nil
}

// Render returns the POST the webhook would make. The signature is shown: it is an HMAC
// and reveals nothing of the secret.
func (w *Webhook) Render(e actuators.Event) (actuators.Request, error) {
	p, err := w.prepare(e)
	if err != nil {
		return actuators.Request{}, err
	}
	return actuators.Request{
		Target: http.MethodPost + " " + redact.URL(p.url), Method: http.MethodPost, URL: redact.URL(p.url),
		Header: p.header, Body: actuators.Truncate(string(p.body), w.o.Limit()),
	}, nil
}

// Act POSTs the event once.
func (w *Webhook) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	p, err := w.prepare(e)
	if err != nil {
		return actuators.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(w.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, http.MethodPost, p.url, p.body, e.Key, p.header)
	if err != nil {
		return actuators.Result{}, err
	}
	return actuators.Send(ctx, w.client, req, w.o.Limit())
}

// Preflight sends the preflight_url's GET (or HEAD) with the webhook's headers once;
// a 2xx passes. Nothing is signed: the request has no body.
func (w *Webhook) Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	if w.preflight == nil {
		return actuators.Result{}, actuators.ErrNoPreflight
	}
	d := actuators.Data{Event: e}
	u, err := w.preflight.Render(d)
	if err == nil {
		if err = actuators.CheckRenderedURL(u); err != nil {
			err = fmt.Errorf("preflight_url: %w", err)
		}
	}
	if err != nil {
		return actuators.Result{}, actuators.PreflightRender(err)
	}
	h, err := actuators.RenderHeaders(w.headers, d)
	if err != nil {
		return actuators.Result{}, actuators.PreflightRender(err)
	}
	return actuators.SendPreflight(ctx, w.client, w.c.PreflightMethod, u, e.Key, h, w.o.Limit())
}
