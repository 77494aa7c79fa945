package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
	"github.com/canaryd/canaryd/analysis/storetest"
	"github.com/canaryd/canaryd/judge"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	var last string
	storetest.Run(t, func(t *testing.T) analysis.Store {
		last = pgtest.Database(t)
		return open(t, last)
	}, func(t *testing.T) analysis.Store {
		return open(t, last)
	})
}

// IntervalSummaries reads what Intervals does, points left out.
func TestIntervalSummaries(t *testing.T) {
	s := open(t, pgtest.Database(t))
	defer s.Close()
	ctx := t.Context()
	c := &analysis.Canary{ID: "abc", Name: "web", Analysis: "a", AnalysisHash: "h", Status: analysis.StatusRunning, Intervals: 3, NextIndex: 1}
	if err := s.Create(ctx, c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		r := &analysis.IntervalResult{CanaryID: "abc", Index: i,
			Metrics: []judge.MetricResult{{Name: "m", Classification: judge.ClassPass, Reason: fmt.Sprint("ok ", i)}}}
		if i == 2 {
			r.Points = []analysis.MetricPoints{{Metric: "m", Baseline: []analysis.TimeValue{{1000, 1.5}}, Canary: []analysis.TimeValue{{1000, 2.5}}}}
		}
		if _, err := s.RecordInterval(ctx, r, func(c *analysis.Canary) ([]analysis.Action, error) { c.NextIndex++; return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	full, err := s.Intervals(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := s.IntervalSummaries(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 2 || len(sum) != 2 || full[0].Points != nil || len(full[1].Points) != 1 || full[1].Points[0].Canary[0] != (analysis.TimeValue{1000, 2.5}) {
		t.Fatalf("full %+v, summaries %+v", full, sum)
	}
	for i := range full {
		if sum[i].Points != nil {
			t.Errorf("summary %d has points", i)
		}
		full[i].Points = nil
		if !reflect.DeepEqual(full[i], sum[i]) {
			t.Errorf("summary %d:\n%+v\nwant\n%+v", i, sum[i], full[i])
		}
	}
}

// Replicas writing the same interval at once: one records it, every other one gets
// ErrIntervalExists, and the canary's mutation ran once.
func TestRecordIntervalRace(t *testing.T) {
	url := pgtest.Database(t)
	var stores []*Store
	for range 4 {
		s := open(t, url)
		defer s.Close()
		stores = append(stores, s)
	}
	ctx := t.Context()
	if err := stores[0].Create(ctx, &analysis.Canary{ID: "r", AnalysisHash: "h", Status: analysis.StatusRunning, Intervals: 10, NextIndex: 1}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for idx := 1; idx <= 5; idx++ {
		var wg sync.WaitGroup
		errs := make([]error, len(stores)*2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = stores[i%len(stores)].RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "r", Index: idx},
					func(c *analysis.Canary) ([]analysis.Action, error) {
						c.NextIndex++
						return []analysis.Action{{Kind: "verdict"}}, nil
					})
			}()
		}
		wg.Wait()
		ok, exists := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, analysis.ErrIntervalExists):
				exists++
			default:
				t.Fatalf("interval %d: %v", idx, err)
			}
		}
		if ok != 1 || exists != len(errs)-1 {
			t.Fatalf("interval %d: %d recorded, %d refused", idx, ok, exists)
		}
	}
	c, err := stores[1].Get(ctx, "r")
	if err != nil || c.NextIndex != 6 {
		t.Fatalf("next index %v (want 6): %v", c, err)
	}
	acts, err := stores[2].Actions(ctx, "r")
	if err != nil || len(acts) != 5 {
		t.Fatalf("%d actions (want 5): %v", len(acts), err)
	}
	for i := 1; i < len(acts); i++ {
		if acts[i].Seq <= acts[i-1].Seq {
			t.Errorf("actions out of order: %+v", acts)
		}
	}
}

func schemaVersion(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(t.Context(), "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

func tableExists(t *testing.T, url, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestMigrations(t *testing.T) {
	t.Run("fresh database, then again", func(t *testing.T) {
		url := pgtest.Database(t)
		open(t, url).Close()
		if v := schemaVersion(t, url); v != SchemaVersion() {
			t.Fatalf("version %d, want %d", v, SchemaVersion())
		}
		// A second start (or a second replica) finds nothing to do and keeps the data.
		s := open(t, url)
		defer s.Close()
		if err := s.Create(t.Context(), &analysis.Canary{ID: "k", AnalysisHash: "h", Status: analysis.StatusRunning}, []byte("x")); err != nil {
			t.Fatal(err)
		}
		s2 := open(t, url)
		defer s2.Close()
		if _, err := s2.Get(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("replicas starting together migrate once", func(t *testing.T) {
		url := pgtest.Database(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(t.Context(), url, Options{})
				if err == nil {
					s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if v := schemaVersion(t, url); v != SchemaVersion() {
			t.Fatalf("version %d", v)
		}
	})

	t.Run("newer database refused", func(t *testing.T) {
		url := pgtest.Database(t)
		open(t, url).Close()
		exec(t, url, fmt.Sprintf("INSERT INTO schema_migrations (version, name) VALUES (%d, 'from the future')", SchemaVersion()+1))
		_, err := Open(t.Context(), url, Options{})
		if !errors.Is(err, ErrSchemaNewer) {
			t.Fatalf("want ErrSchemaNewer, got %v", err)
		}
		for _, want := range []string{fmt.Sprintf("version %d", SchemaVersion()+1), fmt.Sprintf("up to %d", SchemaVersion()), url} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if v := schemaVersion(t, url); v != SchemaVersion()+1 {
			t.Errorf("the refused database changed: version %d", v)
		}
	})

	// A migration cut short (here its connection is cancelled mid-way, after it created a
	// table) leaves the database at the version before it, without that table.
	t.Run("interrupted migration leaves the old version", func(t *testing.T) {
		url := pgtest.Database(t)
		s := open(t, url)
		defer s.Close()
		migs := append(migrations(), migration{SchemaVersion() + 1, "half done", "CREATE TABLE half_done (x int); SELECT pg_sleep(30);"})
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := migrate(ctx, s.pool, migs)
		if err == nil || !strings.Contains(err.Error(), "half done") {
			t.Fatalf("want the interrupted migration's error, got %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the cancel took %s", d)
		}
		if v := schemaVersion(t, url); v != SchemaVersion() {
			t.Errorf("version %d, want %d", v, SchemaVersion())
		}
		if tableExists(t, url, "half_done") {
			t.Error("the interrupted migration's table exists")
		}
		// And one that fails halfway on its own, the same.
		migs[len(migs)-1].SQL = "CREATE TABLE half_done (x int); SELECT 1/0;"
		if _, _, err := migrate(t.Context(), s.pool, migs); err == nil || !strings.Contains(err.Error(), "division by zero") {
			t.Fatalf("want division by zero, got %v", err)
		}
		if v := schemaVersion(t, url); v != SchemaVersion() || tableExists(t, url, "half_done") {
			t.Errorf("version %d, half_done exists %v", v, tableExists(t, url, "half_done"))
		}
	})
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"password in userinfo", "postgres://canaryd:s3cr%40t@db.example:5432/canaryd?sslmode=require", "postgres://canaryd@db.example:5432/canaryd?sslmode=require"},
		{"no password", "postgres://canaryd@127.0.0.1:5432/canaryd?sslmode=disable", "postgres://canaryd@127.0.0.1:5432/canaryd?sslmode=disable"},
		{"password parameter", "postgresql://u@h/db?password=hunter2&sslmode=verify-full", "postgresql://u@h/db?password=%3Csecret%3E&sslmode=verify-full"},
		{"unparsable keeps no userinfo", "postgres://u:p w%zz@h/db", "postgres://<secret>@h/db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// A database that cannot be reached: the error names the URL without its password and
// says why, and never holds the password.
func TestOpenUnreachable(t *testing.T) {
	l := freePort(t)
	url := "postgres://canaryd:hunter2@" + l + "/canaryd?sslmode=disable"
	start := time.Now()
	_, err := Open(t.Context(), url, Options{ConnectTimeout: 3 * time.Second})
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ConnectError, got %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2") {
		t.Errorf("the password is in %q", msg)
	}
	for _, want := range []string{"postgres://canaryd@" + l + "/canaryd?sslmode=disable", "connect"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestIsURL(t *testing.T) {
	for in, want := range map[string]bool{
		"postgres://u@h/db": true, "POSTGRESQL://u@h/db": true, "data/canaryd.db": false,
		"/var/lib/canaryd/postgres.db": false, "postgres.db": false,
	} {
		if IsURL(in) != want {
			t.Errorf("IsURL(%q) = %v", in, !want)
		}
	}
}

// freePort is a loopback address nothing listens on (a moment ago, something did).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
