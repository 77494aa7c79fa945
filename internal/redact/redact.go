// Package redact removes credentials from URLs and from text that quotes URLs (an HTTP
// client's errors name the full URL they failed on), before canaryd prints, logs or
// stores them.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Secret is what a removed credential shows as.
const Secret = "<secret>"

// secretParams are query parameter names (lower case, '-' as '_') whose values are
// credentials; a name that contains one of them counts too (dd_api_key, x_auth_token).
var secretParams = []string{
	"token", "secret", "password", "passwd", "pwd", "api_key", "apikey", "app_key", "application_key",
	"access_key", "private_key", "signature", "sig", "auth", "credential", "session",
}

func secretParam(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	for _, s := range secretParams {
		if strings.Contains(n, s) {
			return true
		}
	}
	// Exact short names: InfluxDB 1.x takes its password as p (and its user as u).
	return n == "key" || n == "p"
}

// URL returns raw without its userinfo ("http://admin:pw@host" → "http://<secret>@host")
// and with the values of credential-like query parameters replaced by <secret>. Text
// that is not an absolute URL comes back as it is.
func URL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return raw
	}
	// The authority ends at the first '/', '?' or '#'; userinfo is what precedes its
	// last '@' (a password may hold an unescaped '@').
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = Secret + authority[at:]
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if hasQuery {
		q, frag, hasFrag := strings.Cut(query, "#")
		parts := strings.Split(q, "&")
		for i, p := range parts {
			k, _, hasValue := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && secretParam(name) {
				parts[i] = k + "=" + Secret
			}
		}
		query = strings.Join(parts, "&")
		if hasFrag {
			query += "#" + frag
		}
		path += "?" + query
	}
	return scheme + "://" + authority + path
}

// urlInText finds absolute URLs in free text, up to a space, a quote or an angle bracket
// (how error messages delimit them).
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// Text redacts every URL in s.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, URL)
}

// Error returns err with its message redacted by Text; errors.Is and errors.As still
// see the original. Nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	var r *redacted
	if errors.As(err, &r) && r.msg == Text(err.Error()) {
		return err
	}
	return &redacted{err: err, msg: Text(err.Error())}
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
