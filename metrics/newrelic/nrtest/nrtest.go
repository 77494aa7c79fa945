// Package nrtest serves a loopback NerdGraph (New Relic's GraphQL API) for the newrelic
// provider's tests and the daemon's process tests. It is imported only from _test.go
// files; it never talks to anything but loopback.
package nrtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const (
	// Key is the User API key the server takes until SetKey changes it.
	Key = "NRAK-CANARYDTESTS3CRET"
	// Account is the only account it serves.
	Account = 1234567
)

// Server is a running loopback NerdGraph; its endpoint is URL + "/graphql".
type Server struct {
	URL string

	mu   sync.Mutex
	key  string
	seen []string
}

// Answer gives what an NRQL query (as sent: with SINCE, UNTIL and TIMESERIES) gets: a
// JSON list of results, a whole answer (starting {"errors" or {"data"), or "HTTP <code> |
// <body>" for a failure with an HTML body.
type Answer func(nrql string) string

// Start serves NerdGraph until the test ends. Its answers follow New Relic's documents:
//   - "NerdGraph tutorial: Make NRQL queries" (docs.newrelic.com/docs/apis/nerdgraph/
//     examples/nerdgraph-nrql-tutorial): POST /graphql with the API-Key header, a query
//     whose actor.account(id).nrql(query) has the field results, a JSON list;
//   - "NRQL syntax, clauses, and functions" (TIMESERIES): with TIMESERIES each result is one
//     bucket with beginTimeSeconds, endTimeSeconds and one key per aggregate (count,
//     average.duration; percentile.duration is an object of percentiles), with FACET a
//     "facet" key and the faceted attribute's own key;
//   - "NerdGraph: Errors" (docs.newrelic.com/docs/apis/nerdgraph/get-started/nerdgraph-
//     error-handling): a query error is HTTP 200 with "errors": [{"message", "path",
//     "extensions"}] and a null field in "data".
func Start(t testing.TB, answer Answer) *Server {
	t.Helper()
	s := &Server{key: Key}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/graphql" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		s.mu.Lock()
		key := s.key
		s.mu.Unlock()
		if r.Header.Get("API-Key") != key {
			// NerdGraph refuses a bad key before running anything.
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"message":"Invalid credentials","extensions":{"errorClass":"UNAUTHENTICATED"}}]}`))
			return
		}
		var req struct {
			Query     string `json:"query"`
			Variables struct {
				AccountID int64  `json:"accountId"`
				NRQL      string `json:"nrql"`
				Timeout   int    `json:"timeout"`
			} `json:"variables"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.Contains(req.Query, "nrql(query: $nrql, timeout: $timeout) { results }") || req.Variables.AccountID != Account {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"errors":[{"message":"unexpected request %q (%v)"}]}`, req.Query, err)
			return
		}
		s.mu.Lock()
		s.seen = append(s.seen, req.Variables.NRQL)
		s.mu.Unlock()
		a := answer(req.Variables.NRQL)
		switch {
		case strings.HasPrefix(a, "HTTP "):
			var code int
			_, _ = fmt.Sscanf(a, "HTTP %d", &code)
			_, body, _ := strings.Cut(a, " | ")
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		case strings.HasPrefix(a, `{"errors"`), strings.HasPrefix(a, `{"data"`):
			_, _ = w.Write([]byte(a))
		default:
			fmt.Fprintf(w, `{"data":{"actor":{"account":{"nrql":{"results":%s}}}}}`, a)
		}
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Prefixes answers an NRQL with the answer of the first key it starts with (keys are
// tried longest first), and an empty result list when none matches.
func Prefixes(answers map[string]string) Answer {
	return func(nrql string) string {
		best := ""
		for prefix := range answers {
			if strings.HasPrefix(nrql, prefix) && len(prefix) > len(best) {
				best = prefix
			}
		}
		if best == "" {
			return "[]"
		}
		return answers[best]
	}
}

// SetKey makes the server take key instead (a rotated key: the old one is refused).
func (s *Server) SetKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// Seen is every NRQL received, in order.
func (s *Server) Seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}
