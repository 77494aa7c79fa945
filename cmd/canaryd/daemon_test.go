package main

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/config"
)

// A reload keeps what the listener, store and handler were built with, and applies the
// tokens and registration limits of the new file.
func TestKeepRestartOnly(t *testing.T) {
	cur := config.DefaultServer()
	cur.TLS = &config.TLS{CertFile: "a.crt", KeyFile: "a.key"}
	tokens := &config.Auth{Tokens: []config.Token{{Name: "ci"}}}
	cases := []struct {
		name    string
		edit    func(s *config.Server)
		changed bool
	}{
		{"same", func(s *config.Server) {}, false},
		{"limits and tokens only", func(s *config.Server) {
			s.MaxRunningPerAnalysis, s.MaxLifetime, s.Auth = 7, model.Duration(time.Hour), tokens
		}, false},
		{"listen", func(s *config.Server) { s.Listen = "0.0.0.0:9" }, true},
		{"storage", func(s *config.Server) { s.Storage = "other.db" }, true},
		{"body cap", func(s *config.Server) { s.MaxBodyBytes = 2048 }, true},
		{"tls removed", func(s *config.Server) { s.TLS = nil }, true},
		{"tls file", func(s *config.Server) { s.TLS = &config.TLS{CertFile: "b.crt", KeyFile: "a.key"} }, true},
		{"tls equal copy", func(s *config.Server) { s.TLS = &config.TLS{CertFile: "a.crt", KeyFile: "a.key"} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := cur
			tc.edit(&next)
			want := next
			if got := keepRestartOnly(&next, cur); got != tc.changed {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			if next.Listen != cur.Listen || next.Storage != cur.Storage || next.MaxBodyBytes != cur.MaxBodyBytes || next.TLS != cur.TLS {
				t.Errorf("restart-only settings not kept: %+v", next)
			}
			if next.Auth != want.Auth || next.MaxRunningPerAnalysis != want.MaxRunningPerAnalysis || next.MaxLifetime != want.MaxLifetime {
				t.Errorf("reloadable settings not applied: %+v, want %+v", next, want)
			}
		})
	}
}

// /readyz is not ready while actions wait for the store to accept their outcome: a
// restart then would fire them again.
func TestReadiness(t *testing.T) {
	cases := []struct {
		name    string
		serving bool
		pending int
		store   error
		want    string
	}{
		{"serving", true, 0, nil, ""},
		{"starting", false, 0, nil, "not ready: starting or shutting down"},
		{"outcomes pending", true, 2, nil, "not ready: 2 action outcomes not yet written to the store (retrying)"},
		{"store lost", true, 0, errors.New("not ready: the store (PostgreSQL) does not answer; the log says why"), "not ready: the store (PostgreSQL) does not answer; the log says why"},
		{"store lost while starting", false, 0, errors.New("lost"), "not ready: starting or shutting down"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ""
			if err := readiness(c.serving, c.pending, c.store); err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("readiness(%v, %d) = %q, want %q", c.serving, c.pending, got, c.want)
			}
		})
	}
}
