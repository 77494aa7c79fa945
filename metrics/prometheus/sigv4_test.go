package prometheus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"
	"go.uber.org/zap"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

const (
	testAccessKey = "AKIDCANARYDTEST"
	testSecretKey = "canaryd-test-s3cret-key"
	testRegion    = "eu-west-1"
)

// sigV4Gateway is a loopback server that checks each request's SigV4 signature as AWS
// does (recomputed with aws-sdk-go-v2's own v4 signer from the request as received:
// method, path, query, the signed headers, the body's SHA-256, X-Amz-Date) for
// testAccessKey/testSecretKey in testRegion and the aps service, answers 403 with AWS's
// error message when it does not match, and otherwise passes the request to a real
// Prometheus, which answers. Like Amazon Managed Service for Prometheus it serves the API
// under a workspace's path, /workspaces/ws-1/api/v1/….
func sigV4Gateway(t *testing.T, promURL string) (gwURL string, signed *int) {
	t.Helper()
	up, err := neturl.Parse(promURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if msg := verifySigV4(r, body); msg != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"message":%q}`, msg)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/workspaces/ws-1/")
		if !ok {
			http.Error(w, `{"message":"workspace not found"}`, http.StatusNotFound)
			return
		}
		n++
		r.URL.Path, r.URL.RawPath = "/"+rest, ""
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func verifySigV4(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	const prefix = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, prefix) {
		return "Missing Authentication Token"
	}
	var credential, signedHeaders string
	for _, part := range strings.Split(strings.TrimPrefix(auth, prefix), ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		}
	}
	date := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return "Missing X-Amz-Date"
	}
	if d := time.Since(at); d > 5*time.Minute || d < -5*time.Minute {
		return "Signature expired"
	}
	wantCred := fmt.Sprintf("%s/%s/%s/aps/aws4_request", testAccessKey, at.Format("20060102"), testRegion)
	if credential != wantCred {
		return fmt.Sprintf("Credential should be scoped to a valid region and service (got %s)", credential)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return "The provided x-amz-content-sha256 header does not match what was computed."
	}
	// The request as the client signed it: only the headers it says it signed.
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.Header = http.Header{}
	for _, h := range strings.Split(signedHeaders, ";") {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = r.ContentLength
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	again.Header.Del("Authorization")
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hash, "aps", testRegion, at); err != nil {
		return err.Error()
	}
	if again.Header.Get("Authorization") != auth {
		return "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return ""
}

func sigv4Provider(t *testing.T, address, secret string) *Provider {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Address, cfg.Retries = address, 0
	cfg.SigV4 = &sigv4.SigV4Config{Region: testRegion, AccessKey: testAccessKey, SecretKey: commoncfg.Secret(secret)}
	p, err := New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSigV4 queries a real Prometheus through a gateway that checks SigV4 signatures, as
// Amazon Managed Service for Prometheus does (issue 18, item 2).
func TestSigV4(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	target := promtest.ServeExporter(t, testExporter())
	promURL := promtest.Start(t, target)
	promtest.WaitFor(t, promURL, `min(count_over_time(requests_total[1m])) >= 3`, 1, 60*time.Second)
	gw, signed := sigV4Gateway(t, promURL)
	end := time.Now()
	q := metrics.Query{Text: `sum(rate(requests_total[5s]))`, Start: end.Add(-2 * time.Second), End: end, Step: time.Second}

	direct := newTestProvider(t, promURL, 0, 10*time.Second)
	want, err := direct.Query(t.Context(), q)
	if err != nil || want.Len() == 0 {
		t.Fatalf("direct: %+v, %v", want, err)
	}
	t.Run("signed: Prometheus' answer", func(t *testing.T) {
		got, err := sigv4Provider(t, gw+"/workspaces/ws-1", testSecretKey).Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Streams) != 1 || len(got.Streams[0].Points) != len(want.Streams[0].Points) {
			t.Fatalf("signed %+v, direct %+v", got, want)
		}
		for i, pt := range got.Streams[0].Points {
			if pt != want.Streams[0].Points[i] {
				t.Errorf("point %d: signed %+v, direct %+v", i, pt, want.Streams[0].Points[i])
			}
		}
		if *signed == 0 {
			t.Error("the gateway passed no signed request")
		}
	})
	t.Run("wrong secret key: AWS's refusal", func(t *testing.T) {
		_, err := sigv4Provider(t, gw+"/workspaces/ws-1", "not-the-s3cret").Query(t.Context(), q)
		if err == nil || !strings.HasPrefix(err.Error(), "prometheus ") || !strings.Contains(err.Error(), "403") ||
			!strings.Contains(err.Error(), "The request signature we calculated does not match the signature you provided") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the error has the key: %v", err)
		}
	})
	t.Run("unsigned: refused", func(t *testing.T) {
		_, err := newTestProvider(t, gw+"/workspaces/ws-1", 0, 10*time.Second).Query(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "Missing Authentication Token") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSigV4Config(t *testing.T) {
	for _, tc := range []struct{ name, yaml, wantErr string }{
		{name: "keys", yaml: "address: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1\nsigv4: {region: eu-west-1, access_key: AKID, secret_key: s3cret}"},
		{name: "default chain with a role", yaml: "address: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1\nsigv4: {region: eu-west-1, role_arn: 'arn:aws:iam::123456789012:role/canaryd'}"},
		{name: "access key without secret", yaml: "address: https://aps\nsigv4: {region: eu-west-1, access_key: AKID}", wantErr: "must provide a AWS SigV4 Access key and Secret Key"},
		{name: "with basic auth", yaml: "address: https://aps\nsigv4: {region: eu-west-1}\nbasic_auth: {username: u, password: s3cret}", wantErr: "sigv4: cannot be used with basic_auth"},
		{name: "unknown key", yaml: "address: https://aps\nsigv4: {region: eu-west-1, secret: x}", wantErr: "secret"},
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
				out, _ := yaml.Marshal(c)
				if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "sigv4:") {
					t.Errorf("dumped config:\n%s", out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
