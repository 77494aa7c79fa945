package pgguard

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/actuators/guard/guardtest"
	"github.com/canaryd/canaryd/analysis/pgstore"
	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// open opens the analysis store on a new database and the guard's store beside it, as
// canaryd serve does.
func open(t *testing.T) (*pgstore.Store, *Store) {
	t.Helper()
	as, err := pgstore.Open(t.Context(), pgtest.Database(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { as.Close() })
	gs, err := Open(t.Context(), as.Pool())
	if err != nil {
		t.Fatal(err)
	}
	return as, gs
}

func TestConformance(t *testing.T) {
	guardtest.Run(t, func(t *testing.T) guard.Store { _, gs := open(t); return gs })
}

func TestMigrations(t *testing.T) {
	as, _ := open(t)
	// Again on the same database (a restart, a second replica): nothing to do.
	if _, err := Open(t.Context(), as.Pool()); err != nil {
		t.Fatal(err)
	}
	version := func(p *pgxpool.Pool) (v int) {
		if err := p.QueryRow(t.Context(), "SELECT max(version) FROM guard_schema_migrations").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(as.Pool()); v != SchemaVersion() {
		t.Fatalf("guard schema version %d, want %d", v, SchemaVersion())
	}
	// The analysis store's own chain is untouched by the guard's.
	var av int
	if err := as.Pool().QueryRow(t.Context(), "SELECT max(version) FROM schema_migrations").Scan(&av); err != nil || av != pgstore.SchemaVersion() {
		t.Fatalf("analysis schema version %d (%v), want %d", av, err, pgstore.SchemaVersion())
	}
	if _, err := as.Pool().Exec(t.Context(), fmt.Sprintf("INSERT INTO guard_schema_migrations (version, name) VALUES (%d, 'future')", SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), as.Pool()); !errors.Is(err, pgstore.ErrSchemaNewer) {
		t.Fatalf("a newer guard schema: want ErrSchemaNewer, got %v", err)
	}
}
