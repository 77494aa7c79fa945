package fetch

import (
	"strings"
	"testing"
)

func TestErrorText(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "  ", "no body"},
		{"json error string", `{"status":"error","error":"parse error at char 5"}`, "parse error at char 5"},
		{"json error object", `{"error":{"code":400,"message":"bad query","status":"INVALID_ARGUMENT"}}`, "INVALID_ARGUMENT: bad query"},
		{"json message", `{"message":"Invalid API key"}`, "Invalid API key"},
		{"graphql errors", `{"errors":[{"message":"a"},{"message":"b"}]}`, "a; b"},
		{"html", "<html>\n<head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center></body></html>", "502 Bad Gateway: 502 Bad Gateway nginx"},
		{"text", "upstream\nconnect error", "upstream connect error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorText([]byte(tc.body)); got != tc.want {
				t.Errorf("ErrorText = %q, want %q", got, tc.want)
			}
		})
	}
	long := ErrorText([]byte(strings.Repeat("é", 1000)))
	if len(long) > MaxErrorText+len("…") || !strings.HasSuffix(long, "…") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("long body: %d bytes %q", len(long), long[len(long)-10:])
	}
}
