// Package pgguard is the safety layer's guard.Store on PostgreSQL: intents and outcomes,
// planned canaries, the breaker's and the cooldown's history, open incidents and the
// audit log in tables of the analysis store's database, shared by every replica. It owns
// those tables and their transactions; it never decides anything about an action.
package pgguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis/pgstore"
)

// chain is the guard's schema, apart from the analysis store's (its own version table):
// either may move without the other. Append only.
var chain = pgstore.Chain{Table: "guard_schema_migrations", Migrations: []pgstore.Migration{
	{Version: 1, Name: "actions, planned canaries, history, open incidents, audit log", SQL: `
-- Keys are bytea: they hold client values (a service's name) that text could not (a NUL
-- byte), and they sort as bytes, as the embedded store's keys do. Records are the JSON
-- the embedded store keeps.
CREATE TABLE guard_actuations (
	key    bytea PRIMARY KEY,
	canary bytea NOT NULL, -- the key up to its first "/": the canary's id
	doc    json NOT NULL
);
CREATE INDEX guard_actuations_by_canary ON guard_actuations (canary, key);
CREATE TABLE guard_planned (
	canary bytea PRIMARY KEY,
	doc    json NOT NULL
);
CREATE SEQUENCE guard_audit_seq;
CREATE TABLE guard_audit (
	seq  bigint PRIMARY KEY,
	time bigint NOT NULL, -- Unix ns of the entry's time
	doc  json NOT NULL
);
CREATE INDEX guard_audit_by_time ON guard_audit (time);
CREATE TABLE guard_history (
	service      bytea NOT NULL,
	at           bigint NOT NULL, -- Unix ns
	actuator     bytea NOT NULL,
	canary       bytea NOT NULL,
	notification boolean NOT NULL,
	PRIMARY KEY (service, at, actuator, canary)
);
CREATE TABLE guard_open (
	service  bytea NOT NULL,
	actuator bytea NOT NULL,
	dedup    bytea NOT NULL,
	doc      json NOT NULL,
	PRIMARY KEY (service, actuator, dedup)
);
`},
	{Version: 2, Name: "unfinished actions indexed", SQL: `
-- Replicas look for a dead one's unfinished actions every lease: an index on them, so
-- that the look reads those only, however many finished ones the table holds.
ALTER TABLE guard_actuations ADD COLUMN unfinished boolean NOT NULL DEFAULT false;
UPDATE guard_actuations SET unfinished = (doc->>'state') IN ('awaiting_approval', 'pending', 'firing');
CREATE INDEX guard_actuations_unfinished ON guard_actuations (key) WHERE unfinished;
`},
}}

// SchemaVersion is the guard's schema version this canaryd migrates to.
func SchemaVersion() int { return len(chain.Migrations) }

// writeLock is the key of the advisory lock every Update takes first ("guardtx" in
// ASCII). It makes the guard's writers one at a time across every replica, as bbolt's
// single writer does in one process: a claim and its breaker check, or a plan and its
// audit entries, never interleave with another replica's. The guard writes a few times
// per action, so one queue is cheap, and no transaction is ever retried for a
// serialization failure.
const writeLock = 0x6775617264747878

// Store is the guard's Store in PostgreSQL, safe for concurrent use.
type Store struct{ pool *pgxpool.Pool }

var (
	_ guard.Store        = (*Store)(nil)
	_ guard.UnfinishedTx = pgTx{}
)

// Open migrates the guard's tables in the database of pool (the analysis store's,
// (*pgstore.Store).Pool()) and returns the store on it; ctx bounds the migration.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if _, _, err := pgstore.Migrate(ctx, pool, chain); err != nil {
		return nil, fmt.Errorf("guard store: %w", err)
	}
	return &Store{pool: pool}, nil
}

// View runs fn in a read-only transaction on one snapshot of the database.
func (s *Store) View(ctx context.Context, fn func(guard.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(pgTx{ctx: ctx, tx: tx}) })
}

// Update runs fn in a write transaction, after every other replica's.
func (s *Store) Update(ctx context.Context, fn func(guard.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(writeLock)); err != nil {
			return fmt.Errorf("guard store: lock: %w", err)
		}
		return fn(pgTx{ctx: ctx, tx: tx})
	})
}

// pgTx is one transaction. The guard's Tx methods take no context (bbolt's need none):
// the transaction's own bounds them.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pgTx) exec(sql string, args ...any) error {
	_, err := t.tx.Exec(t.ctx, sql, args...)
	return err
}

func canaryOf(key string) string {
	id, _, _ := strings.Cut(key, "/")
	return id
}

func decodeActuation(doc []byte) (*guard.Actuation, error) {
	var a guard.Actuation
	if err := json.Unmarshal(doc, &a); err != nil {
		return nil, fmt.Errorf("decode action: %w", err)
	}
	return &a, nil
}

func (t pgTx) Actuation(key string) (*guard.Actuation, error) {
	var doc []byte
	err := t.tx.QueryRow(t.ctx, "SELECT doc FROM guard_actuations WHERE key = $1", []byte(key)).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, guard.ErrNoActuation
	}
	if err != nil {
		return nil, err
	}
	return decodeActuation(doc)
}

func (t pgTx) PutActuation(a *guard.Actuation) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode action %s: %w", a.Key, err)
	}
	return t.exec(`INSERT INTO guard_actuations (key, canary, doc, unfinished) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc, unfinished = EXCLUDED.unfinished`,
		[]byte(a.Key), []byte(canaryOf(a.Key)), doc, !a.State.Final())
}

func (t pgTx) DeleteActuation(key string) error {
	return t.exec("DELETE FROM guard_actuations WHERE key = $1", []byte(key))
}

func (t pgTx) actuations(sql string, args ...any) ([]*guard.Actuation, error) {
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	out := make([]*guard.Actuation, 0, len(docs))
	for _, d := range docs {
		a, err := decodeActuation(d)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (t pgTx) CanaryActuations(canaryID string) ([]*guard.Actuation, error) {
	out, err := t.actuations("SELECT doc FROM guard_actuations WHERE canary = $1 ORDER BY key", []byte(canaryID))
	if len(out) == 0 {
		out = nil // as the embedded store answers
	}
	return out, err
}

func (t pgTx) EachActuation(fn func(*guard.Actuation) error) error {
	all, err := t.actuations("SELECT doc FROM guard_actuations ORDER BY key")
	if err != nil {
		return err
	}
	for _, a := range all {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// EachUnfinished calls fn with the actions not in a final state, from their index.
func (t pgTx) EachUnfinished(fn func(*guard.Actuation) error) error {
	all, err := t.actuations("SELECT doc FROM guard_actuations WHERE unfinished ORDER BY key")
	if err != nil {
		return err
	}
	for _, a := range all {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (t pgTx) Planned(canaryID string) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(t.ctx, "SELECT EXISTS (SELECT 1 FROM guard_planned WHERE canary = $1)", []byte(canaryID)).Scan(&ok)
	return ok, err
}

func (t pgTx) MarkPlanned(canaryID string, r guard.PlannedRecord) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode planned %s: %w", canaryID, err)
	}
	return t.exec(`INSERT INTO guard_planned (canary, doc) VALUES ($1, $2)
		ON CONFLICT (canary) DO UPDATE SET doc = EXCLUDED.doc`, []byte(canaryID), doc)
}

func (t pgTx) AppendAudit(e *guard.Entry) error {
	var seq int64
	if err := t.tx.QueryRow(t.ctx, "SELECT nextval('guard_audit_seq')").Scan(&seq); err != nil {
		return err
	}
	e.Seq = uint64(seq)
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	return t.exec("INSERT INTO guard_audit (seq, time, doc) VALUES ($1, $2, $3)", seq, nanos(e.Time), doc)
}

// nanos is t in Unix ns, clamped to what int64 holds.
func nanos(t time.Time) int64 {
	switch {
	case t.Year() < 1678:
		return -1 << 63
	case t.Year() > 2261:
		return 1<<63 - 1
	}
	return t.UnixNano()
}

func (t pgTx) Audit(ctx context.Context, q guard.Query) ([]guard.Entry, error) {
	sql := "SELECT doc FROM guard_audit WHERE true"
	var args []any
	if q.Before > 0 {
		args = append(args, int64(min(q.Before, 1<<63-1)))
		sql += fmt.Sprintf(" AND seq < $%d", len(args))
	}
	if !q.Since.IsZero() {
		args = append(args, nanos(q.Since))
		sql += fmt.Sprintf(" AND time >= $%d", len(args))
	}
	sql += " ORDER BY seq DESC"
	rows, err := t.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []guard.Entry{}
	for len(out) < q.Limit && rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var e guard.Entry
		if err := json.Unmarshal(doc, &e); err != nil {
			return nil, fmt.Errorf("decode audit entry: %w", err)
		}
		if q.Match(&e) {
			out = append(out, e)
		}
	}
	rows.Close()
	return out, rows.Err()
}

func (t pgTx) PruneAudit(cutoff time.Time) error {
	return t.exec(`DELETE FROM guard_audit WHERE seq IN (
		SELECT seq FROM guard_audit WHERE time < $1 ORDER BY seq LIMIT 10000)`, nanos(cutoff))
}

func (t pgTx) History(service string, from, keep time.Time) ([]guard.Fired, error) {
	svc := []byte(service)
	if err := t.exec("DELETE FROM guard_history WHERE service = $1 AND at < $2", svc, nanos(keep)); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx, `SELECT at, actuator, canary, notification FROM guard_history
		WHERE service = $1 AND at >= $2 ORDER BY at, actuator, canary`, svc, max(nanos(from), nanos(keep)))
	if err != nil {
		return nil, err
	}
	var out []guard.Fired
	var at int64
	var act, canary []byte
	var note bool
	_, err = pgx.ForEachRow(rows, []any{&at, &act, &canary, &note}, func() error {
		out = append(out, guard.Fired{Time: time.Unix(0, at), Actuator: string(act), Canary: string(canary), Notification: note})
		return nil
	})
	return out, err
}

func (t pgTx) AddHistory(service string, f guard.Fired) error {
	return t.exec(`INSERT INTO guard_history (service, at, actuator, canary, notification) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, []byte(service), nanos(f.Time), []byte(f.Actuator), []byte(f.Canary), f.Notification)
}

func (t pgTx) OpenIncidents(service string) (map[string]map[string]guard.OpenIncident, error) {
	rows, err := t.tx.Query(t.ctx, "SELECT actuator, dedup, doc FROM guard_open WHERE service = $1 ORDER BY actuator, dedup", []byte(service))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]guard.OpenIncident{}
	var act, dedup, doc []byte
	_, err = pgx.ForEachRow(rows, []any{&act, &dedup, &doc}, func() error {
		var r guard.OpenIncident
		if err := json.Unmarshal(doc, &r); err != nil {
			return fmt.Errorf("decode open incident: %w", err)
		}
		if out[string(act)] == nil {
			out[string(act)] = map[string]guard.OpenIncident{}
		}
		out[string(act)][string(dedup)] = r
		return nil
	})
	return out, err
}

func (t pgTx) PutOpen(service, actuator, dedup string, r guard.OpenIncident) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode open incident: %w", err)
	}
	return t.exec(`INSERT INTO guard_open (service, actuator, dedup, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (service, actuator, dedup) DO UPDATE SET doc = EXCLUDED.doc`,
		[]byte(service), []byte(actuator), []byte(dedup), doc)
}

func (t pgTx) DeleteOpen(service, actuator, dedup string) error {
	return t.exec("DELETE FROM guard_open WHERE service = $1 AND actuator = $2 AND dedup = $3",
		[]byte(service), []byte(actuator), []byte(dedup))
}
