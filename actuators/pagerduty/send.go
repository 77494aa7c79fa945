package pagerduty

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/redact"
)

// sender is what both modes share: the routing key, the HTTP client, the preflight,
// and posting one event to the Events API endpoint.
type sender struct {
	o      actuators.Options
	c      Config
	key    string
	client *http.Client
	// restCheck is the preflight (the REST API key's check).
	restCheck
}

func newSender(c Config, o actuators.Options) (sender, error) {
	k, err := actuators.SecretFromEnv("routing_key_env", c.RoutingKeyEnv)
	if err != nil {
		return sender{}, fmt.Errorf("pagerduty %s: %w", o.Name, err)
	}
	s := sender{o: o, c: c, key: k}
	if s.client, err = actuators.NewHTTPClient(c.HTTPConfig, "pagerduty_"+o.Name); err != nil {
		return sender{}, fmt.Errorf("pagerduty %s: %w", o.Name, err)
	}
	if s.restCheck, err = newRESTCheck(c, o, s.client); err != nil {
		return sender{}, fmt.Errorf("pagerduty %s: %w", o.Name, err)
	}
	return s, nil
}

// render is the request that would post ev (built with the routing key hidden), its
// target naming what it does.
func (s sender) render(ev any, what string) (actuators.Request, error) {
	b, err := actuators.MarshalJSON(ev)
	if err != nil {
		return actuators.Request{}, fmt.Errorf("encode %s: %w", what, err)
	}
	u := redact.URL(s.c.Endpoint())
	return actuators.Request{Target: "POST " + u, Method: http.MethodPost, URL: u, Body: actuators.Truncate(string(b), s.o.Limit())}, nil
}

// send posts ev once under the timeout; the routing key never shows in the result.
// PagerDuty answers 202 with {"status":"success",…}.
func (s sender) send(ctx context.Context, e actuators.Event, ev any, what string) (actuators.Result, error) {
	b, err := actuators.MarshalJSON(ev)
	if err != nil {
		return actuators.Result{}, fmt.Errorf("encode %s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, http.MethodPost, s.c.Endpoint(), b, e.Key, nil)
	if err != nil {
		return actuators.Result{}, err
	}
	res, err := actuators.Send(ctx, s.client, req, s.o.Limit())
	res.Output = actuators.HideSecrets(res.Output, s.key)
	return res, actuators.HideSecretsErr(err, s.key)
}
