// Package sameorigin refuses cross-site requests that would change something: a page on
// another site can make a browser send a POST with the credentials it holds for canaryd
// (Basic auth, which the pages use), and a body-less abort needs nothing else. It reads
// the headers browsers add (Sec-Fetch-Site, Origin); clients that send neither (curl,
// pipelines, Argo, the canaryd CLI) are not browsers and pass. It never authenticates:
// that is package auth's job.
package sameorigin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// Policy checks mutating requests; Set swaps the trusted origins on a config reload.
type Policy struct {
	trusted atomic.Pointer[map[string]bool]
}

// New returns a Policy that also lets these origins (scheme://host[:port]) through.
func New(trusted []string) *Policy {
	p := &Policy{}
	p.Set(trusted)
	return p
}

// Set installs the trusted origins of a (re)loaded config.
func (p *Policy) Set(trusted []string) {
	m := make(map[string]bool, len(trusted))
	for _, o := range trusted {
		if n, err := Normalize(o); err == nil {
			m[n] = true
		}
	}
	p.trusted.Store(&m)
}

// Normalize checks an origin as the config gives it and returns it as browsers send it:
// lower case, no trailing slash, no default port.
func Normalize(origin string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(origin, "/"))
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: the scheme must be http or https", origin)
	}
	if u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: an origin is scheme://host[:port], nothing more", origin)
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.ToLower(u.Hostname())
	}
	return u.Scheme + "://" + host, nil
}

// safe methods change nothing, so a cross-site page gains nothing by sending them.
func safe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// Wrap refuses, with a 403 and a JSON error, a mutating request that a browser sent from
// another site: Sec-Fetch-Site other than same-origin or none, or, from a browser that
// does not send it, an Origin whose host is not the host the request was sent to; unless
// the Origin is trusted.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safe(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if why := p.refusal(r); why != "" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Vary", "Origin, Sec-Fetch-Site")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "cross-origin request refused: " + why})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Policy) refusal(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if n, err := Normalize(origin); err == nil && (*p.trusted.Load())[n] {
			return ""
		}
	}
	// A browser that sends Sec-Fetch-Site says where the request comes from, and a page
	// cannot change it; it is the better witness (a page whose referrer policy is
	// no-referrer sends "Origin: null" with its own forms).
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return ""
	case "":
	default:
		return fmt.Sprintf("the browser says it comes from a %s page (Sec-Fetch-Site); list its origin in server.trusted_origins if it is yours", sanitize(site))
	}
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Sprintf("Origin %q is not this server (%s); list it in server.trusted_origins if it is yours", sanitize(origin), sanitize(r.Host))
	}
	return ""
}

// sanitize keeps a header value printable and short for the error.
func sanitize(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
