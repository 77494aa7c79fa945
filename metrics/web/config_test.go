package web

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/metrics/internal/httpconf"
)

func TestConfigYAML(t *testing.T) {
	for _, tc := range []struct{ name, yaml, wantErr string }{
		{name: "minimal", yaml: "url: http://127.0.0.1:8080/q?query={{ .Query }}\npoints: $.data"},
		{name: "post json", yaml: "url: https://m.example.com/api/{{ .Query }}\nmethod: POST\nbody: '{\"from\": {{ .Start.Unix }}}'\npoints: $.points\ntime: $.t\nvalue: $.v\ntime_format: rfc3339\nhttp_headers: {X-Key: {files: [/run/key]}}"},
		{name: "no url", yaml: "points: $.a", wantErr: "url: is required"},
		{name: "templated host", yaml: "url: http://{{ .Query }}/q\npoints: $.a", wantErr: "url: the scheme and host must be written out"},
		{name: "templated scheme", yaml: "url: '{{ .Query }}'\npoints: $.a", wantErr: "url: the scheme and host must be written out"},
		{name: "fragment", yaml: "url: http://h/q#{{ .Query }}\npoints: $.a", wantErr: "url: must not have a {{ … }} in the fragment"},
		{name: "control flow", yaml: "url: http://h/q?{{ if .Query }}a{{ end }}\npoints: $.a", wantErr: "url: holds {{if: only text"},
		{name: "unknown field", yaml: "url: http://h/q?q={{ .Nope }}\npoints: $.a", wantErr: "can't evaluate field Nope"},
		{name: "scheme", yaml: "url: ftp://h/q\npoints: $.a", wantErr: "url: scheme must be http or https"},
		{name: "userinfo", yaml: "url: http://u:s3cret@h/q\npoints: $.a", wantErr: "url: must not carry credentials"},
		{name: "body with get", yaml: "url: http://h/q\nbody: '{}'\npoints: $.a", wantErr: "body: needs method POST or PUT"},
		{name: "body not json", yaml: "url: http://h/q\nmethod: POST\nbody: '{\"a\": {{ .Query }}'\npoints: $.a", wantErr: "body: is not JSON"},
		{name: "method", yaml: "url: http://h/q\nmethod: DELETE\npoints: $.a", wantErr: "method: must be GET, POST or PUT"},
		{name: "jsonpath", yaml: "url: http://h/q\npoints: $.a[", wantErr: "points: jsonpath"},
		{name: "no points", yaml: "url: http://h/q", wantErr: "points: is required"},
		{name: "time format", yaml: "url: http://h/q\npoints: $.a\ntime_format: iso", wantErr: "time_format: must be unix, unix_ms or rfc3339"},
		{name: "header name", yaml: "url: http://h/q\npoints: $.a\nheaders: {'X A': b}", wantErr: "headers.X A: is not a header name"},
		{name: "content-type header", yaml: "url: http://h/q\npoints: $.a\nheaders: {content-type: b}", wantErr: "is set by canaryd"},
		{name: "unknown key", yaml: "url: http://h/q\npoints: $.a\njsonpath: $.b", wantErr: "jsonpath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate().Err()
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Method == "" || c.Time != "$[0]" && c.Time != "$.t" || c.Retries != 3 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error echoes a secret: %v", err)
			}
		})
	}
}

func TestSecretPrinted(t *testing.T) {
	var c Config
	if err := yaml.UnmarshalStrict([]byte("url: http://h/q\npoints: $.a\nauthorization: {credentials: s3cret}\nhttp_headers: {X-Key: {secrets: [s3cret]}}"), &c); err != nil {
		t.Fatal(err)
	}
	out, _ := yaml.Marshal(c)
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "<secret>") {
		t.Fatalf("dumped config:\n%s", out)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"data":{"result":[{"values":[[1700000000,"1.5"],[1.5,"NaN"]]}]}}`, `{"data":{"result":[]}}`, `{"data":null}`, `[1,2]`, `{"data":{"result":[{"values":[[1e300,1],[null,null],["x",true]]}]}}`} {
		f.Add([]byte(s))
	}
	c := Config{URL: "http://h/q", Method: "GET", Points: "$.data.result[*].values", Time: "$[0]", Value: "$[1]", TimeFormat: TimeUnix, HTTP: httpconf.HTTP{Timeout: 1}}
	comp, es := c.compile()
	if es.Err() != nil {
		f.Fatal(es.Err())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decode(b, &comp, TimeUnix)
		if err != nil && s.Len() != 0 {
			t.Fatalf("an error with points: %v", err)
		}
	})
}
