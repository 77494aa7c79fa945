package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one step of a schema. Each runs in its own transaction with the bump of
// the version, so a migration cut short (a crash, a lost connection, an error halfway)
// leaves the database at the version before it: PostgreSQL's DDL is transactional.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

type migration = Migration

// migrations is the schema, oldest first; version i is migrations()[i-1]. Append only:
// a released migration never changes.
func migrations() []migration {
	return []migration{
		{1, "canaries, intervals, actions, analysis snapshots", `
-- Each record is the JSON the embedded store keeps (json, not jsonb: stored as written,
-- so a sequential judge's state reads back byte for byte), with the columns the queries
-- select and order by beside it. Ids sort as bytes (COLLATE "C"), as bbolt's keys do.
CREATE TABLE analyses (
	hash   text COLLATE "C" PRIMARY KEY,
	source bytea NOT NULL
);
CREATE TABLE canaries (
	id      text COLLATE "C" PRIMARY KEY,
	created bigint NOT NULL, -- Unix ns of created_at, clamped (analysis.CreatedNanos)
	status  text NOT NULL,
	ended   bigint,          -- Unix ns of Canary.Ended() once final, else NULL
	doc     json NOT NULL
);
CREATE INDEX canaries_by_created ON canaries (created, id);
CREATE INDEX canaries_by_status ON canaries (status, created, id);
CREATE INDEX canaries_by_ended ON canaries (ended) WHERE ended IS NOT NULL;
CREATE TABLE intervals (
	canary_id text COLLATE "C" NOT NULL REFERENCES canaries (id) ON DELETE CASCADE,
	idx       integer NOT NULL,
	doc       json NOT NULL, -- the result without its points
	points    json,          -- its points, NULL without
	PRIMARY KEY (canary_id, idx)
);
CREATE SEQUENCE actions_seq;
CREATE TABLE actions (
	seq       bigint PRIMARY KEY,
	canary_id text COLLATE "C" NOT NULL REFERENCES canaries (id) ON DELETE CASCADE,
	doc       json NOT NULL
);
CREATE INDEX actions_by_canary ON actions (canary_id, seq);
`},
		{2, "canary keys", `
-- A keyed registration's key (analysis.Canary.Key), NULL without one. The unique index is
-- what makes concurrent registrations with one key create one canary, across replicas.
ALTER TABLE canaries ADD COLUMN key text COLLATE "C";
CREATE UNIQUE INDEX canaries_by_key ON canaries (key) WHERE key IS NOT NULL;
`},
		{3, "leases of running canaries, live replicas", `
-- A replica judges a canary only while it holds its lease; expires is the database's
-- clock (now() + the lease), never a replica's. A replica's row says it is alive until
-- expires (the safety layer adopts the actions of replicas that are not).
CREATE TABLE leases (
	canary_id text COLLATE "C" PRIMARY KEY REFERENCES canaries (id) ON DELETE CASCADE,
	owner     text NOT NULL,
	expires   timestamptz NOT NULL
);
CREATE INDEX leases_by_owner ON leases (owner);
CREATE TABLE replicas (
	id      text PRIMARY KEY,
	started timestamptz NOT NULL DEFAULT now(),
	expires timestamptz NOT NULL
);
`},
	}
}

// migrateLock is the key of the advisory lock that serialises migrations, so replicas
// starting together migrate once ("canaryd" in ASCII). Every chain (the analysis store's,
// the safety layer's) takes the same lock: migrations are rare and short.
const migrateLock = 0x63616e61727964

// Chain is one owner's schema in a database: its migrations, oldest first (version i is
// Migrations[i-1]; append only), and the table that records which are applied.
type Chain struct {
	// Table records the applied versions (a constant of the owner, never user input).
	Table      string
	Migrations []Migration
}

// Migrate brings the database to the last of c.Migrations, one transaction per
// migration under an advisory lock, and refuses (ErrSchemaNewer) a database already past
// it. The safety layer's PostgreSQL store migrates its own tables with it.
func Migrate(ctx context.Context, pool *pgxpool.Pool, c Chain) (from, to int, err error) {
	return migrateChain(ctx, pool, c)
}

// ErrSchemaNewer is returned when the database was migrated by a newer canaryd.
var ErrSchemaNewer = errors.New("the database's schema is newer than this canaryd")

// SchemaVersion is the schema version this canaryd migrates to.
func SchemaVersion() int { return len(migrations()) }

// migrate brings the database to the last of migs, one transaction per migration, and
// refuses a database already past it.
func migrate(ctx context.Context, pool *pgxpool.Pool, migs []migration) (from, to int, err error) {
	return migrateChain(ctx, pool, Chain{Table: "schema_migrations", Migrations: migs})
}

func migrateChain(ctx context.Context, pool *pgxpool.Pool, c Chain) (from, to int, err error) {
	from = -1
	for {
		v, done, err := step(ctx, pool, c)
		if from < 0 {
			from = v
		}
		if err != nil || done {
			return from, v, err
		}
	}
}

// step applies the next migration, if any, and returns the version it leaves.
func step(ctx context.Context, pool *pgxpool.Pool, c Chain) (version int, done bool, err error) {
	migs := c.Migrations
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+c.Table+` (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create %s: %w", c.Table, err)
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+c.Table).Scan(&version); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if version > len(migs) {
			return fmt.Errorf("%w: it is at version %d, this canaryd knows versions up to %d; run a canaryd at least as new as the one that migrated it, or point server.storage at another database",
				ErrSchemaNewer, version, len(migs))
		}
		if version == len(migs) {
			done = true
			return nil
		}
		m := migs[version]
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s %d (%s): %w", c.Table, m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+c.Table+" (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			return fmt.Errorf("migration %s %d (%s): record it: %w", c.Table, m.Version, m.Name, err)
		}
		version = m.Version
		return nil
	})
	return version, done, err
}
