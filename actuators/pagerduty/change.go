package pagerduty

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/redact"
)

// Change is a built pagerduty actuator in mode change: it sends change events, which
// open nothing, so it is not Resolvable.
type Change struct {
	o       actuators.Options
	c       Config
	key     string
	summary *actuators.Template
	source  *actuators.Template
	client  *http.Client
	// restCheck is the preflight (the REST API key's check), as an alert's.
	restCheck
}

var _ actuators.Actuator = (*Change)(nil)

func newChange(c Config, o actuators.Options) (*Change, error) {
	k, err := actuators.SecretFromEnv("routing_key_env", c.RoutingKeyEnv)
	if err != nil {
		return nil, fmt.Errorf("pagerduty %s: %w", o.Name, err)
	}
	ch := &Change{o: o, c: c, key: k}
	ch.summary, _ = actuators.ParseTemplate("summary", c.Summary)
	ch.source, _ = actuators.ParseTemplate("source", c.Source)
	if ch.client, err = actuators.NewHTTPClient(c.HTTPConfig, "pagerduty_"+o.Name); err != nil {
		return nil, fmt.Errorf("pagerduty %s: %w", o.Name, err)
	}
	if ch.restCheck, err = newRESTCheck(c, o, ch.client); err != nil {
		return nil, fmt.Errorf("pagerduty %s: %w", o.Name, err)
	}
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
	b, err := actuators.MarshalJSON(ev)
	if err != nil {
		return actuators.Request{}, fmt.Errorf("encode change event: %w", err)
	}
	u := redact.URL(ch.c.Endpoint())
	return actuators.Request{Target: "POST " + u + " (change)", Method: http.MethodPost, URL: u, Body: actuators.Truncate(string(b), ch.o.Limit())}, nil
}

// Act sends the change event once. PagerDuty answers 202 {"status":"success",…}.
func (ch *Change) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	ev, err := ch.event(e, ch.key)
	if err != nil {
		return actuators.Result{}, err
	}
	b, err := actuators.MarshalJSON(ev)
	if err != nil {
		return actuators.Result{}, fmt.Errorf("encode change event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(ch.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, http.MethodPost, ch.c.Endpoint(), b, e.Key, nil)
	if err != nil {
		return actuators.Result{}, err
	}
	res, err := actuators.Send(ctx, ch.client, req, ch.o.Limit())
	res.Output = actuators.HideSecrets(res.Output, ch.key)
	return res, actuators.HideSecretsErr(err, ch.key)
}
