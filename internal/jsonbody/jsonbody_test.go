package jsonbody

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int // 0: read
		msg                     string
	}{
		{name: "json", contentType: "application/json; charset=utf-8", body: `{"a":1}`},
		{name: "no content type", body: `{"a":1}`},
		{name: "another media type", contentType: "text/plain", body: `{}`, status: 415, msg: "Content-Type must be application/json"},
		{name: "a bad media type", contentType: "application/json;;", body: `{}`, status: 415, msg: "Content-Type must be application/json"},
		{name: "too large", body: `{"a":"` + strings.Repeat("x", 20) + `"}`, status: 413, msg: "the body is larger than 16 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			data, err := Read(httptest.NewRecorder(), r, 16)
			switch {
			case tc.status == 0 && (err != nil || string(data) != tc.body):
				t.Errorf("Read = %q, %v; want %q", data, err, tc.body)
			case tc.status != 0 && (err == nil || err.Status != tc.status || err.Msg != tc.msg):
				t.Errorf("Read error %+v, want %d %q", err, tc.status, tc.msg)
			}
		})
	}
}
