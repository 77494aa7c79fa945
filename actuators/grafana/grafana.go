// Package grafana is the Grafana actuator: an annotation posted through Grafana's HTTP
// API (POST /api/annotations) for a canary's start, its verdict or what followed it,
// with tags a dashboard's annotation query selects, on one dashboard and panel or for
// the whole organisation. 200 is success; 408, 429 and 5xx are retried. Grafana has no
// idempotency key, so before a retry it looks for the annotation an earlier attempt may
// have added (GET /api/annotations) and posts only when none is there. It never shows
// the service account's token.
package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
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

var _ actuators.Lookup = (*Grafana)(nil)

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

// attemptToken is the token for one attempt: token_file is read again each time.
func (g *Grafana) attemptToken() (string, error) {
	if g.c.TokenFile == "" {
		return g.token, nil
	}
	token, err := g.readToken()
	if err != nil {
		return "", actuators.Retryable(err) // a token being rotated
	}
	return token, nil
}

// Act posts the annotation once. Grafana answers 200 {"message":"Annotation added","id":…}.
func (g *Grafana) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	token, err := g.attemptToken()
	if err != nil {
		return actuators.Result{}, err
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

// maxFound bounds the annotations one lookup reads (Grafana's limit parameter) and
// maxFoundBytes their answer.
const (
	maxFound      = 100
	maxFoundBytes = 4 << 20
)

// found is the part of an annotation GET /api/annotations returns that Applied compares.
type found struct {
	ID           int64    `json:"id"`
	DashboardUID string   `json:"dashboardUID"`
	PanelID      int64    `json:"panelId"`
	Time         int64    `json:"time"`
	TimeEnd      int64    `json:"timeEnd"`
	Text         string   `json:"text"`
	Tags         []string `json:"tags"`
}

// Applied says whether the annotation e's earlier attempt posted is in Grafana: one on
// the same dashboard and panel with the same time, end, text and tags (in any order),
// asked through GET /api/annotations over its time range (the token needs
// annotations:read, which Editor has). The body is the same at every attempt, and two
// annotations equal in all of that would show as one to a reader anyway.
func (g *Grafana) Applied(ctx context.Context, e actuators.Event) (actuators.Result, bool, error) {
	want, err := g.annotation(e)
	if err != nil {
		return actuators.Result{}, false, err
	}
	token, err := g.attemptToken()
	if err != nil {
		return actuators.Result{}, false, err
	}
	end := max(want.Time, want.TimeEnd)
	q := url.Values{"from": {strconv.FormatInt(want.Time, 10)}, "to": {strconv.FormatInt(end, 10)},
		"type": {"annotation"}, "limit": {strconv.Itoa(maxFound)}}
	if want.DashboardUID != "" {
		q.Set("dashboardUID", want.DashboardUID)
	}
	if want.PanelID > 0 {
		q.Set("panelId", strconv.FormatInt(want.PanelID, 10))
	}
	for _, t := range want.Tags {
		q.Add("tags", t) // all of them (matchAny is false by default)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(g.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, http.MethodGet, g.endpoint+"?"+q.Encode(), nil, e.Key,
		map[string]string{"Authorization": "Bearer " + token, "Accept": "application/json"})
	if err != nil {
		return actuators.Result{}, false, err
	}
	where := "GET " + redact.URL(g.endpoint)
	resp, err := g.client.Do(req)
	if err != nil {
		return actuators.Result{}, false, actuators.HideSecretsErr(actuators.TransportError(ctx, where, err), token)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxFoundBytes+1))
	res := actuators.Result{Status: resp.StatusCode, Output: actuators.HideSecrets(actuators.Truncate(string(body), g.o.Limit()), token)}
	if err := actuators.StatusError(where, res, resp.Status, 0); err != nil {
		return res, false, actuators.HideSecretsErr(err, token)
	}
	if rerr != nil {
		return res, false, fmt.Errorf("%s: read the answer: %w", where, rerr)
	}
	if len(body) > maxFoundBytes {
		return res, false, fmt.Errorf("%s: answer over %d bytes", where, maxFoundBytes)
	}
	var list []found
	if err := json.Unmarshal(body, &list); err != nil {
		return res, false, fmt.Errorf("%s: decode the answer: %w", where, err)
	}
	for _, f := range list {
		if f.same(want) {
			return actuators.Result{Status: resp.StatusCode,
				Output: fmt.Sprintf("annotation %d is already in Grafana (posted by an earlier attempt): not posted again", f.ID)}, true, nil
		}
	}
	return res, false, nil
}

// same says whether f is the annotation a: Grafana answers a point's timeEnd as its time,
// and a Grafana older than dashboardUID in its answers filtered by it already.
func (f found) same(a Annotation) bool {
	end := a.TimeEnd
	if end == 0 {
		end = a.Time
	}
	ft, at := slices.Clone(f.Tags), slices.Clone(a.Tags)
	slices.Sort(ft)
	slices.Sort(at)
	return (f.DashboardUID == a.DashboardUID || f.DashboardUID == "" && a.DashboardUID != "") && f.PanelID == a.PanelID && f.Time == a.Time &&
		(f.TimeEnd == end || f.TimeEnd == 0 && a.TimeEnd == 0) && f.Text == a.Text && slices.Equal(ft, at)
}
