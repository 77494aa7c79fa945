package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/canaryd/canaryd/actuators"
)

// restAccept is the REST API's versioned media type.
const restAccept = "application/vnd.pagerduty+json;version=2"

// restCheck is both modes' preflight: the REST API key preflight_token_env names
// (empty when none), checked at preflight_url.
type restCheck struct {
	token, url string
	limit      int
	client     *http.Client
}

func newRESTCheck(c Config, o actuators.Options, client *http.Client) (restCheck, error) {
	r := restCheck{url: c.PreflightURL, limit: o.Limit(), client: client}
	if c.PreflightTokenEnv != "" {
		var err error
		if r.token, err = actuators.SecretFromEnv("preflight_token_env", c.PreflightTokenEnv); err != nil {
			return restCheck{}, err
		}
	}
	return r, nil
}

// Preflight lists the account's abilities with the REST API key once: a 2xx with an
// abilities list passes; PagerDuty's error message (401: the key is invalid) fails it.
func (p restCheck) Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	if p.token == "" {
		return actuators.Result{}, actuators.ErrNoPreflight
	}
	res, err := actuators.SendPreflight(ctx, p.client, http.MethodGet, p.url, e.Key, map[string]string{
		"Authorization": "Token token=" + p.token,
		"Accept":        restAccept,
	}, p.limit)
	res.Output = strings.ReplaceAll(res.Output, p.token, actuators.Secret)
	var body struct {
		Abilities *[]string `json:"abilities"`
		Error     struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	jerr := json.Unmarshal([]byte(res.Output), &body)
	switch {
	case err != nil && jerr == nil && body.Error.Message != "":
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("%w: %s (code %d)", err, actuators.Truncate(body.Error.Message, 200), body.Error.Code)}
	case err != nil:
		return res, err
	case jerr != nil || body.Abilities == nil:
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("%s: the answer is not the REST API's abilities list", res.Target)}
	}
	return res, nil
}
