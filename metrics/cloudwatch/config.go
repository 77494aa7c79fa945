package cloudwatch

import (
	"errors"
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"net/url"
	"regexp"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/internal/redact"
)

// Config is a CloudWatch provider's YAML configuration. Credentials come, in order, from
// secret_access_key or secret_access_key_file with access_key_id, else from the SDK's
// default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or profile, the shared
// files, web identity, ECS and EC2 roles); role_arn then assumes a role with them. The
// http_config keys that make sense under SigV4 (tls_config, proxy_url, http_headers,
// follow_redirects, enable_http2) are inlined at the same level.
type Config struct {
	// Region is the AWS region of the metrics, e.g. eu-west-1.
	Region string `yaml:"region"`
	// Endpoint replaces the region's CloudWatch endpoint (a VPC endpoint, a test server).
	Endpoint string `yaml:"endpoint,omitempty"`
	// Protocol is the wire protocol: json (AWS JSON 1.0, the default) or cbor (Smithy
	// RPC v2 CBOR, the SDK's own default). CloudWatch answers both; json is the one the
	// tests run against a server (moto speaks no CBOR).
	Protocol string `yaml:"protocol,omitempty"`
	// Profile is a shared config profile for the default chain.
	Profile string `yaml:"profile,omitempty"`

	AccessKeyID         string           `yaml:"access_key_id,omitempty"`
	SecretAccessKey     commoncfg.Secret `yaml:"secret_access_key,omitempty"`
	SecretAccessKeyFile string           `yaml:"secret_access_key_file,omitempty"`

	// RoleARN, when set, is assumed through STS with the credentials above.
	RoleARN         string `yaml:"role_arn,omitempty"`
	ExternalID      string `yaml:"external_id,omitempty"`
	RoleSessionName string `yaml:"role_session_name,omitempty"`
	// STSEndpoint replaces the region's STS endpoint for the role assumption.
	STSEndpoint string `yaml:"sts_endpoint,omitempty"`

	// Timeout bounds one HTTP attempt.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times the SDK retries a throttled or failed call (its own
	// backoff); 0 disables retrying.
	Retries int `yaml:"retries"`

	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// The wire protocols.
const (
	ProtocolJSON = "json"
	ProtocolCBOR = "cbor"
)

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{
		Timeout:          model.Duration(30 * time.Second),
		Retries:          3,
		Protocol:         ProtocolJSON,
		RoleSessionName:  "canaryd",
		HTTPClientConfig: commoncfg.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML sets the defaults, then decodes the given keys onto them; config (and
// New) then call Validate.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	keyIDRE  = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	roleRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

// Validate reports every invalid field, by its YAML name.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	if !regionRE.MatchString(c.Region) {
		es.Add("region", "%q is not an AWS region (e.g. us-east-1)", c.Region)
	}
	for _, f := range []struct{ name, v string }{{"endpoint", c.Endpoint}, {"sts_endpoint", c.STSEndpoint}} {
		if err := validateEndpoint(f.v); err != nil {
			es.Add(f.name, "%v", err)
		}
	}
	if c.Protocol != ProtocolJSON && c.Protocol != ProtocolCBOR {
		es.Add("protocol", "must be json or cbor, got %q", c.Protocol)
	}
	hasSecret := c.SecretAccessKey != "" || c.SecretAccessKeyFile != ""
	switch {
	case c.SecretAccessKey != "" && c.SecretAccessKeyFile != "":
		es.Add("secret_access_key", "give secret_access_key or secret_access_key_file, not both")
	case hasSecret && c.AccessKeyID == "":
		es.Add("access_key_id", "is required with secret_access_key(_file)")
	case !hasSecret && c.AccessKeyID != "":
		es.Add("secret_access_key", "access_key_id needs secret_access_key or secret_access_key_file")
	case c.AccessKeyID != "" && !keyIDRE.MatchString(c.AccessKeyID):
		// Never echo it: a secret pasted into the wrong field must not reach a log.
		es.Add("access_key_id", "is not an access key ID (16 or more upper-case letters and digits, e.g. AKIA…)")
	case hasSecret && c.Profile != "":
		es.Add("profile", "static keys and a profile exclude each other")
	}
	if c.RoleARN != "" && !roleRE.MatchString(c.RoleARN) {
		es.Add("role_arn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/name)", c.RoleARN)
	}
	if c.RoleARN == "" && (c.ExternalID != "" || c.STSEndpoint != "") {
		es.Add("role_arn", "external_id and sts_endpoint need role_arn")
	}
	if len(c.RoleSessionName) < 2 || len(c.RoleSessionName) > 64 {
		es.Add("role_session_name", "must be 2 to 64 characters")
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if c.Retries < 0 || c.Retries > 10 {
		es.Add("retries", "must be between 0 and 10")
	}
	h := c.HTTPClientConfig
	// Requests are signed with SigV4; another Authorization would replace the signature.
	if h.BasicAuth != nil || h.Authorization != nil || h.OAuth2 != nil || h.BearerToken != "" || h.BearerTokenFile != "" {
		es.Add("http_config", "basic_auth, authorization, oauth2 and bearer_token do not apply: CloudWatch requests are signed with the AWS credentials")
	}
	if err := h.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}

func validateEndpoint(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return redact.Error(err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return fmt.Errorf("%q has no host", redact.URL(raw))
	case u.User != nil:
		return errors.New("must not carry credentials")
	}
	return nil
}
