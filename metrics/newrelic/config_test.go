package newrelic

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v2"
)

func TestConfigYAML(t *testing.T) {
	for _, tc := range []struct{ name, yaml, endpoint, wantErr string }{
		{name: "us by default", yaml: "account_id: 1234567", endpoint: EndpointUS},
		{name: "eu", yaml: "account_id: 1234567\nregion: eu\napi_key_file: /run/secrets/nr", endpoint: EndpointEU},
		{name: "endpoint", yaml: "account_id: 1\nendpoint: http://127.0.0.1:9/graphql", endpoint: "http://127.0.0.1:9/graphql"},
		{name: "no account", yaml: "region: us", wantErr: "account_id: is required"},
		{name: "region", yaml: "account_id: 1\nregion: apac", wantErr: "region: must be us or eu"},
		{name: "both keys", yaml: "account_id: 1\napi_key: NRAK-s3cret\napi_key_file: /k", wantErr: "api_key: give api_key or api_key_file, not both"},
		{name: "basic auth", yaml: "account_id: 1\nbasic_auth: {username: u, password: s3cret}", wantErr: "NerdGraph takes the key as API-Key"},
		{name: "timeout", yaml: "account_id: 1\ntimeout: 5m", wantErr: "timeout: must be > 0 and at most 120s"},
		{name: "unknown key", yaml: "account_id: 1\napikey: x", wantErr: "apikey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate().Err()
			}
			if tc.wantErr == "" {
				if err != nil || c.endpoint() != tc.endpoint {
					t.Fatalf("%+v, %v; want endpoint %s", c, err, tc.endpoint)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	var c Config
	if err := yaml.UnmarshalStrict([]byte("account_id: 1\napi_key: NRAK-s3cret"), &c); err != nil {
		t.Fatal(err)
	}
	if out, _ := yaml.Marshal(c); strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "api_key: <secret>") {
		t.Errorf("dumped config:\n%s", out)
	}
}

func TestCheckValue(t *testing.T) {
	p := &Provider{}
	for _, v := range []string{"canary", "v2.14.0", "eu-west-1/a", "dépôt", "a b", "50%"} {
		if err := p.CheckValue(v); err != nil {
			t.Errorf("CheckValue(%q) = %v", v, err)
		}
	}
	for _, v := range []string{`x' OR appName LIKE '%`, "a`b", `a\b`, `a"b`, "a\nb"} {
		if err := p.CheckValue(v); err == nil {
			t.Errorf("CheckValue(%q) = nil, want an error", v)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"data":{"actor":{"account":{"nrql":{"results":[{"beginTimeSeconds":1700000000,"endTimeSeconds":1700000060,"count":3,"percentile.duration":{"99":1}}]}}}}}`,
		`{"data":{"actor":{"account":{"nrql":{"results":[{"beginTimeSeconds":1,"facet":["a",2],"a":"x","count":null}]}}}}}`,
		`{"errors":[{"message":"x"}]}`, `{"data":null}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decode(b)
		if err != nil {
			if s.Len() != 0 {
				t.Fatal("points with an error")
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("decoded invalid JSON %q", b)
		}
	})
}
