package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration is one step of the schema. Each runs in its own transaction with the bump of
// the version, so a migration cut short (a crash, a lost connection, an error halfway)
// leaves the database at the version before it: PostgreSQL's DDL is transactional.
type migration struct {
	version int
	name    string
	sql     string
}

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
	}
}

// migrateLock is the key of the advisory lock that serialises migrations, so replicas
// starting together migrate once ("canaryd" in ASCII).
const migrateLock = 0x63616e61727964

// ErrSchemaNewer is returned when the database was migrated by a newer canaryd.
var ErrSchemaNewer = errors.New("the database's schema is newer than this canaryd")

// SchemaVersion is the schema version this canaryd migrates to.
func SchemaVersion() int { return len(migrations()) }

// migrate brings the database to the last of migs, one transaction per migration, and
// refuses a database already past it.
func migrate(ctx context.Context, pool *pgxpool.Pool, migs []migration) (from, to int, err error) {
	from = -1
	for {
		v, done, err := step(ctx, pool, migs)
		if from < 0 {
			from = v
		}
		if err != nil || done {
			return from, v, err
		}
	}
}

// step applies the next migration, if any, and returns the version it leaves.
func step(ctx context.Context, pool *pgxpool.Pool, migs []migration) (version int, done bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
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
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return fmt.Errorf("migration %d (%s): record it: %w", m.version, m.name, err)
		}
		version = m.version
		return nil
	})
	return version, done, err
}
