package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given serial.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "canaryd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Key first: the reloader watches both files, and a half-written pair only keeps the
	// old certificate.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeAuthAndTLS: the real process serves HTTPS, refuses requests without a token
// (401) or without the role (403), serves them with it, and picks up a renewed
// certificate without a restart.
func TestServeAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	const pipeline, sre = "pipeline-token-0123456789abcdef", "sre-token-0123456789abcdefghij"
	cfg := strings.Replace(fmt.Sprintf(e2eConfig, "http://127.0.0.1:1"), "server: {min_interval: 1s}\n", "", 1) + fmt.Sprintf(`
server:
  min_interval: 1s
  tls: {cert_file: %q, key_file: %q}
  auth:
    tokens:
      - {name: pipeline, sha256: %q, roles: [read, register]}
      - {name: sre, env: TEST_SRE_TOKEN, roles: [read, register, operate]}
    open_endpoints: [healthz, readyz]
`, certFile, keyFile, config.HashToken(pipeline))
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_SRE_TOKEN", sre)
	p := startServeTLS(t, cfgPath, filepath.Join(dir, "c.db"))

	// Trust any certificate but remember which one was presented.
	var serial int64
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			serial = cs.PeerCertificates[0].SerialNumber.Int64()
			return nil
		}},
	}}
	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	reg := `{"name":"web","analysis":"e2e","baseline":{"track":"a"},"canary":{"track":"b"},"vars":{"app":"web"}}`
	if code, _ := do("GET", "/api/v1/canaries", "", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := do("GET", "/metrics", "", ""); code != 401 {
		t.Errorf("closed /metrics without token: %d", code)
	}
	if code, _ := do("GET", "/healthz", "", ""); code != 200 {
		t.Errorf("open /healthz: %d", code)
	}
	code, body := do("POST", "/api/v1/canaries", pipeline, reg)
	if code != 201 {
		t.Fatalf("pipeline registers: %d %s", code, body)
	}
	id := body[strings.Index(body, `"id": "`)+7:][:16]
	if code, body := do("POST", "/api/v1/canaries/"+id+"/abort", pipeline, ""); code != 403 || !strings.Contains(body, "operate") {
		t.Errorf("pipeline aborts: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/canaries/"+id+"/abort?actuate=false", sre, ""); code != 200 || !strings.Contains(body, `"status": "aborted"`) {
		t.Errorf("sre aborts: %d %s", code, body)
	}
	// Issue 19 item 7: a request no route matches is JSON on the API's paths, after the
	// same authentication as a read; the pages keep an HTML 404.
	for _, tc := range []struct{ method, path, token, want string }{
		{"GET", "/api/v1/nope", "", `"error":"an API token is required`},
		{"GET", "/api/v1/nope", pipeline, `"error": "no route GET /api/v1/nope`},
		{"GET", "/api/v1/canaries/" + id + "/abort", pipeline, `"error": "GET is not allowed on /api/v1/canaries/` + id + `/abort; it takes POST"`},
		{"GET", "/nope", pipeline, "There is no page at /nope."},
	} {
		if code, body := do(tc.method, tc.path, tc.token, ""); !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s, want %s", tc.method, tc.path, code, body, tc.want)
		}
	}
	if serial != 1 {
		t.Fatalf("served certificate serial %d, want 1", serial)
	}

	// Renew the certificate: new handshakes get it within a couple of seconds.
	time.Sleep(1100 * time.Millisecond) // a distinct modification time
	writeCert(t, certFile, keyFile, 2)
	deadline := time.Now().Add(10 * time.Second)
	for serial != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("still serving certificate %d after renewal", serial)
		}
		time.Sleep(200 * time.Millisecond)
		do("GET", "/healthz", "", "")
	}
}
