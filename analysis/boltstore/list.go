package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canaryd/canaryd/analysis"
)

// bktByCreated indexes the canaries in list order: the key is the creation time (Unix
// nanoseconds, sign bit flipped so that bytes sort as numbers) and the id, the value the
// status. A page of the list and the counts read this index, and decode only the canaries
// they return.
var bktByCreated = []byte("canaries_by_created")

func createdKey(c analysis.Cursor) []byte {
	k := make([]byte, 8, 8+len(c.ID))
	binary.BigEndian.PutUint64(k, uint64(c.Created)^(1<<63))
	return append(k, c.ID...)
}

func cursorOfKey(k []byte) analysis.Cursor {
	return analysis.Cursor{Created: int64(binary.BigEndian.Uint64(k[:8]) ^ (1 << 63)), ID: string(k[8:])}
}

// indexCanary keeps the index entry of c in step with it; old is the canary as it was
// stored (nil for a new one).
func indexCanary(tx *bolt.Tx, old, c *analysis.Canary) error {
	ib := tx.Bucket(bktByCreated)
	if old != nil && analysis.CursorOf(old) != analysis.CursorOf(c) {
		if err := ib.Delete(createdKey(analysis.CursorOf(old))); err != nil {
			return err
		}
	}
	if old != nil && old.Status == c.Status && analysis.CursorOf(old) == analysis.CursorOf(c) {
		return nil
	}
	return ib.Put(createdKey(analysis.CursorOf(c)), []byte(c.Status))
}

// ensureIndex builds the index of a file written before it existed (or by a version that
// did not keep it), in one pass over the canaries.
func ensureIndex(tx *bolt.Tx) error {
	cb := tx.Bucket(bktCanaries)
	ib := tx.Bucket(bktByCreated)
	if ib != nil && ib.Stats().KeyN == cb.Stats().KeyN {
		return nil
	}
	if ib != nil {
		if err := tx.DeleteBucket(bktByCreated); err != nil {
			return err
		}
	}
	ib, err := tx.CreateBucket(bktByCreated)
	if err != nil {
		return err
	}
	return cb.ForEach(func(k, v []byte) error {
		var c analysis.Canary
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode canary %s: %w", k, err)
		}
		return ib.Put(createdKey(analysis.CursorOf(&c)), []byte(c.Status))
	})
}

// ListPage returns a page of the list, newest first, walking the index backwards from
// the cursor.
func (s *Store) ListPage(ctx context.Context, q analysis.ListQuery) (analysis.Page, error) {
	if err := ctx.Err(); err != nil {
		return analysis.Page{}, err
	}
	if q.Limit <= 0 {
		return analysis.Page{}, fmt.Errorf("boltstore: list page: limit %d must be > 0", q.Limit)
	}
	var p analysis.Page
	err := s.db.View(func(tx *bolt.Tx) error {
		if q.Key != "" {
			cn, err := canaryByKey(tx, q.Key)
			if errors.Is(err, analysis.ErrNotFound) {
				return nil
			}
			p = analysis.KeyPage(cn, q)
			return err
		}
		c := tx.Bucket(bktByCreated).Cursor()
		var k, v []byte
		if q.After == nil {
			k, v = c.Last()
		} else {
			// Seek finds the first key at or after the cursor's; the page starts before it.
			if k, _ = c.Seek(createdKey(*q.After)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if q.Status != "" && string(v) != string(q.Status) {
				continue
			}
			if len(p.Canaries) == q.Limit {
				next := analysis.CursorOf(p.Canaries[len(p.Canaries)-1])
				p.Next = &next
				return nil
			}
			cn, err := getCanary(tx, string(k[8:]))
			if err != nil {
				return fmt.Errorf("canary %s: %w", k[8:], err)
			}
			p.Canaries = append(p.Canaries, cn)
		}
		return nil
	})
	if err != nil {
		return analysis.Page{}, fmt.Errorf("boltstore: list page: %w", err)
	}
	return p, nil
}

// CountByStatus counts the canaries by status from the index, decoding none.
func (s *Store) CountByStatus(ctx context.Context) (map[analysis.Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[analysis.Status]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktByCreated).ForEach(func(_, v []byte) error {
			out[analysis.Status(v)]++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: count canaries: %w", err)
	}
	return out, nil
}

// DeleteEnded deletes up to max final canaries that ended before the given time, oldest
// first, with their intervals and actions, in one transaction. A canary ends after it is
// created, so the walk of the index stops at the first one created after that time.
func (s *Store) DeleteEnded(ctx context.Context, before time.Time, max int) ([]*analysis.Canary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*analysis.Canary
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = out[:0] // a retried transaction starts over
		limit := analysis.CreatedNanos(before)
		c := tx.Bucket(bktByCreated).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			cur := cursorOfKey(k)
			if cur.Created >= limit {
				break
			}
			if !analysis.Status(v).Final() {
				continue
			}
			cn, err := getCanary(tx, cur.ID)
			if err != nil {
				return fmt.Errorf("canary %s: %w", cur.ID, err)
			}
			if cn.Ended().Before(before) {
				out = append(out, cn)
			}
		}
		for _, cn := range out {
			if err := tx.Bucket(bktByCreated).Delete(createdKey(analysis.CursorOf(cn))); err != nil {
				return err
			}
			if err := tx.Bucket(bktCanaries).Delete([]byte(cn.ID)); err != nil {
				return err
			}
			if cn.Key != "" {
				if err := tx.Bucket(bktByKey).Delete([]byte(cn.Key)); err != nil {
					return err
				}
			}
			for _, b := range [][]byte{bktIntervals, bktActions} {
				if err := deletePrefix(tx.Bucket(b), prefix(cn.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: delete ended canaries: %w", err)
	}
	return out, nil
}

// deletePrefix deletes every key of b that starts with p. The keys are collected first:
// deleting under a moving cursor skips entries.
func deletePrefix(b *bolt.Bucket, p []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
