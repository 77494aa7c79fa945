package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/redact"
)

// authTest is the part of auth.test's answer the check reads. Slack answers 200 for a
// refused token too, with ok false and the reason in error (invalid_auth,
// account_inactive, token_revoked, …).
type authTest struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Team  string `json:"team"`
	User  string `json:"user"`
}

// Preflight calls auth.test with the app token once: ok true passes.
func (s *Slack) Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	if s.token == "" {
		return actuators.Result{}, actuators.ErrNoPreflight
	}
	req, err := actuators.NewRequest(ctx, http.MethodPost, s.c.PreflightURL, nil, e.Key, map[string]string{
		"Authorization": "Bearer " + s.token,
		"Content-Type":  "application/x-www-form-urlencoded",
	})
	if err != nil {
		return actuators.Result{}, err
	}
	res, err := actuators.Send(ctx, s.client, req, s.o.Limit())
	res.Target = http.MethodPost + " " + redact.URL(s.c.PreflightURL)
	res.Output = strings.ReplaceAll(res.Output, s.token, actuators.Secret)
	if err != nil {
		return res, &actuators.Error{Result: res, Err: err}
	}
	var at authTest
	if err := json.Unmarshal([]byte(res.Output), &at); err != nil {
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("auth.test: the answer is not Slack's JSON: %w", err)}
	}
	if !at.OK {
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("auth.test: the token is refused: %s", actuators.Truncate(at.Error, 100))}
	}
	return res, nil
}
