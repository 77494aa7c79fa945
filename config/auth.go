package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Roles a token may hold: read (GET), register (create canaries), operate (abort,
// promote, approve, reject, reload).
const (
	RoleRead     = "read"
	RoleRegister = "register"
	RoleOperate  = "operate"
)

// Auth is `server.auth`: the API's tokens. The file holds no raw token: each one is
// given as its SHA-256 (`canaryd hash-token` prints it) or read at load time from an
// environment variable or a file, and only its hash is kept in memory.
type Auth struct {
	Tokens []Token `yaml:"tokens"`
	// OpenEndpoints are served without a token: any of healthz, readyz, metrics. Nil
	// (the key left out) means all three; [] closes them.
	OpenEndpoints *[]string `yaml:"open_endpoints,omitempty"`
	// RouteTokens name, per integration whose client cannot send headers (flagger), the
	// token its routes act as when a request presents none: for a canaryd only that
	// client can reach, so that no token sits in the client's own objects.
	RouteTokens map[string]string `yaml:"route_tokens,omitempty"`
}

// RouteTokenIntegrations are the keys server.auth.route_tokens takes.
var RouteTokenIntegrations = []string{"flagger", "kayenta"}

// RouteToken is the token named for an integration's routes in route_tokens, or nil.
func (a *Auth) RouteToken(integration string) *Token {
	if a == nil {
		return nil
	}
	name, ok := a.RouteTokens[integration]
	if !ok {
		return nil
	}
	for i := range a.Tokens {
		if a.Tokens[i].Name == name {
			return &a.Tokens[i]
		}
	}
	return nil
}

// Token is one API client.
type Token struct {
	// Name is who the client is: the "who" of the audit log.
	Name  string   `yaml:"name"`
	Roles []string `yaml:"roles"`
	// Exactly one of SHA256, Env and File gives the token.
	SHA256 string `yaml:"sha256,omitempty"`
	Env    string `yaml:"env,omitempty"`
	File   string `yaml:"file,omitempty"`
	// Hash is the token's SHA-256, resolved by validation.
	Hash [32]byte `yaml:"-"`
}

// TLS is `server.tls`.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Open reports whether an operational endpoint is served without a token.
func (a *Auth) Open(endpoint string) bool {
	if a == nil || a.OpenEndpoints == nil {
		return true
	}
	for _, e := range *a.OpenEndpoints {
		if e == endpoint {
			return true
		}
	}
	return false
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// minTokenLen keeps guessable tokens out: 16 bytes of randomness, hex or base64.
const minTokenLen = 24

// HashToken is the SHA-256 of a raw token, as the config's sha256 holds it.
func HashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

func (a *Auth) validate(path string, errs *Errors) {
	if len(a.Tokens) == 0 {
		errs.Add(join(path, "tokens"), "at least one token (leave auth out to run without authentication)")
	}
	names := map[string]bool{}
	hashes := map[[32]byte]string{}
	for i := range a.Tokens {
		t := &a.Tokens[i]
		tp := index(join(path, "tokens"), i)
		if !nameRe.MatchString(t.Name) {
			errs.Add(join(tp, "name"), "must match %s", nameRe)
		} else if names[t.Name] {
			errs.Add(join(tp, "name"), "%q defined twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Roles) == 0 {
			errs.Add(join(tp, "roles"), "at least one of read, register, operate")
		}
		for j, r := range t.Roles {
			if r != RoleRead && r != RoleRegister && r != RoleOperate {
				errs.Add(index(join(tp, "roles"), j), "unknown role %q, want read, register or operate", r)
			}
		}
		given := 0
		for _, v := range []string{t.SHA256, t.Env, t.File} {
			if v != "" {
				given++
			}
		}
		if given != 1 {
			errs.Add(tp, "exactly one of sha256, env and file")
			continue
		}
		var raw string
		switch {
		case t.SHA256 != "":
			if !sha256Re.MatchString(t.SHA256) {
				errs.Add(join(tp, "sha256"), "must be 64 lowercase hex digits (canaryd hash-token prints it)")
				continue
			}
			b, _ := hex.DecodeString(t.SHA256)
			copy(t.Hash[:], b)
		case t.Env != "":
			raw = os.Getenv(t.Env)
			if raw == "" {
				errs.Add(join(tp, "env"), "environment variable %s is empty or unset", t.Env)
				continue
			}
		default:
			b, err := os.ReadFile(t.File)
			if err != nil {
				errs.Add(join(tp, "file"), "%v", err)
				continue
			}
			raw = strings.TrimSpace(string(b))
		}
		if raw != "" {
			if len(raw) < minTokenLen {
				errs.Add(tp, "the token is shorter than %d characters", minTokenLen)
				continue
			}
			t.Hash = sha256.Sum256([]byte(raw))
		}
		if other, dup := hashes[t.Hash]; dup {
			errs.Add(tp, "same token as %q: each client needs its own", other)
		}
		hashes[t.Hash] = t.Name
	}
	if a.OpenEndpoints != nil {
		for i, e := range *a.OpenEndpoints {
			if e != "healthz" && e != "readyz" && e != "metrics" {
				errs.Add(index(join(path, "open_endpoints"), i), "unknown endpoint %q, want healthz, readyz or metrics", e)
			}
		}
	}
	for _, k := range sortedKeys(a.RouteTokens) {
		p := join(join(path, "route_tokens"), k)
		if !slices.Contains(RouteTokenIntegrations, k) {
			errs.Add(p, "unknown integration %q, want one of %v", k, RouteTokenIntegrations)
		} else if !names[a.RouteTokens[k]] {
			errs.Add(p, "no token named %q in tokens", a.RouteTokens[k])
		}
	}
}

func (t *TLS) validate(path string, errs *Errors) {
	for _, f := range []struct{ key, path string }{{"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.path == "" {
			errs.Add(join(path, f.key), "required")
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs.Add(join(path, f.key), "%v", err)
		}
	}
}

// String hides the hash from logs.
func (t Token) String() string { return fmt.Sprintf("token %s %v", t.Name, t.Roles) }
