// Package slack is the Slack actuator: an incoming-webhook message with the canary's
// verdict, its worst metrics and a link. Slack answers 200 "ok"; anything else is an
// error, retried on 429 and 5xx. It never shows the webhook URL (its own credential).
package slack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// Slack is a built slack actuator.
type Slack struct {
	o      actuators.Options
	c      Config
	url    string
	text   *actuators.Template
	client *http.Client
	// token is the app token preflight_token_env names; empty when none.
	token string
}

var _ actuators.Actuator = (*Slack)(nil)

// New builds a slack actuator, reading the webhook URL from the environment.
func New(c Config, o actuators.Options) (*Slack, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("slack %s: %w", o.Name, es)
	}
	s := &Slack{o: o, c: c, url: c.URL}
	if c.URLEnv != "" {
		u, err := actuators.SecretFromEnv("url_env", c.URLEnv)
		if err != nil {
			return nil, fmt.Errorf("slack %s: %w", o.Name, err)
		}
		if err := actuators.CheckRenderedURL(u); err != nil {
			return nil, fmt.Errorf("slack %s: url_env %s: %w", o.Name, c.URLEnv, err)
		}
		s.url = u
	}
	if c.PreflightTokenEnv != "" {
		t, err := actuators.SecretFromEnv("preflight_token_env", c.PreflightTokenEnv)
		if err != nil {
			return nil, fmt.Errorf("slack %s: %w", o.Name, err)
		}
		s.token = t
	}
	s.text, _ = actuators.ParseTemplate("text", c.Text)
	var err error
	if s.client, err = actuators.NewHTTPClient(c.HTTPConfig, "slack_"+o.Name); err != nil {
		return nil, fmt.Errorf("slack %s: %w", o.Name, err)
	}
	return s, nil
}

// Message is an incoming webhook's payload.
type Message struct {
	Text      string  `json:"text"`
	Blocks    []Block `json:"blocks,omitempty"`
	Channel   string  `json:"channel,omitempty"`
	Username  string  `json:"username,omitempty"`
	IconEmoji string  `json:"icon_emoji,omitempty"`
}

// Block is the subset of Block Kit the message uses: section and context blocks.
type Block struct {
	Type     string  `json:"type"`
	Text     *Text   `json:"text,omitempty"`
	Fields   []*Text `json:"fields,omitempty"`
	Elements []*Text `json:"elements,omitempty"`
}

// Text is a Block Kit text object.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func mrkdwn(s string, limit int) *Text {
	return &Text{Type: "mrkdwn", Text: actuators.Truncate(s, limit)}
}

// escape makes text safe inside mrkdwn: Slack reads &, < and > as markup.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// message builds the payload. Block texts are cut below Slack's limits (3000 characters
// per section, 2000 per field) so a long reason never makes Slack refuse the message.
func (s *Slack) message(e actuators.Event) (Message, error) {
	head, err := s.text.Render(actuators.Data{Event: escapedEvent(e)})
	if err != nil {
		return Message{}, err
	}
	if e.Action == actuators.ActionResolve {
		head = fmt.Sprintf(":white_check_mark: Resolved: canary %s", escape(e.DedupKey))
	}
	text := head
	if e.Link != "" {
		text += fmt.Sprintf(" <%s|details>", e.Link)
	}
	m := Message{Text: actuators.Truncate(text, 2900), Channel: s.c.Channel, Username: s.c.Username, IconEmoji: s.c.IconEmoji}
	m.Blocks = append(m.Blocks, Block{Type: "section", Text: mrkdwn(text, 2900)})
	if e.Trigger == "on_start" {
		// An announcement: nothing is judged yet, so no score, reason or metrics.
		started := "now"
		if !e.Start.IsZero() {
			started = e.Start.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		m.Blocks = append(m.Blocks, Block{Type: "section", Fields: []*Text{
			mrkdwn("*Analysis*\n"+escape(e.Analysis), 1900),
			mrkdwn("*Started*\n"+started, 1900),
			mrkdwn("*Canary id*\n`"+escape(e.ID)+"`", 1900),
		}})
		m.Blocks = append(m.Blocks, Block{Type: "context", Elements: []*Text{mrkdwn("canaryd · "+escape(e.Trigger)+" · "+escape(e.Key), 1900)}})
		return m, nil
	}
	score := e.ScoreText()
	m.Blocks = append(m.Blocks, Block{Type: "section", Fields: []*Text{
		mrkdwn("*Analysis*\n"+escape(e.Analysis), 1900),
		mrkdwn("*Score*\n"+score, 1900),
		mrkdwn("*Ended by*\n"+escape(e.Kind+" ("+e.Cause+")"), 1900),
		mrkdwn("*Canary id*\n`"+escape(e.ID)+"`", 1900),
	}})
	if e.Reason != "" {
		m.Blocks = append(m.Blocks, Block{Type: "section", Text: mrkdwn("*Reason*\n"+escape(e.Reason), 2900)})
	}
	if n := min(len(e.Failing), s.c.MaxMetrics); n > 0 {
		var b strings.Builder
		b.WriteString("*Worst metrics*")
		for _, f := range e.Failing[:n] {
			crit := ""
			if f.Critical {
				crit = ", critical"
			}
			fmt.Fprintf(&b, "\n• *%s* (%s%s): %s", escape(f.Name), escape(f.Classification), crit, escape(actuators.Truncate(f.Reason, 400)))
		}
		if len(e.Failing) > n {
			fmt.Fprintf(&b, "\n…and %d more", len(e.Failing)-n)
		}
		m.Blocks = append(m.Blocks, Block{Type: "section", Text: mrkdwn(b.String(), 2900)})
	}
	m.Blocks = append(m.Blocks, Block{Type: "context", Elements: []*Text{mrkdwn("canaryd · "+escape(e.Trigger)+" · "+escape(e.Key), 1900)}})
	return m, nil
}

// escapedEvent escapes the free-text fields a text template may print.
func escapedEvent(e actuators.Event) actuators.Event {
	e.Name, e.Service, e.Reason, e.Analysis = escape(e.Name), escape(e.Service), escape(e.Reason), escape(e.Analysis)
	return e
}

// shownURL is the webhook URL as the audit log shows it: its path is the credential.
func (s *Slack) shownURL() string {
	u, err := url.Parse(s.url)
	if err != nil {
		return actuators.Secret
	}
	return u.Scheme + "://" + u.Host + "/" + actuators.Secret
}

// Render returns the POST the actuator would make, without the webhook's secret path.
func (s *Slack) Render(e actuators.Event) (actuators.Request, error) {
	m, err := s.message(e)
	if err != nil {
		return actuators.Request{}, err
	}
	b, err := actuators.MarshalJSON(m)
	if err != nil {
		return actuators.Request{}, fmt.Errorf("encode message: %w", err)
	}
	u := s.shownURL()
	return actuators.Request{Target: "POST " + u, Method: http.MethodPost, URL: u, Body: actuators.Truncate(string(b), s.o.Limit())}, nil
}

// Act posts the message once.
func (s *Slack) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	m, err := s.message(e)
	if err != nil {
		return actuators.Result{}, err
	}
	b, err := actuators.MarshalJSON(m)
	if err != nil {
		return actuators.Result{}, fmt.Errorf("encode message: %w", err)
	}
	ctx, cancel := context.WithTimeout(actuators.WithSecretURL(ctx), time.Duration(s.c.Timeout))
	defer cancel()
	req, err := actuators.NewRequest(ctx, http.MethodPost, s.url, b, e.Key, nil)
	if err != nil {
		return actuators.Result{}, fmt.Errorf("slack: build request to %s", s.shownURL())
	}
	return actuators.Send(ctx, s.client, req, s.o.Limit())
}
