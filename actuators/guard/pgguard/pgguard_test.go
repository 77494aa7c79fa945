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

// Migration 2 indexes the unfinished actions a version-1 database already holds.
func TestMigrationMarksUnfinished(t *testing.T) {
	as, err := pgstore.Open(t.Context(), pgtest.Database(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	v1 := pgstore.Chain{Table: chain.Table, Migrations: chain.Migrations[:1]}
	if _, _, err := pgstore.Migrate(t.Context(), as.Pool(), v1); err != nil {
		t.Fatal(err)
	}
	for key, state := range map[string]guard.State{"c1/on_fail/rollback": guard.StateFiring, "c2/on_fail/rollback": guard.StateSucceeded, "c3/on_fail/rollback": guard.StateAwaitingApproval} {
		doc := fmt.Sprintf(`{"key":%q,"state":%q}`, key, state)
		if _, err := as.Pool().Exec(t.Context(), "INSERT INTO guard_actuations (key, canary, doc) VALUES ($1, $2, $3)", []byte(key), []byte(key[:2]), doc); err != nil {
			t.Fatal(err)
		}
	}
	gs, err := Open(t.Context(), as.Pool())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = gs.View(t.Context(), func(tx guard.Tx) error {
		return tx.(guard.UnfinishedTx).EachUnfinished(func(a *guard.Actuation) error { got = append(got, a.Key); return nil })
	})
	if err != nil || fmt.Sprint(got) != "[c1/on_fail/rollback c3/on_fail/rollback]" {
		t.Fatalf("unfinished after the migration: %v %v", got, err)
	}
}
