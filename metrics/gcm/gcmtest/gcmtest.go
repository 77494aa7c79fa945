// Package gcmtest serves a loopback Google OAuth 2.0 token endpoint and Cloud Monitoring
// PromQL API in front of a real Prometheus, and writes service account keys that point
// at the token endpoint, for the gcm provider's tests and the daemon's process tests. It
// is imported only from _test.go files; it never talks to anything but loopback.
package gcmtest

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
	"sync/atomic"
	"testing"
)

const (
	// Project is the only project the API serves.
	Project = "canaryd-test-123"
	// Token is the access token the token endpoint grants and the API takes.
	Token = "ya29.canaryd-test-token"
	// Email is the service account the token endpoint grants tokens to.
	Email = "canaryd@" + Project + ".iam.gserviceaccount.com"
	// scope is gcm.Scope (not imported: the gcm package's own tests import this one).
	scope = "https://www.googleapis.com/auth/monitoring.read"
)

// Fakes are a running token endpoint and API.
type Fakes struct {
	// TokenURL is the token endpoint (a key's token_uri); APIURL the API's base URL (a
	// gcm provider's endpoint).
	TokenURL, APIURL string
	tokens           atomic.Int64
}

// Tokens is how many tokens were granted.
func (f *Fakes) Tokens() int64 { return f.tokens.Load() }

// Start serves the token endpoint and the API, the API's PromQL answered by the
// Prometheus at promURL. They follow Google's documents:
//   - "Using OAuth 2.0 for Server to Server Applications" (developers.google.com/identity/
//     protocols/oauth2/service-account): the service account's signed JWT is POSTed to
//     its key's token_uri as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and
//     assertion=<JWT>; the answer is {"access_token", "token_type": "Bearer", "expires_in"};
//   - "Query using the Prometheus API" (cloud.google.com/stackdriver/docs/managed-prometheus/
//     query-api-ui): PromQL at https://monitoring.googleapis.com/v1/projects/PROJECT_ID/
//     location/global/prometheus/api/v1/query_range with the token as a Bearer header,
//     answered as Prometheus' HTTP API answers (here by a real Prometheus behind it);
//   - Google's API error format ("AIP-193: Errors"): {"error": {"code", "message", "status"}}.
//
// Both stop with the test.
func Start(t testing.TB, promURL string) *Fakes {
	t.Helper()
	f := &Fakes{}
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		claims := map[string]any{}
		if parts := strings.Split(r.Form.Get("assertion"), "."); len(parts) == 3 {
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(b, &claims)
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || claims["scope"] != scope || claims["iss"] != Email {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		f.tokens.Add(1)
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3599}`, Token)
	}))
	t.Cleanup(tokenSrv.Close)
	up, err := url.Parse(promURL)
	if err != nil {
		t.Fatalf("gcmtest: %v", err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+Token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.","status":"UNAUTHENTICATED"}}`)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/"+Project+"/location/global/prometheus/")
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
	f.TokenURL, f.APIURL = tokenSrv.URL+"/token", api.URL
	return f
}

// ServiceAccountKey writes a service account key file of Email as the Cloud console
// downloads one, with a fresh RSA key and token_uri pointing at tokenURL, and returns
// its path.
func ServiceAccountKey(t testing.TB, tokenURL string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("gcmtest: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatalf("gcmtest: %v", err)
	}
	key, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": Project, "private_key_id": "0123456789abcdef",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": Email, "client_id": "1234567890",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": tokenURL,
	})
	if err != nil {
		t.Fatalf("gcmtest: %v", err)
	}
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatalf("gcmtest: %v", err)
	}
	return p
}
