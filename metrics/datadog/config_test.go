package datadog

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v2"
)

func TestConfigUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Config
	}{
		{
			name: "empty takes every default",
			yaml: "{}",
			want: Config{Site: "datadoghq.com", APIKeyEnv: "DD_API_KEY", AppKeyEnv: "DD_APP_KEY", Timeout: 30 * time.Second, Retries: 3, MaxRateLimitWait: 10 * time.Minute, QueryAPI: "v1", QueriesPerRequest: 1},
		},
		{
			name: "every field",
			yaml: "site: datadoghq.eu\napi_url: http://127.0.0.1:8126/dd\napi_key_env: CANARYD_DD_API\napp_key_env: CANARYD_DD_APP\napi_key_file: /run/secrets/dd-api\napp_key_file: /run/secrets/dd-app\nmax_rate_limit_wait: 7m\nquery_api: v2\ntimeout: 5s\nretries: 0\ncohort_tag: track\nqueries_per_request: 6\n",
			want: Config{Site: "datadoghq.eu", APIURL: "http://127.0.0.1:8126/dd", APIKeyEnv: "CANARYD_DD_API", AppKeyEnv: "CANARYD_DD_APP",
				APIKeyFile: "/run/secrets/dd-api", AppKeyFile: "/run/secrets/dd-app", MaxRateLimitWait: 7 * time.Minute, QueryAPI: "v2", Timeout: 5 * time.Second, Retries: 0,
				CohortTag: "track", QueriesPerRequest: 6},
		},
		{
			name: "partial keeps the other defaults",
			yaml: "site: us5.datadoghq.com\ntimeout: 1m30s\n",
			want: Config{Site: "us5.datadoghq.com", APIKeyEnv: "DD_API_KEY", AppKeyEnv: "DD_APP_KEY", Timeout: 90 * time.Second, Retries: 3, MaxRateLimitWait: 10 * time.Minute, QueryAPI: "v1", QueriesPerRequest: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Config
			if err := yaml.UnmarshalStrict([]byte(tc.yaml), &got); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConfigUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error; names the field
	}{
		{"unknown key", "sight: datadoghq.eu", "field sight not found"},
		{"empty site", `site: ""`, "site: must not be empty"},
		{"site with scheme", "site: https://datadoghq.eu", "site: \"https://datadoghq.eu\" must be a bare site name"},
		{"site with app prefix", "site: app.datadoghq.com", "site: \"app.datadoghq.com\" must be the bare site (e.g. datadoghq.com)"},
		{"api_url without scheme", "api_url: 127.0.0.1:8126", "api_url:"},
		{"api_url ftp", "api_url: ftp://127.0.0.1", "api_url: \"ftp://127.0.0.1\" must start with http:// or https://"},
		{"api_url with credentials", "api_url: http://u:p@127.0.0.1", "api_url: must not carry credentials"},
		{"api_url with query", "api_url: http://127.0.0.1/?a=b", "api_url: \"http://127.0.0.1/?a=b\" must not have a query"},
		{"empty api_key_env", `api_key_env: ""`, "api_key_env: \"\" is not an environment variable name"},
		{"key pasted into app_key_env", "app_key_env: 0123456789abcdef0123456789abcdef01234567", "app_key_env: \"0123…\" is not an environment variable name"},
		{"zero timeout", "timeout: 0s", "timeout: must be > 0, got 0s"},
		{"negative retries", "retries: -1", "retries: must be between 0 and 10, got -1"},
		{"too many retries", "retries: 100", "retries: must be between 0 and 10, got 100"},
		{"timeout not a duration", "timeout: soon", "soon"},
		{"unknown query_api", "query_api: v3", `query_api: must be v1 or v2, got "v3"`},
		{"zero max_rate_limit_wait", "max_rate_limit_wait: 0s", "max_rate_limit_wait: must be > 0 and at most 24h, got 0s"},
		{"max_rate_limit_wait over a day", "max_rate_limit_wait: 25h", "max_rate_limit_wait: must be > 0 and at most 24h, got 25h0m0s"},
		{"api_key_file with a line break", `api_key_file: "/run/a\nb"`, "api_key_file: must be a file path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Config
			err := yaml.UnmarshalStrict([]byte(tc.yaml), &got)
			if err == nil {
				err = got.Validate().Err() // what config does after decoding
			}
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("error %q repeats what looks like a key", err)
			}
		})
	}
}
