package graphite

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v2"
)

func TestConfigYAML(t *testing.T) {
	for _, tc := range []struct{ name, yaml, wantErr string }{
		{name: "minimal", yaml: "address: http://127.0.0.1:8080"},
		{name: "basic auth from a file", yaml: "address: https://graphite/prefix\nbasic_auth: {username: canaryd, password_file: /run/secrets/graphite}"},
		{name: "no address", yaml: "timeout: 5s", wantErr: "address: is required"},
		{name: "userinfo", yaml: "address: http://u:s3cret@graphite", wantErr: "address: must not carry credentials"},
		{name: "retries", yaml: "address: http://graphite\nretries: 11", wantErr: "retries:"},
		{name: "unknown key", yaml: "address: http://graphite\ntarget: x", wantErr: "target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate().Err()
			}
			if tc.wantErr == "" {
				if err != nil || c.Retries != 3 || c.Timeout == 0 {
					t.Fatalf("%+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckValue(t *testing.T) {
	p := &Provider{}
	for _, v := range []string{"canary", "v2_14_0", "eu-west-1", "dépôt", "a:b"} {
		if err := p.CheckValue(v); err != nil {
			t.Errorf("CheckValue(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"v2.14.0", "*", "a,b", "{a,b}", "x)", "a b", "[ab]", "a?", `a"`, strings.Repeat("a", 256)} {
		if err := p.CheckValue(v); err == nil {
			t.Errorf("CheckValue(%q) = nil, want an error", v)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`[{"target":"a","tags":{"name":"a"},"datapoints":[[1.5,1700000000],[null,1700000010],[1e9999,1700000020]]}]`, `[]`, `null`, `[{"datapoints":[[1]]}]`, `[{"datapoints":[[ -2e-3 , 1 ]]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decode(b, 0, 1<<62)
		if err != nil {
			return
		}
		// What decodes must agree with encoding/json's reading of the same pairs.
		var ref []struct {
			Datapoints [][]*float64 `json:"datapoints"`
		}
		if json.Unmarshal(b, &ref) != nil {
			return // e.g. 1e9999, which encoding/json refuses
		}
		n := 0
		for _, r := range ref {
			for _, d := range r.Datapoints {
				if len(d) != 2 {
					t.Fatalf("decoded a datapoint of %d values", len(d))
				}
				if d[0] != nil && d[1] != nil && *d[1] >= 0 && *d[1]*1000 <= 1<<62 {
					n++
				}
			}
		}
		if s.Len() != n {
			t.Fatalf("%d points, encoding/json reads %d", s.Len(), n)
		}
	})
}
