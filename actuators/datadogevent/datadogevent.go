// Package datadogevent is the datadog_event actuator: one Datadog event per canary start,
// verdict or what followed it, posted through the official client's events API (v1
// POST /api/v1/events), so dashboards' event overlays and monitors see the deploy. 2xx
// is success; 408, 429 and 5xx are retried (the client's own retries are off). It never
// shows the API key.
package datadogevent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/ddserver"
	"github.com/canaryd/canaryd/internal/redact"
)

// operation is the client's name for the endpoint (its server templates' key).
const operation = "v1.EventsApi.CreateEvent"

// Limits Datadog documents for an event (text 4000 characters, aggregation key 100, a
// tag 200) and a title short enough for the event stream's list.
const (
	maxTitle  = 100
	maxText   = 4000
	maxAggKey = 100
	maxTag    = 200
	// maxAge: Datadog takes a date_happened no older than 18 hours; an older event is
	// sent without one (now).
	maxAge = 18 * time.Hour
)

// DatadogEvent is a built datadog_event actuator.
type DatadogEvent struct {
	o       actuators.Options
	c       Config
	key     string
	api     *datadogV1.EventsApi
	index   int
	vars    map[string]string
	baseURL string
	title   *actuators.Template
	text    *actuators.Template
	agg     *actuators.Template
	tags    []*actuators.Template
	now     func() time.Time
}

var _ actuators.Actuator = (*DatadogEvent)(nil)

// New builds a datadog_event actuator, reading the API key from the environment.
func New(c Config, o actuators.Options) (*DatadogEvent, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("datadog_event %s: %w", o.Name, es)
	}
	k, err := actuators.SecretFromEnv("api_key_env", c.APIKeyEnv)
	if err != nil {
		return nil, fmt.Errorf("datadog_event %s: %w", o.Name, err)
	}
	d := &DatadogEvent{o: o, c: c, key: strings.TrimSpace(k), now: time.Now}
	d.title, _ = actuators.ParseTemplate("title", c.Title)
	d.text, _ = actuators.ParseTemplate("text", c.Text)
	d.agg, _ = actuators.ParseTemplate("aggregation_key", c.AggregationKey)
	for i, t := range c.Tags {
		tt, _ := actuators.ParseTemplate(fmt.Sprintf("tags[%d]", i), t)
		d.tags = append(d.tags, tt)
	}
	client, err := actuators.NewHTTPClient(c.HTTPConfig, "datadog_event_"+o.Name)
	if err != nil {
		return nil, fmt.Errorf("datadog_event %s: %w", o.Name, err)
	}
	client.Transport = idempotent{client.Transport}
	conf := datadog.NewConfiguration()
	conf.HTTPClient = client
	conf.UserAgent = actuators.UserAgent
	conf.RetryConfiguration.EnableRetry = false // the guard retries, with its backoff and audit
	conf.Debug = false
	if d.index, d.vars, err = ddserver.Pick(conf, operation, c.Site, c.APIURL); err != nil {
		return nil, fmt.Errorf("datadog_event %s: %w", o.Name, err)
	}
	d.api = datadogV1.NewEventsApi(datadog.NewAPIClient(conf))
	base, err := conf.ServerURLWithContext(d.withValues(context.Background(), ""), operation)
	if err != nil {
		return nil, fmt.Errorf("datadog_event %s: server URL: %w", o.Name, err)
	}
	d.baseURL = base + "/api/v1/events"
	return d, nil
}

type keyCtx struct{}

// idempotent adds the action's idempotency key, carried by the request's context, to
// the requests the client builds (it has no per-request headers of its own).
type idempotent struct{ next http.RoundTripper }

func (t idempotent) RoundTrip(r *http.Request) (*http.Response, error) {
	if k, _ := r.Context().Value(keyCtx{}).(string); k != "" {
		r = r.Clone(r.Context())
		r.Header.Set(actuators.HeaderIdempotencyKey, k)
	}
	return t.next.RoundTrip(r)
}

func (d *DatadogEvent) withValues(ctx context.Context, idemKey string) context.Context {
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, map[string]datadog.APIKey{"apiKeyAuth": {Key: d.key}})
	ctx = context.WithValue(ctx, datadog.ContextServerIndex, d.index)
	ctx = context.WithValue(ctx, datadog.ContextServerVariables, d.vars)
	return context.WithValue(ctx, keyCtx{}, idemKey)
}

// alertType is the configured one, or the event's: info on start, success on a pass,
// warning when marginal, error for a failure, an abort or an error.
func (d *DatadogEvent) alertType(e actuators.Event) datadogV1.EventAlertType {
	if d.c.AlertType != "" {
		return datadogV1.EventAlertType(d.c.AlertType)
	}
	switch {
	case e.Trigger == "on_start":
		return datadogV1.EVENTALERTTYPE_INFO
	case e.Status == "pass":
		return datadogV1.EVENTALERTTYPE_SUCCESS
	case e.Status == "marginal":
		return datadogV1.EVENTALERTTYPE_WARNING
	}
	return datadogV1.EVENTALERTTYPE_ERROR
}

// request builds the event for e. Values from a registration or an abort are hostile: in
// the title and text an @ can no longer mention (notify) anyone, and in a text written
// as markdown (%%% … %%%) they cannot add markup; tags keep only what a Datadog tag
// holds.
func (d *DatadogEvent) request(e actuators.Event) (datadogV1.EventCreateRequest, error) {
	markdown := strings.HasPrefix(strings.TrimSpace(d.c.Text), "%%%")
	safe := actuators.Data{Event: neutered(e, markdown)}
	var r datadogV1.EventCreateRequest
	var err error
	if r.Title, err = d.title.Render(actuators.Data{Event: neutered(e, false)}); err != nil {
		return r, err
	}
	r.Title = actuators.Truncate(strings.Map(dropControl, r.Title), maxTitle)
	if r.Text, err = d.text.Render(safe); err != nil {
		return r, err
	}
	r.Text = actuators.Truncate(r.Text, maxText)
	agg, err := d.agg.Render(actuators.Data{Event: e})
	if err != nil {
		return r, err
	}
	if agg = actuators.Truncate(strings.Map(dropControl, agg), maxAggKey); agg != "" {
		r.AggregationKey = &agg
	}
	r.Tags = []string{}
	for _, t := range d.tags {
		v, err := t.Render(actuators.Data{Event: e})
		if err != nil {
			return r, err
		}
		if v = tag(v); v != "" && !slices.Contains(r.Tags, v) {
			r.Tags = append(r.Tags, v)
		}
	}
	at := d.alertType(e)
	r.AlertType = &at
	when := e.Time
	if e.Trigger == "on_start" && !e.Start.IsZero() {
		when = e.Start
	}
	if !when.IsZero() && d.now().Sub(when) < maxAge {
		ts := when.Unix()
		r.DateHappened = &ts
	}
	if d.c.Priority != "" {
		r.Priority = *datadogV1.NewNullableEventPriority(datadogV1.EventPriority(d.c.Priority).Ptr())
	}
	src := "canaryd"
	r.SourceTypeName = &src
	return r, nil
}

func dropControl(r rune) rune {
	if r < ' ' || r == 0x7f {
		return -1
	}
	return r
}

// tag keeps what a Datadog tag may hold: letters, digits and _ - : . / (anything else
// becomes _, as Datadog would make it), trimmed, at most 200 characters.
func tag(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-:./", r) {
			return r
		}
		return '_'
	}, strings.TrimSpace(s))
	s = strings.Trim(s, "_")
	if len(s) > maxTag {
		s = s[:maxTag]
	}
	return s
}

var markdownSpecial = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
	"#", `\#`, "!", `\!`, "<", `\<`, ">", `\>`, "|", `\|`, "%", `\%`,
)

// neutered is e with its free-text fields made inert: an @ followed by a zero-width
// space mentions nobody; in markdown, metacharacters are escaped.
func neutered(e actuators.Event, markdown bool) actuators.Event {
	fix := func(s string) string {
		if markdown {
			s = markdownSpecial.Replace(s)
		}
		return strings.ReplaceAll(s, "@", "@\u200b")
	}
	return e.MapText(fix)
}

// Render returns the POST the actuator would make, the API key hidden.
func (d *DatadogEvent) Render(e actuators.Event) (actuators.Request, error) {
	r, err := d.request(e)
	if err != nil {
		return actuators.Request{}, err
	}
	b, err := actuators.MarshalJSON(r)
	if err != nil {
		return actuators.Request{}, fmt.Errorf("encode event: %w", err)
	}
	u := redact.URL(d.baseURL)
	return actuators.Request{Target: "POST " + u, Method: http.MethodPost, URL: u,
		Header: map[string]string{"DD-API-KEY": actuators.Secret}, Body: actuators.Truncate(string(b), d.o.Limit())}, nil
}

// Act posts the event once. Datadog answers 202 {"status":"ok","event":{…}}.
func (d *DatadogEvent) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	r, err := d.request(e)
	if err != nil {
		return actuators.Result{}, err
	}
	ctx, cancel := context.WithTimeout(d.withValues(ctx, e.Key), time.Duration(d.c.Timeout))
	defer cancel()
	_, resp, err := d.api.CreateEvent(ctx, r)
	res, err := d.outcome(ctx, resp, err)
	res.Output = actuators.HideSecrets(res.Output, d.key)
	return res, actuators.HideSecretsErr(err, d.key)
}

// outcome turns the client's answer into a Result or an error that says whether a retry
// may help, as actuators.Send does for the other kinds.
func (d *DatadogEvent) outcome(ctx context.Context, resp *http.Response, err error) (actuators.Result, error) {
	where := "POST " + redact.URL(d.baseURL)
	if resp == nil {
		if err == nil {
			err = errors.New("no answer")
		}
		return actuators.Result{}, actuators.TransportError(ctx, where, err)
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, int64(d.o.Limit())+1))
	}
	res := actuators.Result{Status: resp.StatusCode, Output: actuators.Truncate(string(body), d.o.Limit())}
	if serr := actuators.StatusError(where, res, resp.Status, rateLimitReset(resp.Header)); serr != nil {
		return res, serr
	}
	if err != nil {
		// Accepted; an answer the client could not decode changes nothing about that.
		res.Output += fmt.Sprintf(" [decoding the answer: %v]", err)
	}
	return res, nil
}

// rateLimitReset reads Datadog's X-RateLimit-Reset (seconds until the window resets),
// capped at an hour.
func rateLimitReset(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("X-RateLimit-Reset"))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, time.Hour)
}
