package cloudwatch

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v2"
)

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "defaults: the SDK's chain",
			yaml: `region: eu-west-1`,
			check: func(t *testing.T, c Config) {
				if c.Protocol != "json" || c.Retries != 3 || c.RoleSessionName != "canaryd" || c.AccessKeyID != "" {
					t.Errorf("defaults not applied: %+v", c)
				}
			},
		},
		{
			name: "static keys, role, endpoint, tls",
			yaml: `
region: us-east-1
endpoint: https://monitoring.us-east-1.amazonaws.com
access_key_id: AKIAIOSFODNN7EXAMPLE
secret_access_key_file: /run/secrets/aws
role_arn: arn:aws:iam::123456789012:role/canaryd-read
external_id: ext-1
tls_config: {server_name: monitoring}
`,
			check: func(t *testing.T, c Config) {
				if c.RoleARN == "" || c.SecretAccessKeyFile != "/run/secrets/aws" || c.HTTPClientConfig.TLSConfig.ServerName != "monitoring" {
					t.Errorf("%+v", c)
				}
			},
		},
		{name: "no region", yaml: `endpoint: http://127.0.0.1:5000`, wantErr: "region:"},
		{name: "bad region", yaml: `region: Europe`, wantErr: `region: "Europe"`},
		{name: "endpoint scheme", yaml: "region: us-east-1\nendpoint: ftp://x", wantErr: "endpoint: scheme"},
		{name: "secret without id", yaml: "region: us-east-1\nsecret_access_key: abc", wantErr: "access_key_id: is required"},
		{name: "id without secret", yaml: "region: us-east-1\naccess_key_id: AKIAIOSFODNN7EXAMPLE", wantErr: "secret_access_key:"},
		{name: "both secrets", yaml: "region: us-east-1\naccess_key_id: AKIAIOSFODNN7EXAMPLE\nsecret_access_key: a\nsecret_access_key_file: /f", wantErr: "not both"},
		{name: "secret in the id field is not echoed", yaml: "region: us-east-1\naccess_key_id: wJalrXUtnFEMI/K7MDENG\nsecret_access_key: a", wantErr: "access_key_id: is not an access key ID"},
		{name: "role arn", yaml: "region: us-east-1\nrole_arn: canaryd", wantErr: "role_arn:"},
		{name: "external id without role", yaml: "region: us-east-1\nexternal_id: x", wantErr: "need role_arn"},
		{name: "protocol", yaml: "region: us-east-1\nprotocol: xml", wantErr: "protocol: must be json or cbor"},
		{name: "basic auth would replace SigV4", yaml: "region: us-east-1\nbasic_auth: {username: a, password: b}", wantErr: "http_config: basic_auth"},
		{name: "retries", yaml: "region: us-east-1\nretries: 11", wantErr: "retries:"},
		{name: "unknown key", yaml: "region: us-east-1\nregoin: x", wantErr: "regoin"},
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
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "wJalrX") {
					t.Fatalf("the error echoes a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestSecretPrinted(t *testing.T) {
	var c Config
	in := "region: us-east-1\naccess_key_id: AKIAIOSFODNN7EXAMPLE\nsecret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
	if err := yaml.UnmarshalStrict([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "wJalrX") || !strings.Contains(string(out), "secret_access_key: <secret>") {
		t.Fatalf("dumped config:\n%s", out)
	}
}

func TestCheckValue(t *testing.T) {
	p := &Provider{}
	for _, v := range []string{"canary", "v2.14.0", "app/checkout-lb/50dc6c495c0c9188", "targetgroup/tg:1", "dépôt", "a@b#c_d"} {
		if err := p.CheckValue(v); err != nil {
			t.Errorf("CheckValue(%q) = %v, want ok", v, err)
		}
	}
	for _, v := range []string{`a"b`, `a'b`, `a\b`, "a b", "x=y", "a*", "a,b", "a}b", "a)b", "a\nb", strings.Repeat("a", 1025)} {
		if err := p.CheckValue(v); err == nil {
			t.Errorf("CheckValue(%q) = nil, want an error", v)
		}
	}
}

func TestParseQueryExpression(t *testing.T) {
	qs, err := parseQuery(`  SEARCH('{AWS/ApplicationELB,TargetGroup} MetricName="RequestCount" TargetGroup="tg/canary"', 'Sum')  `, 60e9)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || *qs[0].Id != "q" || *qs[0].Period != 60 || !strings.HasPrefix(*qs[0].Expression, "SEARCH(") {
		t.Fatalf("%+v", qs)
	}
	if _, err := parseQuery("m1", 1500e6); err == nil || !strings.Contains(err.Error(), "whole seconds") {
		t.Fatalf("1.5s step: err = %v", err)
	}
}
