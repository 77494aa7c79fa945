// Package pagerduty is the PagerDuty actuator: an Events API v2 trigger whose dedup key
// is the failing canary's id, and the matching resolve when a later canary of the same
// service passes (the guard asks for it); or, in mode change, a change event (Change
// Events API) that tells the on-call a canary started or ended without paging. 202 is
// success; 429 and 5xx are retried. It never shows the routing key.
package pagerduty

import (
	"context"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// PagerDuty is a built pagerduty actuator.
type PagerDuty struct {
	sender
	summary   *actuators.Template
	source    *actuators.Template
	component *actuators.Template
	group     *actuators.Template
	class     *actuators.Template
}

var _ actuators.Resolvable = (*PagerDuty)(nil)

// New builds a pagerduty actuator, reading the routing key from the environment: a
// *PagerDuty for alerts, a *Change for change events (which nothing resolves).
func New(c Config, o actuators.Options) (actuators.Actuator, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("pagerduty %s: %w", o.Name, es)
	}
	if c.Mode == ModeChange {
		return newChange(c, o)
	}
	return newAlert(c, o)
}

func newAlert(c Config, o actuators.Options) (*PagerDuty, error) {
	s, err := newSender(c, o)
	if err != nil {
		return nil, err
	}
	p := &PagerDuty{sender: s}
	p.summary, _ = actuators.ParseTemplate("summary", c.Summary)
	p.source, _ = actuators.ParseTemplate("source", c.Source)
	p.component, _ = actuators.ParseTemplate("component", c.Component)
	p.group, _ = actuators.ParseTemplate("group", c.Group)
	p.class, _ = actuators.ParseTemplate("class", c.Class)
	return p, nil
}

// Resolvable marks PagerDuty as closing, on a later pass, the incident it opened.
func (p *PagerDuty) Resolvable() {}

// Event is an Events API v2 event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []Link   `json:"links,omitempty"`
}

// Payload is a trigger's payload.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown on the incident.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Limits of the Events API.
const (
	maxSummary  = 1024
	maxDedupKey = 255
)

func (p *PagerDuty) event(e actuators.Event, key string) (Event, error) {
	dedup := e.DedupKey
	if dedup == "" {
		dedup = e.ID
	}
	ev := Event{RoutingKey: key, EventAction: "trigger", DedupKey: actuators.Truncate(dedup, maxDedupKey)}
	if e.Action == actuators.ActionResolve {
		// A resolve needs only the key of what it closes.
		ev.EventAction = "resolve"
		return ev, nil
	}
	d := actuators.Data{Event: e}
	render := func(t *actuators.Template) (string, error) { return t.Render(d) }
	var err error
	pl := &Payload{Severity: p.c.Severity, Timestamp: e.Time.UTC().Format(time.RFC3339)}
	if pl.Summary, err = render(p.summary); err != nil {
		return Event{}, err
	}
	pl.Summary = actuators.Truncate(pl.Summary, maxSummary-32)
	if pl.Source, err = render(p.source); err != nil {
		return Event{}, err
	}
	if pl.Component, err = render(p.component); err != nil {
		return Event{}, err
	}
	if pl.Group, err = render(p.group); err != nil {
		return Event{}, err
	}
	if pl.Class, err = render(p.class); err != nil {
		return Event{}, err
	}
	details := map[string]any{
		"canary_id": e.ID, "canary": e.Name, "analysis": e.Analysis, "status": e.Status,
		"reason": e.Reason, "trigger": e.Trigger, "cause": e.Cause, "vars": e.Vars,
	}
	if e.Score != nil {
		details["score"] = *e.Score
	}
	if len(e.Failing) > 0 {
		details["failing_metrics"] = e.Failing
	}
	pl.CustomDetails = details
	ev.Payload = pl
	ev.Client = "canaryd"
	if e.Link != "" {
		ev.ClientURL = e.Link
		ev.Links = []Link{{Href: e.Link, Text: "Canary " + e.Name}}
	}
	return ev, nil
}

// Render returns the event the actuator would enqueue, routing key hidden.
func (p *PagerDuty) Render(e actuators.Event) (actuators.Request, error) {
	ev, err := p.event(e, actuators.Secret)
	if err != nil {
		return actuators.Request{}, err
	}
	req, err := p.render(ev, "event")
	if err != nil {
		return actuators.Request{}, err
	}
	req.Target += " (" + ev.EventAction + " " + ev.DedupKey + ")"
	return req, nil
}

// Act enqueues the event once.
func (p *PagerDuty) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	ev, err := p.event(e, p.key)
	if err != nil {
		return actuators.Result{}, err
	}
	return p.send(ctx, e, ev, "event")
}
