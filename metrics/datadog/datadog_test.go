package datadog

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/metrics"
)

// The keys the fake server expects, and the variables that carry them in these tests.
const (
	testAPIKeyEnv = "CANARYD_TEST_DD_API_KEY"
	testAppKeyEnv = "CANARYD_TEST_DD_APP_KEY"
	testAPIKey    = "0123456789abcdef0123456789abcdef"
	testAppKey    = "fedcba9876543210fedcba9876543210fedcba98"
)

// reply is one canned answer of the fake Datadog.
type reply struct {
	status  int
	headers map[string]string
	file    string // body from testdata/
	body    string // or inline body
	hangup  bool   // close the connection without answering (a network error)
	cut     bool   // announce a longer body than is sent (the connection breaks mid-body)
}

// received is what the fake saw of one request.
type received struct {
	method, path string
	query        url.Values
	header       http.Header
}

// fakeDatadog answers GET /api/v1/query as Datadog does, one reply per request in order
// (the last one repeats), and records the requests.
type fakeDatadog struct {
	t       *testing.T
	srv     *httptest.Server
	prefix  string
	mu      sync.Mutex
	replies []reply
	reqs    []received
}

func newFake(t *testing.T, prefix string, replies ...reply) *fakeDatadog {
	t.Helper()
	f := &fakeDatadog{t: t, prefix: prefix, replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve)) // 127.0.0.1, free port
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDatadog) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, received{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone()})
	rep := f.replies[min(n, len(f.replies)-1)]
	f.mu.Unlock()

	if r.Method != http.MethodGet || r.URL.Path != f.prefix+"/api/v1/query" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors": ["Not found"]}`))
		return
	}
	// Datadog checks the keys before anything else.
	if r.Header.Get("DD-API-KEY") != testAPIKey || r.Header.Get("DD-APPLICATION-KEY") != testAppKey {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors": ["Forbidden"]}`))
		return
	}
	if rep.hangup {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			f.t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
		return
	}
	body := []byte(rep.body)
	if rep.file != "" {
		var err error
		if body, err = os.ReadFile(filepath.Join("testdata", rep.file)); err != nil {
			f.t.Errorf("fixture: %v", err)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.cut {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+100))
	}
	for k, v := range rep.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

func (f *fakeDatadog) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

// sleeps records the waits the provider asked for, without spending them: each moves
// its clock (the provider's, through WithClock) on by the wait.
type sleeps struct {
	mu  sync.Mutex
	d   []time.Duration
	now time.Time
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.now = s.now.Add(d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now.IsZero() {
		s.now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	}
	return s.now
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func setKeys(t *testing.T) {
	t.Setenv(testAPIKeyEnv, testAPIKey)
	t.Setenv(testAppKeyEnv, testAppKey)
}

func testConfig(apiURL string) Config {
	c := DefaultConfig()
	c.APIURL = apiURL
	c.APIKeyEnv, c.AppKeyEnv = testAPIKeyEnv, testAppKeyEnv
	c.Timeout = 5 * time.Second
	return c
}

// newTestProvider points a Provider at the fake, with recorded sleeps.
func newTestProvider(t *testing.T, f *fakeDatadog, mutate func(*Config), opts ...Option) (*Provider, *sleeps) {
	t.Helper()
	setKeys(t)
	cfg := testConfig(f.srv.URL + f.prefix)
	if mutate != nil {
		mutate(&cfg)
	}
	s := &sleeps{}
	p, err := New(cfg, zaptest.NewLogger(t), append([]Option{WithSleep(s.sleep), WithClock(s.clock)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, s
}

var (
	testStart = time.Unix(1700000000, 0)
	testEnd   = time.Unix(1700000180, 999_000_000) // sub-second part is dropped
)

func testQuery() metrics.Query {
	return metrics.Query{
		Text:  "avg:trace.http.request.duration{service:checkout,track:canary} by {host}",
		Start: testStart, End: testEnd, Step: time.Minute,
	}
}

func TestQueryTwoSeries(t *testing.T) {
	f := newFake(t, "/proxy/datadog", reply{status: 200, file: "two_series.json"})
	p, slept := newTestProvider(t, f, nil)

	got, err := p.Query(context.Background(), testQuery())
	if err != nil {
		t.Fatal(err)
	}
	equalStreams(t, got.Streams, twoSeriesWant())
	if len(got.Warnings) != 0 {
		t.Errorf("warnings: %v", got.Warnings)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodGet || r.path != "/proxy/datadog/api/v1/query" {
		t.Errorf("request %s %s", r.method, r.path)
	}
	for k, want := range map[string]string{
		"DD-API-KEY":         testAPIKey,
		"DD-APPLICATION-KEY": testAppKey,
		"Accept":             "application/json",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	wantQuery := url.Values{
		"from": {"1700000000"},
		"to":   {"1700000180"},
		// Issue 18 item 9: sent as written, no rollup unless the config asks.
		"query": {"avg:trace.http.request.duration{service:checkout,track:canary} by {host}"},
	}
	if r.query.Encode() != wantQuery.Encode() {
		t.Errorf("query parameters\n got %s\nwant %s", r.query.Encode(), wantQuery.Encode())
	}
	if s := slept.all(); len(s) != 0 {
		t.Errorf("slept %v on a clean answer", s)
	}
}

func TestQueryNoData(t *testing.T) {
	tests := []struct {
		name  string
		reply reply
	}{
		{"empty series list", reply{status: 200, file: "no_data.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", tc.reply)
			p, _ := newTestProvider(t, f, nil)
			got, err := p.Query(context.Background(), testQuery())
			if err != nil {
				t.Fatalf("no data must not be an error: %v", err)
			}
			if len(got.Streams) != 0 || got.Len() != 0 {
				t.Errorf("got %+v, want no streams", got)
			}
		})
	}
}

// Issue 18 item 9: a 200 whose JSON has no series list is not an answer to the query
// (a proxy's JSON, another endpoint's): an error, never "no data".
func TestQueryNoSeriesListIsAnError(t *testing.T) {
	f := newFake(t, "", reply{status: 200, body: `{"status":"ok","res_type":"time_series","query":"avg:m{*}","from_date":1700000000000,"to_date":1700000180000}`})
	p, _ := newTestProvider(t, f, nil)
	_, err := p.Query(context.Background(), testQuery())
	if err == nil || !strings.HasSuffix(err.Error(), `unexpected response shape: no "series" list`) {
		t.Errorf("error %v, want the missing series list", err)
	}
}

// Issue 18 item 9: canaryd does not rewrite the query with a rollup unless the config
// asks (rollup: <method>); then a single metric query without its own rollup gets
// .rollup(<method>,<step s>), an expression is sent unchanged with a warning.
func TestQueryRollup(t *testing.T) {
	const expr = "sum:errors{app:web}.as_count() / sum:hits{app:web}.as_count()"
	for _, tc := range []struct {
		name, rollup, query, sent, warning string
	}{
		{"default: as written", "", "avg:m{app:web} by {host}", "avg:m{app:web} by {host}", ""},
		{"default: expression as written, no warning", "", expr, expr, ""},
		{"avg asked", "avg", "avg:m{app:web} by {host}", "avg:m{app:web} by {host}.rollup(avg,60)", ""},
		{"sum asked", "sum", "sum:m{app:web}.as_count()", "sum:m{app:web}.as_count().rollup(sum,60)", ""},
		{"the query's own rollup wins", "avg", "avg:m{app:web}.rollup(max,30)", "avg:m{app:web}.rollup(max,30)", ""},
		{"expression with a rollup asked", "avg", expr, expr, "datadog: step 1m0s not applied: the query is an expression, so Datadog chose the rollup; add .rollup(avg,60) to each term"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", reply{status: 200, file: "no_data.json"})
			p, _ := newTestProvider(t, f, func(c *Config) { c.Rollup = tc.rollup })
			q := testQuery()
			q.Text = tc.query
			got, err := p.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if sent := f.requests()[0].query.Get("query"); sent != tc.sent {
				t.Errorf("sent %q, want %q", sent, tc.sent)
			}
			if want := []string{tc.warning}; tc.warning == "" && len(got.Warnings) != 0 || tc.warning != "" && !slices.Equal(got.Warnings, want) {
				t.Errorf("warnings %q, want %q", got.Warnings, tc.warning)
			}
		})
	}
	c := testConfig("http://127.0.0.1:1")
	c.Rollup = "median"
	if err := c.Validate().Err(); err == nil || !strings.Contains(err.Error(), `rollup: must be avg, sum, min, max or count (Datadog's rollup methods), got "median"`) {
		t.Errorf("rollup: median: %v", err)
	}
}

// TestQueryFailures covers answers that are final (no retry) and retries that run out.
func TestQueryFailures(t *testing.T) {
	tests := []struct {
		name     string
		replies  []reply
		retries  int
		wantErr  string
		wantReqs int
		wantWait int // number of sleeps
	}{
		{
			name:     "403 bad keys is not retried and names the variables",
			replies:  []reply{{status: 403, file: "forbidden.json"}},
			retries:  3,
			wantErr:  "datadog: forbidden: check " + testAPIKeyEnv + "/" + testAppKeyEnv + " (HTTP 403: Forbidden)",
			wantReqs: 1,
		},
		{
			name:     "400 bad query is not retried and carries Datadog's message",
			replies:  []reply{{status: 400, file: "bad_request.json"}},
			retries:  3,
			wantErr:  "HTTP 400: Error parsing query: unable to parse avg:nope{: Rule 'scope_expr' didn't match",
			wantReqs: 1,
		},
		{
			name:     "404 is not retried",
			replies:  []reply{{status: 404, body: `{"errors": ["Not found"]}`}},
			retries:  3,
			wantErr:  "HTTP 404: Not found",
			wantReqs: 1,
		},
		{
			name:     "status error in a 200 is not retried",
			replies:  []reply{{status: 200, file: "status_error.json"}},
			retries:  3,
			wantErr:  "query failed: Error parsing query",
			wantReqs: 1,
		},
		{
			name:     "a body that is not JSON is not retried",
			replies:  []reply{{status: 200, body: "<html>proxy says hi</html>"}},
			retries:  3,
			wantErr:  "decode response (HTTP 200)",
			wantReqs: 1,
		},
		{
			name:     "5xx retried until retries run out",
			replies:  []reply{{status: 503, body: `{"errors": ["Service unavailable"]}`}},
			retries:  2,
			wantErr:  "datadog: server error: HTTP 503: Service unavailable (attempts: 3)",
			wantReqs: 3,
			wantWait: 2,
		},
		{
			name:     "retries 0 means one request, also for 5xx",
			replies:  []reply{{status: 500, body: ""}},
			retries:  0,
			wantErr:  "HTTP 500: Internal Server Error (attempts: 1)",
			wantReqs: 1,
		},
		{
			name:     "429 resetting later than the maximum wait fails at once",
			replies:  []reply{{status: 429, file: "rate_limited.json", headers: map[string]string{"X-RateLimit-Reset": "3000"}}},
			retries:  3,
			wantErr:  "datadog: rate limited: HTTP 429: Rate limit of 1600 requests in 3600 seconds reached. Please try again later. (resets in 50m0s, longer than max_rate_limit_wait, 10m0s)",
			wantReqs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", tc.replies...)
			p, slept := newTestProvider(t, f, func(c *Config) { c.Retries = tc.retries })
			got, err := p.Query(context.Background(), testQuery())
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testAPIKey) || strings.Contains(err.Error(), testAppKey) {
				t.Errorf("error %q leaks a key", err)
			}
			if n := len(f.requests()); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
			if n := len(slept.all()); n != tc.wantWait {
				t.Errorf("%d waits, want %d", n, tc.wantWait)
			}
		})
	}
}

func TestQueryRetriesThenSucceeds(t *testing.T) {
	const base = 100 * time.Millisecond
	ok := reply{status: 200, file: "two_series.json"}
	tests := []struct {
		name    string
		replies []reply
		// each wait must lie in [lo, hi]
		waits [][2]time.Duration
	}{
		{
			name:    "429 waits X-RateLimit-Reset",
			replies: []reply{{status: 429, file: "rate_limited.json", headers: map[string]string{"X-RateLimit-Limit": "1600", "X-RateLimit-Period": "3600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}}, ok},
			waits:   [][2]time.Duration{{time.Second, time.Second}},
		},
		{
			name:    "429 without a reset header backs off",
			replies: []reply{{status: 429, file: "rate_limited.json"}, ok},
			waits:   [][2]time.Duration{{base / 2, base}},
		},
		{
			name:    "5xx back off exponentially",
			replies: []reply{{status: 502, body: "bad gateway"}, {status: 503, body: `{"errors":["down"]}`}, {status: 500}, ok},
			waits:   [][2]time.Duration{{base / 2, base}, {base, 2 * base}, {2 * base, 4 * base}},
		},
		{
			name:    "a body cut short is retried",
			replies: []reply{{status: 200, file: "two_series.json", cut: true}, ok},
			waits:   [][2]time.Duration{{base / 2, base}},
		},
		{
			name:    "a dropped connection is retried",
			replies: []reply{{hangup: true}, ok},
			waits:   [][2]time.Duration{{base / 2, base}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "", tc.replies...)
			p, slept := newTestProvider(t, f, nil, WithBackoff(base, time.Second))
			got, err := p.Query(context.Background(), testQuery())
			if err != nil {
				t.Fatal(err)
			}
			equalStreams(t, got.Streams, twoSeriesWant())
			if n := len(f.requests()); n != len(tc.replies) {
				t.Errorf("%d requests, want %d", n, len(tc.replies))
			}
			waits := slept.all()
			if len(waits) != len(tc.waits) {
				t.Fatalf("waits %v, want %d", waits, len(tc.waits))
			}
			for i, w := range waits {
				if w < tc.waits[i][0] || w > tc.waits[i][1] {
					t.Errorf("wait %d = %s, want within %v", i, w, tc.waits[i])
				}
			}
		})
	}
}

func TestQueryAttemptTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		defer calls.Done()
		select { // hang until the client gives up (or the test ends)
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	setKeys(t)
	cfg := testConfig(srv.URL)
	cfg.Timeout, cfg.Retries = 50*time.Millisecond, 1
	s := &sleeps{}
	p, err := New(cfg, zaptest.NewLogger(t), WithSleep(s.sleep))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = p.Query(ctx, testQuery())
	if err == nil || !strings.Contains(err.Error(), "(attempts: 2)") {
		t.Fatalf("error %v, want a timeout retried once", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the attempt's deadline", err)
	}
	if n := len(s.all()); n != 1 {
		t.Errorf("%d waits, want 1", n)
	}
}

func TestQueryContextEndsDuringWait(t *testing.T) {
	f := newFake(t, "", reply{status: 503})
	setKeys(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits int
	sleep := func(ctx context.Context, d time.Duration) error {
		waits++
		cancel() // the scheduler gives up while we wait
		return ctx.Err()
	}
	p, err := New(testConfig(f.srv.URL), zap.NewNop(), WithSleep(sleep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(ctx, testQuery())
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("error %v, want the 503 and context.Canceled", err)
	}
	if n := len(f.requests()); n != 1 || waits != 1 {
		t.Errorf("%d requests and %d waits, want 1 and 1", n, waits)
	}
}

func TestQueryRejectsBadQuery(t *testing.T) {
	f := newFake(t, "", reply{status: 200, file: "no_data.json"})
	p, _ := newTestProvider(t, f, nil)
	q := testQuery()
	q.Step = 0
	if _, err := p.Query(context.Background(), q); err == nil || !strings.Contains(err.Error(), "step must be > 0") {
		t.Errorf("error %v, want the step named", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests for an invalid query", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		mutate  func(*Config)
		wantURL string
		wantErr string
	}{
		{
			name:    "default site",
			env:     map[string]string{"DDTEST_API": "k", "DDTEST_APP": "a"},
			wantURL: "https://api.datadoghq.com",
		},
		{
			name:    "EU site",
			env:     map[string]string{"DDTEST_API": "k", "DDTEST_APP": "a"},
			mutate:  func(c *Config) { c.Site = "datadoghq.eu" },
			wantURL: "https://api.datadoghq.eu",
		},
		{
			name:    "a site the client does not list yet",
			env:     map[string]string{"DDTEST_API": "k", "DDTEST_APP": "a"},
			mutate:  func(c *Config) { c.Site = "us9.datadoghq.com" },
			wantURL: "https://api.us9.datadoghq.com",
		},
		{
			name:    "api_url overrides site, trailing slash dropped",
			env:     map[string]string{"DDTEST_API": "k", "DDTEST_APP": "a"},
			mutate:  func(c *Config) { c.Site = "datadoghq.eu"; c.APIURL = "https://dd-proxy.internal:8443/dd/" },
			wantURL: "https://dd-proxy.internal:8443/dd",
		},
		{
			name:    "missing API key names the variable",
			env:     map[string]string{"DDTEST_APP": "a"},
			wantErr: "datadog: API key: environment variable DDTEST_API is not set",
		},
		{
			name:    "empty application key names the variable",
			env:     map[string]string{"DDTEST_API": "k", "DDTEST_APP": " "},
			wantErr: "datadog: application key: environment variable DDTEST_APP is empty",
		},
		{
			name:    "invalid config",
			env:     map[string]string{"DDTEST_API": "k", "DDTEST_APP": "a"},
			mutate:  func(c *Config) { c.Timeout = 0 },
			wantErr: "datadog: config: timeout: must be > 0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"DDTEST_API", "DDTEST_APP"} {
				t.Setenv(k, "")
				os.Unsetenv(k) // t.Setenv restores the old state afterwards
				if v, ok := tc.env[k]; ok {
					t.Setenv(k, v)
				}
			}
			cfg := DefaultConfig()
			cfg.APIKeyEnv, cfg.AppKeyEnv = "DDTEST_API", "DDTEST_APP"
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			p, err := New(cfg, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.baseURL != tc.wantURL {
				t.Errorf("base URL %q, want %q", p.baseURL, tc.wantURL)
			}
			if p.api.Client.Cfg.RetryConfiguration.EnableRetry {
				t.Error("the client's own retry is on: retries would be doubled")
			}
		})
	}
}

// Issue 18 item 9: a 429 or 5xx whose body is a proxy's HTML page is one line in the
// error (its title), not the page.
func TestHTMLErrorIsOneLine(t *testing.T) {
	page := "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
	f := newFake(t, "", reply{status: 502, body: page})
	p, _ := newTestProvider(t, f, func(c *Config) { c.Retries = 0 })
	_, err := p.Query(t.Context(), testQuery())
	want := "datadog: server error: HTTP 502: 502 Bad Gateway (attempts: 1)"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"<html><body><p>Too\n many\trequests</p></body></html>", "Too many requests"},
		{"plain\r\ntext", "plain text"},
		{"<TITLE>Service Unavailable</TITLE><body>x</body>", "Service Unavailable"},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Issue 18 item 9: points outside the window asked for are dropped and counted.
func TestPointsOutsideTheWindowDropped(t *testing.T) {
	body := `{"status": "ok", "res_type": "time_series", "series": [{"metric": "m", "scope": "track:canary", "tag_set": [], "expression": "avg:m{track:canary}",
	  "pointlist": [[1699999940000, 1], [1700000000000, 2], [1700000180000, 3], [1700000240000, 4]]}]}`
	f := newFake(t, "", reply{status: 200, body: body})
	p, _ := newTestProvider(t, f, nil)
	got, err := p.Query(t.Context(), testQuery())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 1 || len(got.Streams[0].Points) != 2 || got.Streams[0].Points[0].V != 2 || got.Streams[0].Points[1].V != 3 {
		t.Errorf("streams %+v, want the points at 1700000000000 and 1700000180000", got.Streams)
	}
	if !slices.Contains(got.Warnings, "datadog: dropped 2 points outside the window asked for") {
		t.Errorf("warnings %q", got.Warnings)
	}
}
