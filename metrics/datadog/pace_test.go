package datadog

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/canaryd/canaryd/internal/testutil"
)

// budgetDatadog is a loopback Datadog that enforces a rate limit the way Datadog
// documents it (https://docs.datadoghq.com/api/latest/rate-limits): calendar-aligned
// periods of Period seconds allowing Limit requests, every answer carrying
// X-RateLimit-Limit, -Period, -Remaining, -Reset (seconds to the period's end) and
// -Name, and a 429 with {"errors": ["Rate limit of … reached …"]} (testdata/
// rate_limited.json, as Datadog words it) once none is left. Its clock is the test's.
// GET /api/v1/query answers testdata/two_series.json; GET /api/v1/validate answers
// {"valid": true}, or 403 {"errors": ["Forbidden"]} for a wrong API key, as documented at
// https://docs.datadoghq.com/api/latest/authentication/#validate-api-key.
type budgetDatadog struct {
	t      *testing.T
	srv    *httptest.Server
	clock  func() time.Time
	limit  int
	period time.Duration

	mu       sync.Mutex
	window   time.Time // start of the current period
	used     int
	sent     int // requests answered 2xx
	limited  int // requests answered 429
	apiKey   string
	appKey   string
	keysSeen []string // the API keys requests carried, in order
	v2Bodies []string // the bodies of POST /api/v2/query/timeseries
	// evaluate, when set, answers from the queries asked (evaluated.go) instead of the
	// fixtures.
	evaluate bool
	alike    bool // evaluate: both cohorts' points the same
	queries  int  // the metric queries the 2xx answers carried (evaluate only)
	// v2Fixture, when set, is the V2 answer's file instead of v2_two_series.json.
	v2Fixture string
}

func readAll(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func newBudgetDatadog(t *testing.T, clock func() time.Time, limit int, period time.Duration) *budgetDatadog {
	b := &budgetDatadog{t: t, clock: clock, limit: limit, period: period, apiKey: testAPIKey, appKey: testAppKey}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

// use spends n requests of the current period, as another client of the organisation.
func (b *budgetDatadog) use(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	b.used += n
}

func (b *budgetDatadog) roll() {
	now := b.clock()
	w := now.Truncate(b.period) // calendar aligned
	if !w.Equal(b.window) {
		b.window, b.used = w, 0
	}
}

func (b *budgetDatadog) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keysSeen = append(b.keysSeen, r.Header.Get("DD-API-KEY"))
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/api/v1/validate" {
		if r.Header.Get("DD-API-KEY") != b.apiKey {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors": ["Forbidden"]}`))
			return
		}
		_, _ = w.Write([]byte(`{"valid": true}`))
		return
	}
	if r.URL.Path == "/api/v2/query/timeseries" && r.Method == http.MethodPost {
		b.v2Bodies = append(b.v2Bodies, strings.TrimSpace(readAll(r)))
	} else if r.URL.Path != "/api/v1/query" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors": ["Not found"]}`))
		return
	}
	if r.Header.Get("DD-API-KEY") != b.apiKey || r.Header.Get("DD-APPLICATION-KEY") != b.appKey {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors": ["Forbidden"]}`))
		return
	}
	b.roll()
	body := "two_series.json"
	if r.URL.Path == "/api/v2/query/timeseries" {
		body = "v2_two_series.json"
		if b.v2Fixture != "" {
			body = b.v2Fixture
		}
	}
	status := http.StatusOK
	if b.used >= b.limit {
		status, body = http.StatusTooManyRequests, "rate_limited.json"
		b.limited++
	} else {
		b.used++
		b.sent++
	}
	reset := b.window.Add(b.period).Sub(b.clock())
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("X-RateLimit-Period", strconv.Itoa(int(b.period/time.Second)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(b.limit-b.used))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int((reset+time.Second-1)/time.Second)))
	h.Set("X-RateLimit-Name", "metrics_query")
	if b.evaluate && status == http.StatusOK {
		data, n, err := evaluated(r, b.v2Bodies, b.alike)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors": [` + strconv.Quote(err.Error()) + `]}`))
			return
		}
		b.queries += n
		w.WriteHeader(status)
		_, _ = w.Write(data)
		return
	}
	data, err := os.ReadFile(filepath.Join("testdata", body))
	if err != nil {
		b.t.Errorf("fixture: %v", err)
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (b *budgetDatadog) counts() (sent, limited int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent, b.limited
}

// newBudgetProvider is a Provider on b whose waits move the clock b reads.
func newBudgetProvider(t *testing.T, b *budgetDatadog, s *sleeps, mutate func(*Config), opts ...Option) *Provider {
	t.Helper()
	setKeys(t)
	cfg := testConfig(b.srv.URL)
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg, zap.NewNop(), append([]Option{WithSleep(s.sleep), WithClock(s.clock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 18 item 7: the provider reads the headers and paces its queries on what is
// left, so a steady stream of queries never meets a 429: 30 queries against a budget of
// 10 a minute take three periods and are all answered.
func TestPacingSpreadsTheBudget(t *testing.T) {
	s := &sleeps{}
	b := newBudgetDatadog(t, s.clock, 10, time.Minute)
	p := newBudgetProvider(t, b, s, nil)
	start := s.clock()
	for i := range 30 {
		if _, err := p.Query(t.Context(), testQuery()); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	sent, limited := b.counts()
	if sent != 30 || limited != 0 {
		t.Errorf("%d answered, %d rate limited; want 30 and 0", sent, limited)
	}
	// Three periods' worth of budget: the last query is in the third minute.
	if took := s.clock().Sub(start); took < 2*time.Minute || took > 3*time.Minute {
		t.Errorf("30 queries took %s of the clock, want between 2m and 3m", took)
	}
	// Spread, not bunched: no wait is longer than a period.
	for i, d := range s.all() {
		if d > time.Minute {
			t.Errorf("wait %d is %s", i, d)
		}
	}
}

// A budget another client used up: the 429's reset (385 s, a realistic one) is waited
// for once, then the query is answered, and the next query goes at once.
func TestPacingWaitsForTheReset(t *testing.T) {
	s := &sleeps{}
	s.now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(3600*time.Second - 385*time.Second)
	b := newBudgetDatadog(t, s.clock, 1600, time.Hour)
	b.use(1600)
	p := newBudgetProvider(t, b, s, nil)
	if _, err := p.Query(t.Context(), testQuery()); err != nil {
		t.Fatal(err)
	}
	if waits := s.all(); len(waits) != 1 || waits[0] != 385*time.Second {
		t.Errorf("waits %v, want one of 6m25s", waits)
	}
	if sent, limited := b.counts(); sent != 1 || limited != 1 {
		t.Errorf("%d answered, %d rate limited; want 1 and 1", sent, limited)
	}
	if _, err := p.Query(t.Context(), testQuery()); err != nil {
		t.Fatal(err)
	}
	if waits := s.all(); len(waits) != 1 {
		t.Errorf("waits %v, want none more: the new period's budget has room", waits)
	}
}

// The wait is bounded: by max_rate_limit_wait (the query fails at once, saying so), by
// the query's deadline (it fails at once rather than sleep past it), and by ctx (a
// cancelled wait ends the query).
func TestPacingBounds(t *testing.T) {
	exhausted := func(t *testing.T, mutate func(*Config)) (*Provider, *sleeps, *budgetDatadog) {
		s := &sleeps{}
		s.now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(3600*time.Second - 385*time.Second)
		b := newBudgetDatadog(t, s.clock, 1600, time.Hour)
		b.use(1600)
		return newBudgetProvider(t, b, s, mutate), s, b
	}
	t.Run("max_rate_limit_wait", func(t *testing.T) {
		p, s, b := exhausted(t, func(c *Config) { c.MaxRateLimitWait = 5 * time.Minute })
		_, err := p.Query(t.Context(), testQuery())
		want := "datadog: rate limited: HTTP 429: Rate limit of 1600 requests in 3600 seconds reached. Please try again later. (resets in 6m25s, longer than max_rate_limit_wait, 5m0s)"
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant %s", err, want)
		}
		if len(s.all()) != 0 {
			t.Errorf("waited %v", s.all())
		}
		// The next query does not knock again: it fails before sending anything.
		_, err = p.Query(t.Context(), testQuery())
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Why != "max_rate_limit_wait" || !strings.Contains(err.Error(), "room in 6m25s, longer than max_rate_limit_wait (5m0s)") {
			t.Errorf("second query: %v", err)
		}
		if _, limited := b.counts(); limited != 1 {
			t.Errorf("%d requests answered 429, want 1", limited)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		p, s, _ := exhausted(t, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := p.Query(ctx, testQuery())
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Why != "the query's deadline" || len(s.all()) != 0 {
			t.Errorf("error %v, waits %v; want a RateLimitError on the deadline and no wait", err, s.all())
		}
		// Pace, which the scheduler calls outside the query's timeout, waits it out.
		if err := p.Pace(t.Context()); err != nil {
			t.Fatal(err)
		}
		if w := s.all(); len(w) != 1 || w[0] != 385*time.Second {
			t.Errorf("Pace waited %v, want 6m25s", w)
		}
		if _, err := p.Query(ctx, testQuery()); err != nil {
			t.Errorf("after Pace: %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		p, _, _ := exhausted(t, nil)
		_, _ = p.Query(context.Background(), testQuery()) // learns of the budget (and waits)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		p.pace.exhausted(time.Minute, p.now())
		if err := p.Pace(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Pace on a cancelled context: %v", err)
		}
	})
}

// Pace takes no slot: many canaries waiting on it leave the budget to their queries.
func TestPaceTakesNoSlot(t *testing.T) {
	var pc pacer
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pc.observe(rateHeaders{limit: 10, period: time.Minute, remaining: 2, reset: 20 * time.Second, ok: true}, now)
	for range 5 {
		if got := pc.reserve(now, false); !got.Equal(now) {
			t.Fatalf("look: %s", got.Sub(now))
		}
	}
	// 2 left of 10 a minute, 20 s to the reset: above the reserve (1) at once; the last
	// one before the reset is spread over the 20 s; then a new period, at once again.
	for i, want := range []time.Duration{0, 0, 20 * time.Second, 20 * time.Second} {
		if got := pc.reserve(now, true).Sub(now); got != want {
			t.Errorf("slot %d at +%s, want +%s", i, got, want)
		}
	}
}

// Issue 18 item 9: keys from files, read again when the file changes (a rotated
// secret), never logged.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	apiFile, appFile := filepath.Join(dir, "api"), filepath.Join(dir, "app")
	t0 := time.Now().Add(-time.Hour)
	testutil.WriteSecret(t, apiFile, testAPIKey+"\n", t0)
	testutil.WriteSecret(t, appFile, "  "+testAppKey+"\n", t0)
	s := &sleeps{}
	b := newBudgetDatadog(t, s.clock, 1000, time.Minute)
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := testConfig(b.srv.URL)
	cfg.APIKeyEnv, cfg.AppKeyEnv = "CANARYD_TEST_DD_UNSET_API", "CANARYD_TEST_DD_UNSET_APP" // the files win
	cfg.APIKeyFile, cfg.AppKeyFile = apiFile, appFile
	p, err := New(cfg, zap.New(core), WithSleep(s.sleep), WithClock(s.clock))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(t.Context(), testQuery()); err != nil {
		t.Fatalf("query with the keys from files: %v", err)
	}
	if err := p.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// Rotation: the server now wants new keys, the files get them.
	const newAPI, newApp = "11112222333344445555666677778888", "aaaabbbbccccddddeeeeffff0000111122223333"
	b.mu.Lock()
	b.apiKey, b.appKey = newAPI, newApp
	b.mu.Unlock()
	if _, err := p.Query(t.Context(), testQuery()); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("old keys after the server rotated: %v", err)
	}
	testutil.WriteSecret(t, apiFile, newAPI, t0.Add(time.Minute))
	testutil.WriteSecret(t, appFile, newApp, t0.Add(time.Minute))
	if _, err := p.Query(t.Context(), testQuery()); err != nil {
		t.Errorf("query after the files were rotated: %v", err)
	}
	// A file emptied mid-rotation keeps the last key.
	testutil.WriteSecret(t, apiFile, "", t0.Add(2*time.Minute))
	if _, err := p.Query(t.Context(), testQuery()); err != nil {
		t.Errorf("query with an emptied key file: %v", err)
	}
	for _, e := range logs.All() {
		text := e.Message
		for _, f := range e.Context {
			text += " " + f.String + " " + f.Key
			if err, ok := f.Interface.(error); ok {
				text += " " + err.Error()
			}
		}
		for _, k := range []string{testAPIKey, testAppKey, newAPI, newApp} {
			if strings.Contains(text, k) {
				t.Errorf("a key is in the log: %q", text)
			}
		}
	}
	if logs.FilterMessage("secret file unreadable; the last secret read stays in use").Len() == 0 {
		t.Error("the emptied file was not logged")
	}

	for _, tc := range []struct {
		name, content, want string
	}{
		{"missing", "", "datadog: API key: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"empty", " \n", "datadog: API key: " + filepath.Join(dir, "empty") + " is empty"},
		{"two words", "abc def", "datadog: API key: " + filepath.Join(dir, "two words") + " holds more than one word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.content != "" {
				testutil.WriteSecret(t, path, tc.content, t0)
			}
			c := cfg
			c.APIKeyFile = path
			_, err := New(c, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Issue 18 item 9: the startup check is Datadog's GET /api/v1/validate, with the API key
// only; a refused key is an error naming where the key came from, never the key.
func TestPing(t *testing.T) {
	s := &sleeps{}
	b := newBudgetDatadog(t, s.clock, 1000, time.Minute)
	p := newBudgetProvider(t, b, s, nil)
	if err := p.Ping(t.Context()); err != nil {
		t.Fatalf("valid key: %v", err)
	}
	b.mu.Lock()
	b.apiKey = "another"
	b.mu.Unlock()
	err := p.Ping(t.Context())
	want := "datadog: " + b.srv.URL + " refused the API key from $" + testAPIKeyEnv + " (GET /api/v1/validate: HTTP 403: Forbidden)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), testAPIKey) {
		t.Error("the key is in the error")
	}
	var refused *KeyRefusedError
	if !errors.As(err, &refused) || refused.Source != "$"+testAPIKeyEnv {
		t.Errorf("a refused key is not a KeyRefusedError from $%s: %#v", testAPIKeyEnv, err)
	}
	b.srv.Close()
	err = p.Ping(t.Context())
	if err == nil || !strings.Contains(err.Error(), "datadog: GET /api/v1/validate: ") {
		t.Errorf("server down: %v", err)
	}
	if errors.As(err, &refused) {
		t.Errorf("a network error is a refusal: %v", err)
	}
}

// Issue 18 item 8: a query written as JSON (queries and formulas), or any query with
// query_api: v2, goes to POST /api/v2/query/timeseries, the step as its interval, through
// the same pacing and retries; the answer (shaped as the documented
// TimeseriesFormulaQueryResponse, testdata/v2_two_series.json) becomes streams labelled
// by group_tags.
func TestQueryV2(t *testing.T) {
	for _, tc := range []struct {
		name, api, text, wantBody string
	}{
		{"JSON query on a v1 provider", "v1",
			`{"queries": [{"data_source": "metrics", "name": "e", "query": "sum:trace.http.request.errors{service:checkout,track:canary} by {host}.as_count()"}, {"data_source": "metrics", "name": "h", "query": "sum:trace.http.request.hits{service:checkout,track:canary} by {host}.as_count()"}], "formulas": [{"formula": "e / h"}]}`,
			`{"data":{"type":"timeseries_request","attributes":{"from":1700000000000,"to":1700000180999,"interval":60000,"queries":[{"data_source":"metrics","name":"e","query":"sum:trace.http.request.errors{service:checkout,track:canary} by {host}.as_count()"},{"data_source":"metrics","name":"h","query":"sum:trace.http.request.hits{service:checkout,track:canary} by {host}.as_count()"}],"formulas":[{"formula":"e / h"}]}}}`},
		{"plain query with query_api v2", "v2",
			"avg:trace.http.request.duration{service:checkout,track:canary} by {host}",
			`{"data":{"type":"timeseries_request","attributes":{"from":1700000000000,"to":1700000180999,"interval":60000,"queries":[{"data_source":"metrics","name":"q","query":"avg:trace.http.request.duration{service:checkout,track:canary} by {host}"}]}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sleeps{}
			b := newBudgetDatadog(t, s.clock, 100, time.Minute)
			p := newBudgetProvider(t, b, s, func(c *Config) { c.QueryAPI = tc.api })
			q := testQuery()
			q.Text = tc.text
			got, err := p.Query(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.v2Bodies) != 1 || b.v2Bodies[0] != tc.wantBody {
				t.Errorf("bodies %q\nwant %s", b.v2Bodies, tc.wantBody)
			}
			if len(got.Streams) != 2 || got.Streams[1].Labels["host"] != "web-2" || len(got.Streams[1].Points) != 3 || got.Streams[1].Points[2].V != 1 {
				t.Errorf("streams %+v", got.Streams)
			}
			if len(got.Warnings) != 0 {
				t.Errorf("warnings %v (V2 takes the step: no rollup warning)", got.Warnings)
			}
		})
	}
	t.Run("bad JSON query is a bad query, not sent", func(t *testing.T) {
		s := &sleeps{}
		b := newBudgetDatadog(t, s.clock, 100, time.Minute)
		p := newBudgetProvider(t, b, s, nil)
		q := testQuery()
		q.Text = `{"query": "avg:x{*}"}`
		if _, err := p.Query(t.Context(), q); err == nil || !strings.Contains(err.Error(), `datadog: bad query: V2 query: json: unknown field "query"`) {
			t.Errorf("error %v", err)
		}
		if len(b.v2Bodies) != 0 {
			t.Errorf("sent %q", b.v2Bodies)
		}
	})
	t.Run("429 on V2 is paced like V1", func(t *testing.T) {
		s := &sleeps{}
		s.now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(50 * time.Second)
		b := newBudgetDatadog(t, s.clock, 100, time.Minute)
		b.use(100)
		p := newBudgetProvider(t, b, s, func(c *Config) { c.QueryAPI = "v2" })
		if _, err := p.Query(t.Context(), testQuery()); err != nil {
			t.Fatal(err)
		}
		if w := s.all(); len(w) != 1 || w[0] != 10*time.Second {
			t.Errorf("waits %v, want the 10 s to the reset", w)
		}
	})
}

// The issue 18 load shape, simulated on the test's clock against a loopback Datadog that
// enforces 1,600 queries an hour with Datadog's headers: 20 canaries × 3 metrics × 2
// cohorts due every interval, served in the order they are due, for an hour. The
// pacer never lets a query meet a 429 (after the first answer taught it the budget) and
// never sends more than the budget; whether the lag stays bounded depends on the demand:
// at 5-minute intervals (1,440 an hour) each burst is answered at once, at 1-minute
// intervals (7,200 an hour, 4.5× the budget) no pacing can keep up and the lag grows. The figures are logged
// (go test -run TestPacingAtVolume -v ./metrics/datadog/) and in benchmarks/RESULTS.md.
func TestPacingAtVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of loopback requests")
	}
	for _, tc := range []struct {
		interval time.Duration
		bounded  bool
	}{{5 * time.Minute, true}, {time.Minute, false}} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			s := &sleeps{}
			start := s.clock()
			b := newBudgetDatadog(t, s.clock, 1600, time.Hour)
			p := newBudgetProvider(t, b, s, func(c *Config) { c.MaxRateLimitWait = 24 * time.Hour })
			const perInterval = 20 * 3 * 2
			var maxLag, lastLag time.Duration
			queries := 0
			for due := start; due.Before(start.Add(time.Hour)); due = due.Add(tc.interval) {
				for range perInterval {
					s.mu.Lock()
					if s.now.Before(due) {
						s.now = due // idle until the query is due
					}
					s.mu.Unlock()
					if _, err := p.Query(t.Context(), testQuery()); err != nil {
						t.Fatalf("query %d: %v", queries, err)
					}
					queries++
					lastLag = s.clock().Sub(due)
					maxLag = max(maxLag, lastLag)
				}
			}
			sent, limited := b.counts()
			elapsed := s.clock().Sub(start)
			// The fake refuses anything over the budget (a 429), so no 429 is also
			// "never more than 1,600 in a calendar hour".
			t.Logf("interval %s: %d queries due over 1h, %d answered within %s of clock, %d answered 429, interval lag max %s, at the end %s",
				tc.interval, queries, sent, elapsed.Round(time.Minute), limited, maxLag.Round(time.Second), lastLag.Round(time.Second))
			if limited > 0 {
				t.Errorf("%d queries met a 429", limited)
			}
			if tc.bounded && maxLag > time.Minute {
				t.Errorf("lag %s at a demand under the budget", maxLag)
			}
		})
	}
}
