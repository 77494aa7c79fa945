package prometheus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/internal/testutil"
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
// testAccessKey/testSecretKey (until rotate changes them) in testRegion and the aps
// service, answers 403 with AWS's error message when it does not match, and otherwise
// passes the request to a real Prometheus, which answers. Like Amazon Managed Service
// for Prometheus it serves the API under a workspace's path, /workspaces/ws-1/api/v1/….
func sigV4Gateway(t *testing.T, promURL string) (gwURL string, signed *atomic.Int64, rotate func(aws.Credentials)) {
	t.Helper()
	up, err := neturl.Parse(promURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	signed = &atomic.Int64{}
	var creds atomic.Pointer[aws.Credentials]
	creds.Store(&aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if msg := verifySigV4(r, body, *creds.Load()); msg != "" {
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
		signed.Add(1)
		r.URL.Path, r.URL.RawPath = "/"+rest, ""
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, signed, func(c aws.Credentials) { creds.Store(&c) }
}

func verifySigV4(r *http.Request, body []byte, creds aws.Credentials) string {
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
	wantCred := fmt.Sprintf("%s/%s/%s/aps/aws4_request", creds.AccessKeyID, at.Format("20060102"), testRegion)
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
	cfg.SigV4 = &SigV4{SigV4Config: sigv4.SigV4Config{Region: testRegion, AccessKey: testAccessKey, SecretKey: commoncfg.Secret(secret)}}
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
	gw, signed, rotate := sigV4Gateway(t, promURL)
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
		if signed.Load() == 0 {
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
	t.Run("keys from files, rotated while running", func(t *testing.T) {
		dir := t.TempDir()
		accessFile, secretFile := filepath.Join(dir, "access"), filepath.Join(dir, "secret")
		t0 := time.Now().Add(-time.Hour)
		testutil.WriteSecret(t, accessFile, testAccessKey+"\n", t0)
		testutil.WriteSecret(t, secretFile, testSecretKey+"\n", t0)
		core, logs := observer.New(zapcore.DebugLevel)
		cfg := DefaultConfig()
		cfg.Address, cfg.Retries = gw+"/workspaces/ws-1", 0
		cfg.SigV4 = &SigV4{SigV4Config: sigv4.SigV4Config{Region: testRegion}, AccessKeyFile: accessFile, SecretKeyFile: secretFile}
		p, err := New(cfg, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		const newAccess, newSecret = "AKIDCANARYDROTATED", "canaryd-rotated-s3cret-key"
		for _, st := range []struct {
			name, wantErr string
			change        func()
		}{
			{"the keys at start", "", func() {}},
			{"the gateway rotated, the files not yet", "Credential should be scoped to a valid region and service (got " + testAccessKey + "/", func() {
				rotate(aws.Credentials{AccessKeyID: newAccess, SecretAccessKey: newSecret})
			}},
			{"the files rotated", "", func() {
				testutil.WriteSecret(t, accessFile, newAccess, t0.Add(time.Minute))
				testutil.WriteSecret(t, secretFile, newSecret, t0.Add(time.Minute))
			}},
			{"a file emptied mid-rotation", "", func() { testutil.WriteSecret(t, secretFile, "", t0.Add(2*time.Minute)) }},
		} {
			st.change()
			before := signed.Load()
			got, err := p.Query(t.Context(), q)
			if st.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), st.wantErr) {
					t.Errorf("%s: err = %v, want a 403 with %q", st.name, err, st.wantErr)
				}
				continue
			}
			if err != nil || got.Len() != want.Len() || signed.Load() != before+1 {
				t.Errorf("%s: %+v, %v, %d signed requests passed; want Prometheus' answer", st.name, got, err, signed.Load()-before)
			}
		}
		if logs.FilterMessage("secret file reread").Len() != 2 || logs.FilterMessage("secret file unreadable; the last secret read stays in use").Len() != 1 {
			t.Errorf("logs: %v", logs.All())
		}
		for _, e := range logs.All() {
			b, _ := json.Marshal(e.ContextMap())
			if text := e.Message + string(b); strings.Contains(text, "s3cret") {
				t.Errorf("a secret in the log: %s", text)
			}
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
		{name: "secret key from a file", yaml: "address: https://aps\nsigv4: {region: eu-west-1, access_key: AKID, secret_key_file: /run/secrets/aws-secret}"},
		{name: "both keys from files", yaml: "address: https://aps\nsigv4: {region: eu-west-1, access_key_file: /run/secrets/aws-id, secret_key_file: /run/secrets/aws-secret}"},
		{name: "secret key inline and from a file", yaml: "address: https://aps\nsigv4: {region: eu-west-1, access_key: AKID, secret_key: s3cret, secret_key_file: /k}", wantErr: "sigv4.secret_key_file: give secret_key or secret_key_file, not both"},
		{name: "access key inline and from a file", yaml: "address: https://aps\nsigv4: {region: eu-west-1, access_key: AKID, access_key_file: /a, secret_key_file: /k}", wantErr: "sigv4.access_key_file: give access_key or access_key_file, not both"},
		{name: "access key file without secret", yaml: "address: https://aps\nsigv4: {region: eu-west-1, access_key_file: /a}", wantErr: "must provide a AWS SigV4 Access key and Secret Key"},
		{name: "role options checked", yaml: "address: https://aps\nsigv4: {region: eu-west-1, external_id: x}", wantErr: "external_id can only be used with role_arn"},
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
				var back Config
				if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "sigv4:") || yaml.UnmarshalStrict(out, &back) != nil ||
					back.SigV4.AccessKeyFile != c.SigV4.AccessKeyFile || back.SigV4.SecretKeyFile != c.SigV4.SecretKeyFile || back.SigV4.SigV4Config.Region != "eu-west-1" {
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
