package gcm

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

const (
	testProject = "canaryd-test-123"
	testToken   = "ya29.canaryd-test-token"
)

// googleFakes are a loopback OAuth 2.0 token endpoint and Cloud Monitoring API. They
// follow Google's documents:
//   - "Using OAuth 2.0 for Server to Server Applications" (developers.google.com/identity/
//     protocols/oauth2/service-account): the service account's signed JWT is POSTed to
//     its key's token_uri as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and
//     assertion=<JWT>; the answer is {"access_token", "token_type": "Bearer", "expires_in"};
//   - "Query using the Prometheus API" (cloud.google.com/stackdriver/docs/managed-prometheus/
//     query-api-ui): PromQL at https://monitoring.googleapis.com/v1/projects/PROJECT_ID/
//     location/global/prometheus/api/v1/query_range with the token as a Bearer header,
//     answered as Prometheus' HTTP API answers (here by a real Prometheus behind it);
//   - Google's API error format ("AIP-193: Errors"): {"error": {"code", "message", "status"}}.
func googleFakes(t *testing.T, promURL string) (tokenURL, apiURL string, tokens *int) {
	t.Helper()
	n := 0
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		claims := map[string]any{}
		if parts := strings.Split(r.Form.Get("assertion"), "."); len(parts) == 3 {
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(b, &claims)
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || claims["scope"] != Scope || claims["iss"] != "canaryd@"+testProject+".iam.gserviceaccount.com" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		n++
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3599}`, testToken)
	}))
	t.Cleanup(tokenSrv.Close)
	up, _ := url.Parse(promURL)
	rp := httputil.NewSingleHostReverseProxy(up)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.","status":"UNAUTHENTICATED"}}`)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/"+testProject+"/location/global/prometheus/")
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"code":404,"message":"Requested entity was not found: %s","status":"NOT_FOUND"}}`, r.URL.Path)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.URL.Path, r.URL.RawPath = "/"+rest, ""
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	return tokenSrv.URL + "/token", api.URL, &n
}

// serviceAccountKey writes a service account key file as the Cloud console downloads
// one, with a fresh RSA key and token_uri pointing at tokenURL.
func serviceAccountKey(t *testing.T, tokenURL string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": testProject, "private_key_id": "0123456789abcdef",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "canaryd@" + testProject + ".iam.gserviceaccount.com", "client_id": "1234567890",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": tokenURL,
	})
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	target := promtest.ServeExporter(t, promtest.Exporter{Counters: []promtest.Counter{
		{Name: "kubernetes_requests_total", Labels: map[string]string{"track": "canary"}, PerSecond: 3},
	}})
	promURL := promtest.Start(t, target)
	promtest.WaitFor(t, promURL, `rate(kubernetes_requests_total[3s])`, 1, 30*time.Second)
	time.Sleep(2 * time.Second)
	tokenURL, apiURL, tokens := googleFakes(t, promURL)
	keyFile := serviceAccountKey(t, tokenURL)
	cfg := DefaultConfig()
	cfg.Project, cfg.Endpoint, cfg.CredentialsFile, cfg.Retries = testProject, apiURL, keyFile, 0
	p, err := New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	q := metrics.Query{Text: `sum(rate(kubernetes_requests_total{track="canary"}[3s]))`, Start: now.Add(-3 * time.Second), End: now, Step: time.Second}
	for i := range 2 {
		s, err := p.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 1 || len(s.Streams[0].Points) < 2 {
			t.Fatalf("%+v", s)
		}
		if last := s.Streams[0].Points[len(s.Streams[0].Points)-1]; last.T != now.UnixMilli() || last.V < 2.99 || last.V > 3.01 {
			t.Errorf("query %d: last point %+v, want 3/s at %d", i, last, now.UnixMilli())
		}
	}
	if *tokens != 1 {
		t.Errorf("%d token requests for two queries, want 1 (the token is reused until it expires)", *tokens)
	}
	t.Run("bad query: Prometheus' message", func(t *testing.T) {
		_, err := p.Query(t.Context(), metrics.Query{Text: `sum(rate(x[3s])`, Start: q.Start, End: q.End, Step: time.Second})
		if err == nil || !strings.HasPrefix(err.Error(), "gcm: ") || !strings.Contains(err.Error(), "parse error") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("another project: Google's 404", func(t *testing.T) {
		c := cfg
		c.Project = "someone-elses-project"
		other, err := New(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.Query(t.Context(), q)
		if err == nil || !strings.HasPrefix(err.Error(), "gcm: ") || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a key the token endpoint refuses", func(t *testing.T) {
		c := cfg
		c.CredentialsFile = serviceAccountKey(t, tokenURL+"?refuse")
		b, _ := os.ReadFile(c.CredentialsFile)
		_ = os.WriteFile(c.CredentialsFile, bytes.Replace(b, []byte("canaryd@"), []byte("intruder@"), 1), 0o600)
		bad, err := New(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Query(t.Context(), q)
		if err == nil || !strings.HasPrefix(err.Error(), "gcm: ") || !strings.Contains(err.Error(), "Invalid JWT Signature") || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"ok", func(c *Config) {}, ""},
		{"no project", func(c *Config) { c.Project = "" }, "project: is required"},
		{"project syntax", func(c *Config) { c.Project = "My Project" }, "is not a project ID"},
		{"endpoint path", func(c *Config) { c.Endpoint = "https://monitoring.googleapis.com/v1/projects/x" }, "endpoint: must be a scheme and host only"},
		{"retries", func(c *Config) { c.Retries = 11 }, "retries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Project = testProject
			tc.mod(&c)
			err := c.Validate().Err()
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
