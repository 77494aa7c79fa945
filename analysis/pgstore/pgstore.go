// Package pgstore is the analysis.Store on PostgreSQL (github.com/jackc/pgx/v5): the
// canaries, interval results, actions and analysis snapshots in tables of one database,
// their schema created and migrated at Open. It owns the tables and the transactions;
// it never decides anything about a canary (mutations come from the caller).
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
)

// IsURL reports whether storage names a PostgreSQL database (postgres:// or
// postgresql://) rather than a file.
func IsURL(storage string) bool {
	s := strings.ToLower(storage)
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Store is a PostgreSQL-backed analysis.Store, safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	url  string // redacted
}

var (
	_ analysis.Store        = (*Store)(nil)
	_ analysis.SummaryStore = (*Store)(nil)
)

// DefaultConnectTimeout bounds reaching the database at Open.
const DefaultConnectTimeout = 10 * time.Second

// Options say how to open the store.
type Options struct {
	// ConnectTimeout bounds the first connection and the migrations' wait for their lock
	// (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	Logger         *zap.Logger
}

// ConnectError is a database that could not be reached or used at Open. It names the
// URL without its password.
type ConnectError struct {
	URL string // redacted
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot use PostgreSQL at %s: %v", e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Open connects to the database at rawURL (postgres://user:password@host:port/db?...,
// any parameter pgx takes, e.g. sslmode, pool_max_conns), checks that it answers, and
// migrates its schema to this version's (SchemaVersion), refusing one that is newer.
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	safe := Redact(rawURL)
	pw := password(rawURL)
	fail := func(err error) error { return &ConnectError{URL: safe, Err: scrubbed{err, pw}} }
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fail(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "canaryd"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	from, to, err := migrate(cctx, pool, migrations())
	if err != nil {
		pool.Close()
		return nil, fail(err)
	}
	if from != to {
		o.Logger.Info("store schema migrated", zap.String("url", safe), zap.Int("from", from), zap.Int("to", to))
	}
	return &Store{pool: pool, url: safe}, nil
}

// scrubbed is an error whose text never holds the password (the driver's own messages
// do not quote it; this makes sure).
type scrubbed struct {
	err error
	pw  string
}

func (s scrubbed) Error() string {
	msg := s.err.Error()
	if s.pw != "" {
		msg = strings.ReplaceAll(msg, s.pw, "<secret>")
	}
	return msg
}

func (s scrubbed) Unwrap() error { return s.err }

func password(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// Redact returns the URL without its password (in the userinfo or as a parameter), for
// logs and errors; the user, host, database and other parameters stay. A URL that does
// not parse loses its whole userinfo.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if scheme, rest, ok := strings.Cut(raw, "://"); ok {
			if at := strings.LastIndexByte(rest, '@'); at >= 0 {
				return scheme + "://<secret>" + rest[at:]
			}
		}
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.User(u.User.Username())
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "<secret>")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// URL is the store's URL without its password.
func (s *Store) URL() string { return s.url }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// Close closes every connection.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// tx runs fn in a transaction, again when PostgreSQL reports a serialization failure or
// a deadlock (which is why a Mutation may run more than once).
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range 3 {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40001" && pe.Code != "40P01") {
			return err
		}
	}
	return err
}

// row is a canary's columns beside its JSON.
func row(c *analysis.Canary) (created int64, status string, ended *int64, doc []byte, err error) {
	doc, err = json.Marshal(c)
	if err != nil {
		return 0, "", nil, nil, fmt.Errorf("encode canary %s: %w", c.ID, err)
	}
	if c.Status.Final() {
		e := analysis.CreatedNanos(c.Ended())
		ended = &e
	}
	return analysis.CreatedNanos(c.CreatedAt), string(c.Status), ended, doc, nil
}

func decodeCanary(doc []byte) (*analysis.Canary, error) {
	var c analysis.Canary
	if err := json.Unmarshal(doc, &c); err != nil {
		return nil, fmt.Errorf("decode canary: %w", err)
	}
	return &c, nil
}

// Create stores a new canary and its analysis snapshot.
func (s *Store) Create(ctx context.Context, c *analysis.Canary, src []byte) error {
	created, status, ended, doc, err := row(c)
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	if src == nil {
		src = []byte{}
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO analyses (hash, source) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING", c.AnalysisHash, src); err != nil {
			return err
		}
		// A key another canary holds fails the unique index canaries_by_key; the id's
		// conflict is checked without an error, as before.
		tag, err := tx.Exec(ctx, "INSERT INTO canaries (id, created, status, ended, doc, key) VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')) ON CONFLICT (id) DO NOTHING",
			c.ID, created, status, ended, doc, c.Key)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "canaries_by_key" {
			return analysis.ErrKeyExists
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return analysis.ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: create canary %s: %w", c.ID, err)
	}
	return nil
}

// Get returns one canary.
func (s *Store) Get(ctx context.Context, id string) (*analysis.Canary, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, "SELECT doc FROM canaries WHERE id = $1", id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		err = analysis.ErrNotFound
	}
	var c *analysis.Canary
	if err == nil {
		c, err = decodeCanary(doc)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get canary %s: %w", id, err)
	}
	return c, nil
}

// GetByKey returns the canary that holds key.
func (s *Store) GetByKey(ctx context.Context, key string) (*analysis.Canary, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, "SELECT doc FROM canaries WHERE key = $1", key).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		err = analysis.ErrNotFound
	}
	var c *analysis.Canary
	if err == nil {
		c, err = decodeCanary(doc)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get canary by key: %w", err)
	}
	return c, nil
}

// List returns the canaries with a status (all for ""), oldest first.
func (s *Store) List(ctx context.Context, status analysis.Status) ([]*analysis.Canary, error) {
	q, args := "SELECT doc FROM canaries ORDER BY created, id", []any(nil)
	if status != "" {
		q, args = "SELECT doc FROM canaries WHERE status = $1 ORDER BY created, id", []any{string(status)}
	}
	out, err := s.canaries(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list canaries: %w", err)
	}
	return out, nil
}

func (s *Store) canaries(ctx context.Context, q string, args ...any) ([]*analysis.Canary, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	out := make([]*analysis.Canary, 0, len(docs))
	for _, d := range docs {
		c, err := decodeCanary(d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ListPage returns a page of the list, newest first, from the index on (created, id)
// (with the status first when the page is of one status).
func (s *Store) ListPage(ctx context.Context, q analysis.ListQuery) (analysis.Page, error) {
	if q.Limit <= 0 {
		return analysis.Page{}, fmt.Errorf("pgstore: list page: limit %d must be > 0", q.Limit)
	}
	var where []string
	var args []any
	if q.Status != "" {
		args = append(args, string(q.Status))
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	if q.Key != "" {
		args = append(args, q.Key)
		where = append(where, fmt.Sprintf("key = $%d", len(args)))
	}
	if q.After != nil {
		args = append(args, q.After.Created, q.After.ID)
		where = append(where, fmt.Sprintf("(created, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	sql := "SELECT doc FROM canaries"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	// One more than the page: whether it exists says whether there is a next page.
	args = append(args, q.Limit+1)
	sql += fmt.Sprintf(" ORDER BY created DESC, id DESC LIMIT $%d", len(args))
	cs, err := s.canaries(ctx, sql, args...)
	if err != nil {
		return analysis.Page{}, fmt.Errorf("pgstore: list page: %w", err)
	}
	p := analysis.Page{Canaries: cs}
	if len(cs) > q.Limit {
		p.Canaries = cs[:q.Limit]
		next := analysis.CursorOf(p.Canaries[q.Limit-1])
		p.Next = &next
	}
	return p, nil
}

// CountByStatus counts the canaries by status.
func (s *Store) CountByStatus(ctx context.Context) (map[analysis.Status]int, error) {
	rows, err := s.pool.Query(ctx, "SELECT status, count(*) FROM canaries GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("pgstore: count canaries: %w", err)
	}
	out := map[analysis.Status]int{}
	var st string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		out[analysis.Status(st)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: count canaries: %w", err)
	}
	return out, nil
}

// DeleteEnded deletes up to max final canaries that ended before the given time, oldest
// first (in creation order, as the embedded store), with their intervals and actions
// (ON DELETE CASCADE), in one transaction. A canary another transaction holds is left for
// the next pass.
func (s *Store) DeleteEnded(ctx context.Context, before time.Time, max int) ([]*analysis.Canary, error) {
	var out []*analysis.Canary
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM canaries WHERE id IN (
			SELECT id FROM canaries WHERE ended < $1 ORDER BY created, id LIMIT $2 FOR UPDATE SKIP LOCKED
		) RETURNING doc`, analysis.CreatedNanos(before), max)
		if err != nil {
			return err
		}
		docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return err
		}
		out = out[:0]
		for _, d := range docs {
			c, err := decodeCanary(d)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: delete ended canaries: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return analysis.CursorOf(out[j]).Before(analysis.CursorOf(out[i])) })
	return out, nil
}

// mutate applies fn to the canary id, locked for the rest of tx, and records its actions.
func mutate(ctx context.Context, tx pgx.Tx, id string, fn analysis.Mutation) (*analysis.Canary, error) {
	var doc []byte
	err := tx.QueryRow(ctx, "SELECT doc FROM canaries WHERE id = $1 FOR UPDATE", id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, analysis.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c, err := decodeCanary(doc)
	if err != nil {
		return nil, err
	}
	key := c.Key
	actions, err := fn(c)
	if err != nil {
		return nil, err
	}
	c.Key = key // a key never changes: its column is written once
	created, status, ended, doc, err := row(c)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "UPDATE canaries SET created = $2, status = $3, ended = $4, doc = $5 WHERE id = $1",
		id, created, status, ended, doc); err != nil {
		return nil, err
	}
	for i := range actions {
		a := actions[i]
		if err := tx.QueryRow(ctx, "SELECT nextval('actions_seq')").Scan(&a.Seq); err != nil {
			return nil, err
		}
		a.CanaryID = id
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encode action: %w", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO actions (seq, canary_id, doc) VALUES ($1, $2, $3)", a.Seq, id, b); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Update applies fn to a canary in one transaction, the canary's row locked.
func (s *Store) Update(ctx context.Context, id string, fn analysis.Mutation) (*analysis.Canary, error) {
	var out *analysis.Canary
	err := s.tx(ctx, func(tx pgx.Tx) error {
		c, err := mutate(ctx, tx, id, fn)
		out = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: update canary %s: %w", id, err)
	}
	return out, nil
}

// RecordInterval stores an interval result with its canary's new state. The canary's
// row is locked first, so two writers of one interval queue up and the second finds it
// recorded.
func (s *Store) RecordInterval(ctx context.Context, r *analysis.IntervalResult, fn analysis.Mutation) (*analysis.Canary, error) {
	if r.Index < 1 {
		return nil, fmt.Errorf("pgstore: record interval %d of %s: index must be >= 1", r.Index, r.CanaryID)
	}
	summary := *r
	summary.Points = nil
	doc, err := json.Marshal(&summary)
	if err != nil {
		return nil, fmt.Errorf("pgstore: encode interval %d of %s: %w", r.Index, r.CanaryID, err)
	}
	var points []byte // NULL without points
	if len(r.Points) > 0 {
		if points, err = json.Marshal(r.Points); err != nil {
			return nil, fmt.Errorf("pgstore: encode interval %d of %s: %w", r.Index, r.CanaryID, err)
		}
	}
	var out *analysis.Canary
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var locked string
		err := tx.QueryRow(ctx, "SELECT id FROM canaries WHERE id = $1 FOR UPDATE", r.CanaryID).Scan(&locked)
		if errors.Is(err, pgx.ErrNoRows) {
			return analysis.ErrNotFound
		}
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM intervals WHERE canary_id = $1 AND idx = $2)", r.CanaryID, r.Index).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return analysis.ErrIntervalExists
		}
		c, err := mutate(ctx, tx, r.CanaryID, fn)
		if err != nil {
			return err
		}
		out = c
		_, err = tx.Exec(ctx, "INSERT INTO intervals (canary_id, idx, doc, points) VALUES ($1, $2, $3, $4)", r.CanaryID, r.Index, doc, points)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: record interval %d of %s: %w", r.Index, r.CanaryID, err)
	}
	return out, nil
}

// Intervals returns a canary's intervals in index order.
func (s *Store) Intervals(ctx context.Context, id string) ([]analysis.IntervalResult, error) {
	return s.intervals(ctx, id, true)
}

// IntervalSummaries is Intervals without the points, which are never read.
func (s *Store) IntervalSummaries(ctx context.Context, id string) ([]analysis.IntervalResult, error) {
	return s.intervals(ctx, id, false)
}

func (s *Store) intervals(ctx context.Context, id string, withPoints bool) ([]analysis.IntervalResult, error) {
	q := "SELECT doc, NULL::json FROM intervals WHERE canary_id = $1 ORDER BY idx"
	if withPoints {
		q = "SELECT doc, points FROM intervals WHERE canary_id = $1 ORDER BY idx"
	}
	rows, err := s.pool.Query(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("pgstore: intervals of %s: %w", id, err)
	}
	var out []analysis.IntervalResult
	var doc, points []byte
	_, err = pgx.ForEachRow(rows, []any{&doc, &points}, func() error {
		var r analysis.IntervalResult
		if err := json.Unmarshal(doc, &r); err != nil {
			return fmt.Errorf("decode interval: %w", err)
		}
		if points != nil {
			if err := json.Unmarshal(points, &r.Points); err != nil {
				return fmt.Errorf("decode interval %d's points: %w", r.Index, err)
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: intervals of %s: %w", id, err)
	}
	return out, nil
}

// Actions returns a canary's actions in the order they were recorded.
func (s *Store) Actions(ctx context.Context, id string) ([]analysis.Action, error) {
	rows, err := s.pool.Query(ctx, "SELECT doc FROM actions WHERE canary_id = $1 ORDER BY seq", id)
	if err != nil {
		return nil, fmt.Errorf("pgstore: actions of %s: %w", id, err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("pgstore: actions of %s: %w", id, err)
	}
	out := make([]analysis.Action, 0, len(docs))
	for _, d := range docs {
		var a analysis.Action
		if err := json.Unmarshal(d, &a); err != nil {
			return nil, fmt.Errorf("pgstore: actions of %s: decode: %w", id, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Analysis returns an analysis snapshot by its hash.
func (s *Store) Analysis(ctx context.Context, hash string) ([]byte, error) {
	var src []byte
	err := s.pool.QueryRow(ctx, "SELECT source FROM analyses WHERE hash = $1", hash).Scan(&src)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errors.New("no such analysis snapshot")
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: analysis %s: %w", hash, err)
	}
	return src, nil
}

// Pool is the store's connection pool, for the safety layer's PostgreSQL store and the
// scheduler's leases, which share the database (and its connections) with it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
