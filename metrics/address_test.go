package metrics

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	cases := []struct{ name, addr, err string }{
		{"plain", "http://127.0.0.1:9090", ""},
		{"path prefix kept", "https://h/prometheus", ""},
		{"empty", "", "is required"},
		{"scheme", "ftp://h", `scheme must be http or https, got "ftp"`},
		{"no host", "http:///x", "has no host"},
		{"no host, secret redacted", "http://admin:SECRET@/x", "<secret>"},
		{"unparsable, secret redacted", "http://admin:SECRET@h:port", "<secret>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAddress(tc.addr)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want it to contain %q", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "SECRET"):
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}
