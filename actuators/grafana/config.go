package grafana

import (
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
)

// Config is a grafana actuator's YAML: where annotations go and what they say.
type Config struct {
	// URL is Grafana's base URL (a path prefix such as /grafana is kept); annotations are
	// POSTed to <url>/api/annotations.
	URL string `yaml:"url"`
	// TokenFile or TokenEnv holds the service account's token, sent as a Bearer token.
	// Exactly one is required.
	TokenFile string `yaml:"token_file,omitempty"`
	TokenEnv  string `yaml:"token_env,omitempty"`
	// DashboardUID (a template) puts the annotation on one dashboard, PanelID on one of
	// its panels; without them it is an organisation annotation, shown by tag.
	DashboardUID string `yaml:"dashboard_uid,omitempty"`
	PanelID      int64  `yaml:"panel_id,omitempty"`
	// Tags (templates) are the annotation's tags; an empty rendered tag is left out.
	Tags []string `yaml:"tags,omitempty"`
	// Text (a template) is the annotation's text.
	Text string `yaml:"text,omitempty"`
	// Region: an event with a start and an end (every hook but on_start) annotates the
	// span from the canary's start to it, instead of a point at its time.
	Region     bool                       `yaml:"region"`
	Timeout    model.Duration             `yaml:"timeout,omitempty"`
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

// DefaultTags are the tags when tags is not set: a dashboard's annotation query can
// select canaryd's annotations, one service's, or one hook's.
var defaultTags = []string{"canaryd", "service:{{ .Service }}", "analysis:{{ .Analysis }}", "{{ .Trigger }}"}

// DefaultText is the annotation's text when text is not set.
const DefaultText = `{{ if eq .Trigger "on_start" }}Canary {{ .Name }} of {{ .Service }} started{{ else }}Canary {{ .Name }} of {{ .Service }}: {{ .Status }}{{ if .Score }} (score {{ .ScoreText }}){{ end }}{{ if .Reason }}: {{ .Reason }}{{ end }}{{ end }}`

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{
		Tags:       append([]string(nil), defaultTags...),
		Text:       DefaultText,
		Region:     true,
		Timeout:    model.Duration(10 * time.Second),
		HTTPConfig: commoncfg.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// maxTags bounds the tags of one annotation.
const maxTags = 20

// Validate reports every invalid key by its path in the actuator's entry.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	switch {
	case c.URL == "":
		es.Add("url", "required: Grafana's base URL, e.g. https://grafana.example.com")
	case strings.Contains(c.URL, "{{"):
		es.Add("url", "must be a fixed URL, not a template")
	default:
		actuators.CheckBaseURL(&es, "url", c.URL, "the token comes from token_file or token_env")
	}
	switch {
	case c.TokenFile == "" && c.TokenEnv == "":
		es.Add("token_file", "required (or token_env): the service account token")
	case c.TokenFile != "" && c.TokenEnv != "":
		es.Add("token_env", "give token_file or token_env, not both")
	case c.TokenEnv != "":
		actuators.CheckEnvName(&es, "token_env", c.TokenEnv)
	}
	actuators.CheckTemplate(&es, "dashboard_uid", c.DashboardUID)
	if c.PanelID < 0 {
		es.Add("panel_id", "must be > 0")
	} else if c.PanelID > 0 && c.DashboardUID == "" {
		es.Add("panel_id", "needs dashboard_uid: a panel belongs to a dashboard")
	}
	if len(c.Tags) > maxTags {
		es.Add("tags", "%d tags, at most %d", len(c.Tags), maxTags)
	}
	for i, t := range c.Tags {
		actuators.CheckTemplate(&es, field.Index("tags", i), t)
	}
	if c.Text == "" {
		es.Add("text", "must not be empty")
	} else {
		actuators.CheckTemplate(&es, "text", c.Text)
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if err := c.HTTPConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
