package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canaryd/canaryd/analysis"
)

// Leases are one replica's leases on running canaries, rows of the leases table whose
// expiry is the database's clock (now() + TTL): a replica whose clock is off by any
// amount neither steals a lease early nor keeps one late. A replica that stops renewing
// (it died, it lost the database) loses its leases TTL after its last renewal, and the
// others take them.
type Leases struct {
	s     *Store
	owner string
	ttl   time.Duration
}

var _ analysis.Leases = (*Leases)(nil)

// Leases returns replica owner's leases, each lasting ttl after its last renewal. owner
// must be unique to the process (a restarted replica is a new owner).
func (s *Store) Leases(owner string, ttl time.Duration) *Leases {
	return &Leases{s: s, owner: owner, ttl: ttl}
}

// TTL is how long a lease lasts after its last renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Owner is the replica's name in the leases table.
func (l *Leases) Owner() string { return l.owner }

func (l *Leases) interval() string { return fmt.Sprintf("%d microseconds", l.ttl.Microseconds()) }

// Acquire takes the lease of canary id unless a live replica holds it.
func (l *Leases) Acquire(ctx context.Context, id string) (bool, error) {
	var owner string
	err := l.s.pool.QueryRow(ctx, `INSERT INTO leases (canary_id, owner, expires) VALUES ($1, $2, now() + $3::interval)
		ON CONFLICT (canary_id) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires
		WHERE leases.expires <= now() OR leases.owner = EXCLUDED.owner
		RETURNING owner`, id, l.owner, l.interval()).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: acquire lease of %s: %w", id, err)
	}
	return true, nil
}

// Release gives up the lease of canary id, if this replica holds it.
func (l *Leases) Release(ctx context.Context, id string) error {
	if _, err := l.s.pool.Exec(ctx, "DELETE FROM leases WHERE canary_id = $1 AND owner = $2", id, l.owner); err != nil {
		return fmt.Errorf("pgstore: release lease of %s: %w", id, err)
	}
	return nil
}

// ReleaseAll gives up every lease of this replica (a clean shutdown: the others take its
// canaries at their next renewal rather than after a TTL). Its heartbeat stays: its
// actions in flight are still its own until it expires.
func (l *Leases) ReleaseAll(ctx context.Context) error {
	if _, err := l.s.pool.Exec(ctx, "DELETE FROM leases WHERE owner = $1", l.owner); err != nil {
		return fmt.Errorf("pgstore: release leases: %w", err)
	}
	return nil
}

// Renew says this replica is alive, drops its leases of ended canaries, extends the
// others, and takes free or expired leases of running canaries up to its share (the
// running canaries divided by the live replicas, rounded up); a replica holding more
// than one over its share (one came back, or joined) frees the excess for the others. It
// returns the canaries it holds.
func (l *Leases) Renew(ctx context.Context) (analysis.LeaseState, error) {
	var st analysis.LeaseState
	err := pgx.BeginFunc(ctx, l.s.pool, func(tx pgx.Tx) error {
		st = analysis.LeaseState{}
		ttl := l.interval()
		if _, err := tx.Exec(ctx, `INSERT INTO replicas (id, expires) VALUES ($1, now() + $2::interval)
			ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires`, l.owner, ttl); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM replicas WHERE expires < now() - interval '1 hour'"); err != nil {
			return fmt.Errorf("forget old replicas: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM leases l USING canaries c
			WHERE l.owner = $1 AND l.canary_id = c.id AND c.status <> 'running'`, l.owner); err != nil {
			return fmt.Errorf("drop leases of ended canaries: %w", err)
		}
		tag, err := tx.Exec(ctx, "UPDATE leases SET expires = now() + $2::interval WHERE owner = $1", l.owner, ttl)
		if err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		mine := int(tag.RowsAffected())
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM replicas WHERE expires > now()),
			(SELECT count(*) FROM canaries WHERE status = 'running')`).Scan(&st.Replicas, &st.Running); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		share := (st.Running + max(st.Replicas, 1) - 1) / max(st.Replicas, 1)
		switch {
		case mine < share:
			// A lease another replica takes at the same time conflicts on the key; the
			// second's update then sees an unexpired lease and leaves it.
			if _, err := tx.Exec(ctx, `INSERT INTO leases (canary_id, owner, expires)
				SELECT c.id, $1, now() + $2::interval FROM canaries c
				WHERE c.status = 'running' AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.canary_id = c.id AND l.expires > now())
				ORDER BY c.created, c.id LIMIT $3
				ON CONFLICT (canary_id) DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires
				WHERE leases.expires <= now()`, l.owner, ttl, share-mine); err != nil {
				return fmt.Errorf("take leases: %w", err)
			}
		case mine > share+1:
			if _, err := tx.Exec(ctx, `DELETE FROM leases WHERE canary_id IN (
				SELECT canary_id FROM leases WHERE owner = $1 ORDER BY canary_id DESC LIMIT $2)`, l.owner, mine-share); err != nil {
				return fmt.Errorf("free leases: %w", err)
			}
		}
		rows, err := tx.Query(ctx, "SELECT canary_id FROM leases WHERE owner = $1 AND expires > now() ORDER BY canary_id", l.owner)
		if err != nil {
			return fmt.Errorf("held: %w", err)
		}
		st.Held, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return analysis.LeaseState{}, fmt.Errorf("pgstore: renew leases: %w", err)
	}
	return st, nil
}

// Alive reports whether replica owner renewed its leases less than a TTL ago (its own
// TTL, by the database's clock).
func (l *Leases) Alive(ctx context.Context, owner string) (bool, error) {
	var ok bool
	err := l.s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM replicas WHERE id = $1 AND expires > now())", owner).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("pgstore: is replica %s alive: %w", owner, err)
	}
	return ok, nil
}

// RunningByAnalysis counts the running canaries of each analysis (every replica's), for
// server.max_running_per_analysis across replicas.
func (s *Store) RunningByAnalysis(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, "SELECT doc->>'analysis', count(*) FROM canaries WHERE status = 'running' GROUP BY 1")
	if err != nil {
		return nil, fmt.Errorf("pgstore: count running canaries: %w", err)
	}
	out := map[string]int{}
	var name string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil }); err != nil {
		return nil, fmt.Errorf("pgstore: count running canaries: %w", err)
	}
	return out, nil
}
