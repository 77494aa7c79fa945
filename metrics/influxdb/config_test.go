package influxdb

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v2"
)

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{name: "minimal", yaml: "address: http://127.0.0.1:8086\ndatabase: telegraf"},
		{name: "basic auth from a file, tls", yaml: "address: https://influx:8086/prefix\ndatabase: app\nretention_policy: autogen\nbasic_auth: {username: canaryd, password_file: /run/secrets/influx}\ntls_config: {server_name: influx}"},
		{name: "no address", yaml: "database: app", wantErr: "address: is required"},
		{name: "no database", yaml: "address: http://127.0.0.1:8086", wantErr: "database: is required"},
		{name: "scheme", yaml: "address: udp://127.0.0.1:8089\ndatabase: app", wantErr: "address: scheme"},
		{name: "userinfo", yaml: "address: http://admin:s3cret@127.0.0.1:8086\ndatabase: app", wantErr: "address: must not carry credentials"},
		{name: "credentials in the query", yaml: "address: http://127.0.0.1:8086/?u=admin&p=s3cret\ndatabase: app", wantErr: "address: must not have a query"},
		{name: "retries", yaml: "address: http://127.0.0.1:8086\ndatabase: app\nretries: -1", wantErr: "retries:"},
		{name: "unknown key", yaml: "address: http://127.0.0.1:8086\ndatabase: app\ndb: x", wantErr: "db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate().Err() // what config does after decoding
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Timeout == 0 || c.Retries != 3 {
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
	if err := yaml.UnmarshalStrict([]byte("address: http://127.0.0.1:8086\ndatabase: app\nbasic_auth: {username: u, password: s3cret}"), &c); err != nil {
		t.Fatal(err)
	}
	out, _ := yaml.Marshal(c)
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "password: <secret>") {
		t.Fatalf("dumped config:\n%s", out)
	}
}

func TestRender(t *testing.T) {
	start := time.UnixMilli(1700000000000)
	for _, tc := range []struct {
		step time.Duration
		want string
	}{
		{time.Minute, "1m"}, {90 * time.Second, "90s"}, {2 * time.Hour, "2h"}, {1500 * time.Millisecond, "1500ms"},
	} {
		got, err := Render(`SELECT mean(v) FROM m WHERE $timeFilter GROUP BY time($step)`, start, start.Add(time.Hour), tc.step)
		want := "SELECT mean(v) FROM m WHERE time >= 1700000000000ms AND time <= 1700003600000ms GROUP BY time(" + tc.want + ")"
		if err != nil || got != want {
			t.Errorf("step %s: %q, %v; want %q", tc.step, got, err, want)
		}
	}
}

func TestCheckValue(t *testing.T) {
	p := &Provider{}
	for _, v := range []string{"canary", "v2.14.0", "eu-west-1/a", "dépôt", "a b"} {
		if err := p.CheckValue(v); err != nil {
			t.Errorf("CheckValue(%q) = %v, want ok", v, err)
		}
	}
	for _, v := range []string{`x' OR 'a'='a`, `a"b`, `a\b`, "a; DROP DATABASE app", "a\nb"} {
		if err := p.CheckValue(v); err == nil {
			t.Errorf("CheckValue(%q) = nil, want an error", v)
		}
	}
}

func TestParseRow(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []value
		wantErr string
	}{
		{in: `[1700000000000,1.5,null,-2e3]`, want: []value{{v: 1700000000000}, {v: 1.5}, {null: true}, {v: -2000}}},
		{in: ` [ 1 , 2 ] `, want: []value{{v: 1}, {v: 2}}},
		{in: `[]`, want: nil},
		{in: `[1,"a,b"]`, wantErr: "not a number"},
		{in: `[1,true]`, wantErr: "not a number"},
		{in: `[1,2`, wantErr: "truncated"},
		{in: `{}`, wantErr: "not an array"},
	} {
		got, err := parseRow([]byte(tc.in), nil)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %v, %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: [%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}
