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
		{name: "flux, token from a file", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ntoken_file: /run/secrets/influx"},
		{name: "flux, token from the environment", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ntoken_env: INFLUX_TOKEN"},
		{name: "flux, no token", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme"},
		{name: "flux, http_config's authorization", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\nauthorization: {type: Token, credentials_file: /run/secrets/influx}"},
		{name: "flux, no org", yaml: "address: http://127.0.0.1:8086\nlanguage: flux", wantErr: "org: is required for language flux"},
		{name: "flux, a database", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ndatabase: app", wantErr: "database: is for language influxql"},
		{name: "flux, two tokens", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ntoken: s3cret\ntoken_env: T", wantErr: "token: give one of token, token_file and token_env"},
		{name: "flux, token and basic_auth", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ntoken_file: /t\nbasic_auth: {username: u, password: s3cret}", wantErr: "token: not with basic_auth"},
		{name: "flux, token_env not a name", yaml: "address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ntoken_env: s3cret-token", wantErr: "token_env:"},
		{name: "influxql, a token", yaml: "address: http://127.0.0.1:8086\ndatabase: app\ntoken: s3cret", wantErr: "token: is for language flux"},
		{name: "unknown language", yaml: "address: http://127.0.0.1:8086\nlanguage: sql\ndatabase: app", wantErr: `language: must be influxql or flux, got "sql"`},
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

func TestFluxTokenPrinted(t *testing.T) {
	var c Config
	if err := yaml.UnmarshalStrict([]byte("address: http://127.0.0.1:8086\nlanguage: flux\norg: acme\ntoken: s3cret"), &c); err != nil {
		t.Fatal(err)
	}
	out, _ := yaml.Marshal(c)
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "token: <secret>") {
		t.Fatalf("dumped config:\n%s", out)
	}
}

func TestRenderFlux(t *testing.T) {
	start := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	const v = "v = {timeRangeStart: 2026-12-01T15:59:00Z, timeRangeStop: 2026-12-01T16:10:00Z, windowPeriod: 1m, windowOffset: 0s}"
	const body = "from(bucket: \"b\") |> range(start: v.timeRangeStart, stop: v.timeRangeStop)"
	for _, tc := range []struct{ name, in, want string }{
		{"on the first statement's line", body, v + " " + body},
		{"after the imports and comments", "// p99\nimport \"strings\"\n\n  import \"math\"\n  " + body + "\n", "// p99\nimport \"strings\"\n\n  import \"math\"\n" + v + " " + body + "\n"},
		{"a first statement that starts with (: its own line", "(" + body + ")", v + "\n(" + body + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderFlux(tc.in, start, start.Add(10*time.Minute), time.Minute)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		step time.Duration
		want string
	}{{90 * time.Second, "90s"}, {2 * time.Hour, "2h"}, {1500 * time.Millisecond, "1500ms"}, {1500 * time.Microsecond, "1500us"}} {
		if got := fluxDuration(tc.step); got != tc.want {
			t.Errorf("fluxDuration(%s) = %q, want %q", tc.step, got, tc.want)
		}
	}
	if _, err := RenderFlux(`from(bucket: "b") |> range(start: v.timeRangeStart)`, start, start, time.Minute); err == nil || !strings.Contains(err.Error(), "has no v.timeRangeStop") {
		t.Errorf("err = %v, want the missing stop named", err)
	}
}

func TestFluxString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"canary", "canary"},
		{"v2.14.0 dépôt", "v2.14.0 dépôt"},
		{`a"b`, `a\"b`},
		{`a\b`, `a\\b`},
		{`a\"b`, `a\\\"b`},
		{"${r.track}", `\x24{r.track}`},
		{"price$", `price\x24`},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"a\x00b\x7f", `a\x00b\x7f`},
		{"a\xffb", `a\xffb`},
	} {
		if got := FluxString(tc.in); got != tc.want {
			t.Errorf("FluxString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	p := &Provider{cfg: Config{Language: LanguageFlux}}
	if err := p.CheckValue(`a"; b\`); err != nil || p.EscapeValue(`a"`) != `a\"` {
		t.Errorf("a Flux provider refuses %v, escapes %q", err, p.EscapeValue(`a"`))
	}
}

func TestRender(t *testing.T) {
	onMinute := time.UnixMilli(1700000040000) // 2023-11-14T22:14:00Z
	for _, tc := range []struct {
		name       string
		query      string
		start      time.Time
		end        time.Duration
		step       time.Duration
		want       string
		onStepGrid bool
	}{
		{"a start on the minute: no offset, the steps ending at start … end", `SELECT mean(v) FROM m WHERE $timeFilter GROUP BY time($step)`, onMinute, time.Hour, time.Minute,
			"SELECT mean(v) FROM m WHERE time >= 1699999980000ms AND time < 1700003640000ms GROUP BY time(1m)", true},
		{"a start 20 s off the minute: the offset puts buckets on the canary's grid", `SELECT sum(c) FROM m WHERE $timeFilter GROUP BY time($step) fill(0)`, onMinute.Add(20 * time.Second), 5 * time.Minute, time.Minute,
			"SELECT sum(c) FROM m WHERE time >= 1700000000000ms AND time < 1700000360000ms GROUP BY time(1m, 20s) fill(0)", true},
		{"an end off the grid: buckets stop at the grid's last point", `SELECT sum(c) FROM m WHERE $timeFilter GROUP BY TIME( $step ), "le"`, onMinute, 150 * time.Second, time.Minute,
			"SELECT sum(c) FROM m WHERE time >= 1699999980000ms AND time < 1700000160000ms GROUP BY time(1m), \"le\"", true},
		{"odd steps", `SELECT mean(v) FROM m WHERE $timeFilter GROUP BY time($step)`, onMinute.Add(700 * time.Millisecond), 3 * time.Second, 1500 * time.Millisecond,
			"SELECT mean(v) FROM m WHERE time >= 1700000039200ms AND time < 1700000043700ms GROUP BY time(1500ms, 700ms)", true},
		{"two hours", `SELECT mean(v) FROM m WHERE $timeFilter GROUP BY time($step)`, onMinute, 4 * time.Hour, 2 * time.Hour,
			"SELECT mean(v) FROM m WHERE time >= 1699992840000ms AND time < 1700014440000ms GROUP BY time(2h, 14m)", true},
		{"no GROUP BY time($step): the window as it is", `SELECT v FROM m WHERE $timeFilter`, onMinute.Add(20 * time.Second), time.Hour, time.Minute,
			"SELECT v FROM m WHERE time >= 1700000060000ms AND time <= 1700003660000ms", false},
		{"a literal interval is the query's own", `SELECT mean(v) FROM m WHERE $timeFilter GROUP BY time(30s)`, onMinute.Add(20 * time.Second), time.Hour, time.Minute,
			"SELECT mean(v) FROM m WHERE time >= 1700000060000ms AND time <= 1700003660000ms GROUP BY time(30s)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.query, tc.start, tc.start.Add(tc.end), tc.step)
			if err != nil || got != tc.want {
				t.Errorf("got  %q, %v\nwant %q", got, err, tc.want)
			}
			if OnStepGrid(tc.query) != tc.onStepGrid {
				t.Errorf("OnStepGrid = %t", !tc.onStepGrid)
			}
		})
	}
}

func TestCheckValue(t *testing.T) {
	p := &Provider{cfg: DefaultConfig()}
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
