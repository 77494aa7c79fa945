package prometheus

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v2"
)

func modelDuration(d time.Duration) model.Duration { return model.Duration(d) }

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "defaults",
			yaml: `address: http://127.0.0.1:9090`,
			check: func(t *testing.T, c Config) {
				if c.Timeout != modelDuration(30*time.Second) || c.Retries != 3 {
					t.Errorf("timeout %s retries %d, want 30s and 3", c.Timeout, c.Retries)
				}
				if !c.HTTPClientConfig.FollowRedirects || !c.HTTPClientConfig.EnableHTTP2 {
					t.Errorf("http_config defaults not applied: %+v", c.HTTPClientConfig)
				}
			},
		},
		{
			name: "everything set",
			yaml: `
address: https://prom.example.internal/prometheus
timeout: 10s
retries: 0
basic_auth: {username: canaryd, password: s3cret}
tls_config: {insecure_skip_verify: true, server_name: prom}
http_headers: {X-Scope-OrgID: {values: [team-a]}}
proxy_url: http://127.0.0.1:3128
`,
			check: func(t *testing.T, c Config) {
				if c.Timeout != modelDuration(10*time.Second) || c.Retries != 0 {
					t.Errorf("timeout %s retries %d", c.Timeout, c.Retries)
				}
				h := c.HTTPClientConfig
				if h.BasicAuth == nil || h.BasicAuth.Username != "canaryd" || string(h.BasicAuth.Password) != "s3cret" {
					t.Errorf("basic_auth = %+v", h.BasicAuth)
				}
				if !h.TLSConfig.InsecureSkipVerify || h.TLSConfig.ServerName != "prom" {
					t.Errorf("tls_config = %+v", h.TLSConfig)
				}
				if h.HTTPHeaders == nil || h.HTTPHeaders.Headers["X-Scope-OrgID"].Values[0] != "team-a" {
					t.Errorf("http_headers = %+v", h.HTTPHeaders)
				}
				if h.ProxyURL.URL == nil || h.ProxyURL.Host != "127.0.0.1:3128" {
					t.Errorf("proxy_url = %v", h.ProxyURL)
				}
				out, err := yaml.Marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "s3cret") {
					t.Errorf("password printed when the config is dumped:\n%s", out)
				}
			},
		},
		{name: "bearer token", yaml: "address: http://p:9090\nauthorization: {credentials: abc}",
			check: func(t *testing.T, c Config) {
				if c.HTTPClientConfig.Authorization == nil || c.HTTPClientConfig.Authorization.Type != "Bearer" {
					t.Errorf("authorization = %+v", c.HTTPClientConfig.Authorization)
				}
			}},
		{name: "missing address", yaml: `timeout: 5s`, wantErr: "address: is required"},
		{name: "bad scheme", yaml: `address: ftp://p:9090`, wantErr: `address: scheme must be http or https, got "ftp"`},
		{name: "no host", yaml: `address: "http://"`, wantErr: "has no host"},
		{name: "zero timeout", yaml: "address: http://p:9090\ntimeout: 0s", wantErr: "timeout: must be > 0"},
		{name: "bad timeout", yaml: "address: http://p:9090\ntimeout: soon", wantErr: "soon"},
		{name: "negative retries", yaml: "address: http://p:9090\nretries: -1", wantErr: "retries: must be >= 0"},
		{name: "too many retries", yaml: "address: http://p:9090\nretries: 50", wantErr: "retries: must be <= 10"},
		{name: "conflicting auth", yaml: "address: http://p:9090\nbearer_token: x\nbasic_auth: {username: u}",
			wantErr: "http_config: at most one of basic_auth, oauth2, bearer_token"},
		{name: "unknown key", yaml: "address: http://p:9090\ntimout: 5s", wantErr: "field timout not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate().Err() // what config does after decoding
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			if _, err := New(c, nil); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{Address: "http://p:9090"}, nil); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err = %v, want the zero timeout named", err)
	}
}
