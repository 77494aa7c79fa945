// Package grafana is the Grafana actuator: an annotation posted through Grafana's HTTP
// API (POST /api/annotations) for a canary's start, its verdict or what followed it,
// with tags a dashboard's annotation query selects, on one dashboard and panel or for
// the whole organisation. 200 is success; 408, 429 and 5xx are retried. It never shows
// the service account's token.
package grafana

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/redact"
)

// Grafana is a built grafana actuator.
type Grafana struct {
	o         actuators.Options
	c         Config
	endpoint  string
	token     string // from token_env; token_file is read at each attempt
	dashboard *actuators.Template
	tags      []*actuators.Template
	text      *actuators.Template
	client    *http.Client
}

var _ actuators.Actuator = (*Grafana)(nil)

// New builds a grafana actuator, reading the token from its file or the environment.
func New(c Config, o actuators.Options) (*Grafana, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("grafana %s: %w", o.Name, es)
	}
	g := &Grafana{o: o, c: c, endpoint: strings.TrimRight(c.URL, "/") + "/api/annotations"}
	if _, err := g.readToken(); err != nil {
		return nil, fmt.Errorf("grafana %s: %w", o.Name, err)
	}
	if c.TokenEnv != "" {
		g.token, _ = actuators.SecretFromEnv("token_env", c.TokenEnv)
	}
	g.dashboard, _ = actuators.ParseTemplate("dashboard_uid", c.DashboardUID)
	for i, t := range c.Tags {
		tt, _ := actuators.ParseTemplate(fmt.Sprintf("tags[%d]", i), t)
		g.tags = append(g.tags, tt)
	}
	g.text, _ = actuators.ParseTemplate("text", c.Text)
	var err error
	if g.client, err = actuators.NewHTTPClient(c.HTTPConfig, "grafana_"+o.Name); err != nil {
		return nil, fmt.Errorf("grafana %s: %w", o.Name, err)
	}
	return g, nil
}

func (g *Grafana) readToken() (string, error) {
	if g.c.TokenFile != "" {
		return actuators.SecretFromFile("token_file", g.c.TokenFile)
	}
	return actuators.SecretFromEnv("token_env", g.c.TokenEnv)
}

// Annotation is the body of POST /api/annotations: times are Unix milliseconds; TimeEnd
// makes it a region.
type Annotation struct {
	DashboardUID string   `json:"dashboardUID,omitempty"`
	PanelID      int64    `json:"panelId,omitempty"`
	Time         int64    `json:"time"`
	TimeEnd      int64    `json:"timeEnd,omitempty"`
	Tags         []string `json:"tags"`
	Text         string   `json:"text"`
}

// Limits of what one annotation carries, so a long reason or a hostile variable cannot
// make a request Grafana refuses or a tag list nobody can read.
const (
	maxText = 10000
	maxTag  = 100
)

// annotation builds the body for e. The text template sees the event's free text (name,
// service, reason, variables) HTML-escaped: Grafana shows an annotation's text as HTML,
// and a value from a registration must never become markup.
func (g *Grafana) annotation(e actuators.Event) (Annotation, error) {
	d := actuators.Data{Event: e}
	a := Annotation{PanelID: g.c.PanelID, Tags: []string{}}
	var err error
	if a.DashboardUID, err = g.dashboard.Render(d); err != nil {
		return Annotation{}, err
	}
	if strings.ContainsFunc(a.DashboardUID, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return Annotation{}, fmt.Errorf("dashboard_uid: rendered value contains a control character")
	}
	for _, t := range g.tags {
		v, err := t.Render(d)
		if err != nil {
			return Annotation{}, err
		}
		v = strings.TrimSpace(strings.Map(dropControl, v))
		if v == "" || slices.Contains(a.Tags, v) {
			continue
		}
		a.Tags = append(a.Tags, actuators.Truncate(v, maxTag))
	}
	if a.Text, err = g.text.Render(actuators.Data{Event: escaped(e)}); err != nil {
		return Annotation{}, err
	}
	a.Text = actuators.Truncate(a.Text, maxText)
	a.Time = e.Time.UnixMilli()
	switch start := e.Start; {
	case e.Trigger == "on_start" && !start.IsZero():
		// When the canary began taking traffic, which a registration may set in the past.
		a.Time = start.UnixMilli()
	case g.c.Region && !start.IsZero() && start.Before(e.Time):
		a.Time, a.TimeEnd = start.UnixMilli(), e.Time.UnixMilli()
	}
	return a, nil
}

func dropControl(r rune) rune {
	if r < ' ' || r == 0x7f {
		return -1
	}
	return r
}

// escaped is e with every free-text field a template may print HTML-escaped.
func escaped(e actuators.Event) actuators.Event { return e.MapText(html.EscapeString) }

func (g *Grafana) request(e actuators.Event, token string) ([]byte, map[string]string, error) {
	a, err := g.annotation(e)
	if err != nil {
		return nil, nil, err
	}
	b, err := actuators.MarshalJSON(a)
	if err != nil {
		return nil, nil, fmt.Errorf("encode annotation: %w", err)
	}
	return b, map[string]string{"Authorization": "Bearer " + token, "Accept": "application/json"}, nil
}

// Render returns the POST the actuator would make, the token hidden.
func (g *Grafana) Render(e actuators.Event) (actuators.Request, error) {
	b, h, err := g.request(e, actuators.Secret)
	if err != nil {
		return actuators.Request{}, err
	}
	u := redact.URL(g.endpoint)
	return actuators.Request{Target: "POST " + u, Method: http.MethodPost, URL: u, Header: h, Body: actuators.Truncate(string(b), g.o.Limit())}, nil
}

// Act posts the annotation once. Grafana answers 200 {"message":"Annotation added","id":…}.
func (g *Grafana) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	token := g.token
	if g.c.TokenFile != "" {
		var err error
		if token, err = g.readToken(); err != nil {
			return actuators.Result{}, actuators.Retryable(err) // a token being rotated
		}
	}
	b, h, err := g.request(e, token)
	if err != nil {
		return actuators.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(g.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, http.MethodPost, g.endpoint, b, e.Key, h)
	if err != nil {
		return actuators.Result{}, err
	}
	res, err := actuators.Send(ctx, g.client, req, g.o.Limit())
	res.Output = actuators.HideSecrets(res.Output, token)
	return res, actuators.HideSecretsErr(err, token)
}
