package datadogevent

import (
	"fmt"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
)

// Config is a datadog_event actuator's YAML: where events go and what they say. The API
// key never appears in it: api_key_env names the variable that holds it.
type Config struct {
	// Site is the Datadog site (datadoghq.com, datadoghq.eu, us5.datadoghq.com, …); the
	// API host is api.<site>. APIURL replaces it (a proxy, a test server).
	Site   string `yaml:"site,omitempty"`
	APIURL string `yaml:"api_url,omitempty"`
	// APIKeyEnv names the environment variable holding the API key (sent as DD-API-KEY;
	// posting events needs no application key).
	APIKeyEnv string `yaml:"api_key_env,omitempty"`
	// Title, Text and Tags are templates; an empty or repeated tag is left out.
	Title string   `yaml:"title,omitempty"`
	Text  string   `yaml:"text,omitempty"`
	Tags  []string `yaml:"tags,omitempty"`
	// AlertType is error, warning, info, success, user_update, recommendation or
	// snapshot; empty picks one from the event (info on start, success on a pass,
	// warning when marginal, error otherwise).
	AlertType string `yaml:"alert_type,omitempty"`
	// AggregationKey (a template) groups events in the event stream: by default a
	// canary's events are one group.
	AggregationKey string `yaml:"aggregation_key,omitempty"`
	// Priority is normal or low.
	Priority   string                     `yaml:"priority,omitempty"`
	Timeout    model.Duration             `yaml:"timeout,omitempty"`
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

// Defaults.
const (
	DefaultTitle = `Canary {{ .Name }} of {{ .Service }} {{ if eq .Trigger "on_start" }}started{{ else }}{{ .Status }}{{ end }}`
	DefaultText  = `{{ if eq .Trigger "on_start" }}Canary {{ .Name }} ({{ .ID }}) of {{ .Service }} started, analysis {{ .Analysis }}.{{ else }}Canary {{ .Name }} ({{ .ID }}) of {{ .Service }}: {{ .Status }}{{ if .Score }}, score {{ .ScoreText }}{{ end }}.{{ if .Reason }} {{ .Reason }}{{ end }}{{ range .Failing }}
- {{ .Name }}: {{ .Classification }}{{ if .Critical }} (critical){{ end }}: {{ .Reason }}{{ end }}{{ end }}{{ if .Link }}
{{ .Link }}{{ end }}`
)

var (
	defaultTags = []string{"source:canaryd", "service:{{ .Service }}", "analysis:{{ .Analysis }}", "canary_trigger:{{ .Trigger }}"}
	alertTypes  = []string{"error", "warning", "info", "success", "user_update", "recommendation", "snapshot"}
	priorities  = []string{"normal", "low"}
)

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{
		Site:           "datadoghq.com",
		APIKeyEnv:      "DD_API_KEY",
		Title:          DefaultTitle,
		Text:           DefaultText,
		Tags:           slices.Clone(defaultTags),
		AggregationKey: "canaryd-{{ .ID }}",
		Timeout:        model.Duration(10 * time.Second),
		HTTPConfig:     commoncfg.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// maxTags bounds the tags of one event.
const maxTags = 20

// Validate reports every invalid key by its path in the actuator's entry.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	switch {
	case c.Site == "":
		es.Add("site", "must not be empty (e.g. datadoghq.com, datadoghq.eu)")
	case strings.Contains(c.Site, "://") || strings.ContainsAny(c.Site, "/ ?#@{}"):
		es.Add("site", "%q must be a bare site name such as datadoghq.eu; use api_url for a full URL", c.Site)
	}
	if c.APIURL != "" {
		actuators.CheckBaseURL(&es, "api_url", c.APIURL, "the key comes from api_key_env")
	}
	actuators.CheckEnvName(&es, "api_key_env", c.APIKeyEnv)
	for _, f := range []struct{ key, text string }{{"title", c.Title}, {"text", c.Text}} {
		if f.text == "" {
			es.Add(f.key, "must not be empty")
			continue
		}
		actuators.CheckTemplate(&es, f.key, f.text)
	}
	actuators.CheckTemplate(&es, "aggregation_key", c.AggregationKey)
	if len(c.Tags) > maxTags {
		es.Add("tags", "%d tags, at most %d", len(c.Tags), maxTags)
	}
	for i, t := range c.Tags {
		actuators.CheckTemplate(&es, field.Index("tags", i), t)
	}
	if c.AlertType != "" && !slices.Contains(alertTypes, c.AlertType) {
		es.Add("alert_type", "%q is not one of %v", c.AlertType, alertTypes)
	}
	if c.Priority != "" && !slices.Contains(priorities, c.Priority) {
		es.Add("priority", "%q is not one of %v", c.Priority, priorities)
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if err := c.HTTPConfig.Validate(); err != nil {
		es.Add("http_config", "%v", fmt.Errorf("%w", err))
	}
	return es
}
