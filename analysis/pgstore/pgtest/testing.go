package pgtest

import (
	"context"
	"sync"
	"testing"
)

// shared is the test binary's one cluster: started by the first Database of a package
// whose TestMain calls Run, stopped when Run returns. initdb and start-up cost seconds on
// a busy machine; a database costs a fraction of one. (State of a test binary, never of
// canaryd.)
var shared struct {
	mu      sync.Mutex
	managed bool
	c       *Cluster
	err     error
}

// Run runs the package's tests (m.Run) and then stops the cluster they shared. Call it
// from TestMain: os.Exit(pgtest.Run(m)).
func Run(m *testing.M) int {
	shared.mu.Lock()
	shared.managed = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.Stop()
		shared.c = nil
	}
	return code
}

// Database returns the URL of a new, empty database on the package's cluster (on a
// cluster of the test's own, stopped in t.Cleanup, when TestMain does not call Run).
// Without PostgreSQL installed, the test is skipped under -short and fails otherwise.
func Database(t testing.TB) string {
	t.Helper()
	c := cluster(t)
	url, err := c.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Shared returns the package's cluster (see Database), skipping or failing the test
// as Database does when PostgreSQL is missing.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	return cluster(t)
}

func cluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := BinDir(); err != nil {
		if testing.Short() {
			t.Skipf("skipped under -short: %v", err)
		}
		t.Fatalf("%v (go test -short skips the tests that need it)", err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.managed {
		c, err := Start(t.Context(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c
	}
	if shared.c == nil && shared.err == nil {
		// Not the test's context: the cluster outlives this test.
		shared.c, shared.err = Start(context.Background(), Options{})
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}
