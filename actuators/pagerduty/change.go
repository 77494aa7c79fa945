package pagerduty

import (
	"context"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// Change is a built pagerduty actuator in mode change: it sends change events, which
// open nothing, so it is not Resolvable.
type Change struct {
	sender
	summary *actuators.Template
	source  *actuators.Template
}

var _ actuators.Actuator = (*Change)(nil)

func newChange(c Config, o actuators.Options) (*Change, error) {
	s, err := newSender(c, o)
	if err != nil {
		return nil, err
	}
	ch := &Change{sender: s}
	ch.summary, _ = actuators.ParseTemplate("summary", c.Summary)
	ch.source, _ = actuators.ParseTemplate("source", c.Source)
	return ch, nil
}

// ChangeEvent is a Change Events API event (POST /v2/change/enqueue).
type ChangeEvent struct {
	RoutingKey string        `json:"routing_key"`
	Payload    ChangePayload `json:"payload"`
	Links      []Link        `json:"links,omitempty"`
}

// ChangePayload is a change event's payload: summary is required (1024 characters at
// most), the others optional.
type ChangePayload struct {
	Summary       string         `json:"summary"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Source        string         `json:"source,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

func (ch *Change) event(e actuators.Event, key string) (ChangeEvent, error) {
	d := actuators.Data{Event: e}
	pl := ChangePayload{}
	var err error
	if pl.Summary, err = ch.summary.Render(d); err != nil {
		return ChangeEvent{}, err
	}
	pl.Summary = actuators.Truncate(pl.Summary, maxSummary-32)
	if pl.Source, err = ch.source.Render(d); err != nil {
		return ChangeEvent{}, err
	}
	// A start is when the canary began taking traffic; anything else, when it happened.
	at := e.Time
	if e.Trigger == "on_start" && !e.Start.IsZero() {
		at = e.Start
	}
	pl.Timestamp = at.UTC().Format(time.RFC3339)
	details := map[string]any{
		"canary_id": e.ID, "canary": e.Name, "analysis": e.Analysis, "service": e.Service, "status": e.Status,
		"trigger": e.Trigger, "vars": e.Vars, "baseline": e.Baseline, "canary_cohort": e.Canary,
	}
	if !e.Start.IsZero() {
		details["start"] = e.Start.UTC().Format(time.RFC3339)
	}
	if e.Trigger != "on_start" {
		details["reason"], details["cause"] = e.Reason, e.Cause
		if e.Score != nil {
			details["score"] = *e.Score
		}
		if len(e.Failing) > 0 {
			details["failing_metrics"] = e.Failing
		}
	}
	pl.CustomDetails = details
	ev := ChangeEvent{RoutingKey: key, Payload: pl}
	if e.Link != "" {
		ev.Links = []Link{{Href: e.Link, Text: actuators.Truncate("Canary "+e.Name, 256)}}
	}
	return ev, nil
}

// Render returns the change event the actuator would send, routing key hidden.
func (ch *Change) Render(e actuators.Event) (actuators.Request, error) {
	ev, err := ch.event(e, actuators.Secret)
	if err != nil {
		return actuators.Request{}, err
	}
	req, err := ch.render(ev, "change event")
	if err != nil {
		return actuators.Request{}, err
	}
	req.Target += " (change)"
	return req, nil
}

// Act sends the change event once.
func (ch *Change) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	ev, err := ch.event(e, ch.key)
	if err != nil {
		return actuators.Result{}, err
	}
	return ch.send(ctx, e, ev, "change event")
}
