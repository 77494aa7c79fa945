package httpconf

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/internal/field"
)

// provider is how a provider's Config embeds HTTP.
type provider struct {
	Address string `yaml:"address"`
	HTTP    `yaml:",inline"`
}

func (p *provider) UnmarshalYAML(unmarshal func(any) error) error {
	*p = provider{HTTP: Default()}
	type plain provider
	return unmarshal((*plain)(p))
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		timeout    time.Duration
		retries    int
		wantErr    string
	}{
		{name: "defaults", yaml: "address: http://h", timeout: 30 * time.Second, retries: 3},
		{name: "given", yaml: "address: http://h\ntimeout: 5s\nretries: 0", timeout: 5 * time.Second, retries: 0},
		{name: "http_config's keys beside the provider's", yaml: "address: http://h\nbasic_auth: {username: u, password_file: /run/secrets/pw}\ntls_config: {insecure_skip_verify: false}\nproxy_url: http://proxy:3128", timeout: 30 * time.Second, retries: 3},
		{name: "zero timeout", yaml: "address: http://h\ntimeout: 0s", wantErr: "timeout: must be > 0"},
		{name: "negative retries", yaml: "address: http://h\nretries: -1", wantErr: "retries: must be between 0 and 10"},
		{name: "too many retries", yaml: "address: http://h\nretries: 11", wantErr: "retries: must be between 0 and 10"},
		{name: "http_config's own check", yaml: "address: http://h\nbasic_auth: {username: u, password: s3cret, password_file: /pw}", wantErr: "http_config: at most one of basic_auth password"},
		{name: "unknown key", yaml: "address: http://h\ntimeouts: 5s", wantErr: "field timeouts not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p provider
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &p)
			if err == nil {
				var es field.Errors
				p.Check(&es)
				err = es.Err()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || p.Address != "http://h" || time.Duration(p.Timeout) != tc.timeout || p.Retries != tc.retries || !p.HTTPClientConfig.FollowRedirects {
				t.Fatalf("%+v, %v", p, err)
			}
		})
	}
	t.Run("the password prints as <secret>", func(t *testing.T) {
		var p provider
		if err := yaml.UnmarshalStrict([]byte("address: http://h\nbasic_auth: {username: u, password: s3cret}"), &p); err != nil {
			t.Fatal(err)
		}
		out, _ := yaml.Marshal(p)
		if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "password: <secret>") || !strings.Contains(string(out), "retries: 3") {
			t.Errorf("dumped:\n%s", out)
		}
	})
}

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	var p provider
	if err := yaml.UnmarshalStrict([]byte("address: http://h\ntimeout: 7s\nbasic_auth: {username: u, password: pw}"), &p); err != nil {
		t.Fatal(err)
	}
	c, err := p.Client("test")
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 7*time.Second {
		t.Errorf("timeout %s", c.Timeout)
	}
	resp, err := c.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v, %v: want the basic auth sent", resp, err)
	}
	resp.Body.Close()
	bad := Default()
	bad.HTTPClientConfig.TLSConfig.CAFile = "/nonexistent/ca.pem"
	bad.Timeout = model.Duration(time.Second)
	if _, err := bad.Client("test"); err == nil || !strings.HasPrefix(err.Error(), "http_config: ") || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Errorf("err = %v", err)
	}
}
