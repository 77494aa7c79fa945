package slack

import (
	"github.com/canaryd/canaryd/internal/field"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
)

// Config is a slack actuator's YAML: an incoming webhook.
type Config struct {
	// URLEnv names the environment variable holding the incoming webhook's URL, which is
	// its own credential; URL gives it in the file instead (for a local relay). Exactly
	// one is required.
	URLEnv string `yaml:"url_env,omitempty"`
	URL    string `yaml:"url,omitempty"`
	// Channel, Username and IconEmoji override the webhook's defaults where Slack still
	// honours them (legacy webhooks).
	Channel   string `yaml:"channel,omitempty"`
	Username  string `yaml:"username,omitempty"`
	IconEmoji string `yaml:"icon_emoji,omitempty"`
	// Text is the message's first line (a template); the default names the canary, its
	// status, score and service.
	Text string `yaml:"text,omitempty"`
	// MaxMetrics is how many failing metrics the message lists (critical ones first).
	MaxMetrics int `yaml:"max_metrics,omitempty"`
	// PreflightTokenEnv, when set, names the environment variable holding a Slack app's
	// token (xoxb-…), checked with Slack's auth.test when a canary is registered. An
	// incoming webhook's URL cannot be checked without posting a message; the app's
	// token proves the workspace's app is still installed and its credential works.
	PreflightTokenEnv string `yaml:"preflight_token_env,omitempty"`
	// PreflightURL is auth.test's address (DefaultAuthTestURL; a relay's for tests).
	PreflightURL string                     `yaml:"preflight_url,omitempty"`
	Timeout      model.Duration             `yaml:"timeout,omitempty"`
	HTTPConfig   commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

// DefaultAuthTestURL is Slack's auth.test method.
const DefaultAuthTestURL = "https://slack.com/api/auth.test"

// DefaultText is the message's first line when text is not set.
// On on_start it announces the canary ("started"), the deploy-window notice.
const DefaultText = `{{ if eq .Trigger "on_start" }}:rocket: Canary *{{ .Name }}* of {{ .Service }} started{{ else }}{{ if eq .Status "pass" }}:large_green_circle:{{ else if eq .Status "marginal" }}:large_yellow_circle:{{ else }}:red_circle:{{ end }} Canary *{{ .Name }}* of {{ .Service }}: *{{ .Status }}*{{ if .Score }} (score {{ .ScoreText }}){{ end }}{{ end }}`

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{Text: DefaultText, MaxMetrics: 5, PreflightURL: DefaultAuthTestURL, Timeout: model.Duration(10 * time.Second), HTTPConfig: commoncfg.DefaultHTTPClientConfig}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate reports every invalid key by its path in the actuator's entry.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	switch {
	case c.URLEnv == "" && c.URL == "":
		es.Add("url_env", "required (or url): the environment variable holding the incoming webhook URL")
	case c.URLEnv != "" && c.URL != "":
		es.Add("url", "give url_env or url, not both")
	case c.URLEnv != "":
		actuators.CheckEnvName(&es, "url_env", c.URLEnv)
	default:
		if err := actuators.CheckRenderedURL(c.URL); err != nil {
			es.Add("url", "%v", err)
		}
	}
	actuators.CheckTemplate(&es, "text", c.Text)
	if c.PreflightTokenEnv != "" {
		actuators.CheckEnvName(&es, "preflight_token_env", c.PreflightTokenEnv)
	}
	if err := actuators.CheckRenderedURL(c.PreflightURL); err != nil {
		es.Add("preflight_url", "%v", err)
	}
	if c.MaxMetrics < 0 || c.MaxMetrics > 20 {
		es.Add("max_metrics", "must be in [0, 20]")
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if err := c.HTTPConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
