// Package guardtest is the conformance test every guard.Store runs (the bbolt one and the
// PostgreSQL one), so the safety layer gets the same promises from both: what a Tx
// returns, in which order, that a transaction is all or nothing, and that writers never
// interleave. It only calls the guard.Store interface.
package guardtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/actuators/guard"
)

// Run checks a Store. open returns a store on a fresh, empty location, closed by the
// test's cleanups.
func Run(t *testing.T, open func(t *testing.T) guard.Store) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	update := func(t *testing.T, s guard.Store, fn func(guard.Tx) error) {
		t.Helper()
		if err := s.Update(t.Context(), fn); err != nil {
			t.Fatal(err)
		}
	}
	view := func(t *testing.T, s guard.Store, fn func(guard.Tx) error) {
		t.Helper()
		if err := s.View(t.Context(), fn); err != nil {
			t.Fatal(err)
		}
	}
	act := func(key string, st guard.State) *guard.Actuation {
		id, _, _ := strings.Cut(key, "/")
		done := t0.Add(time.Minute)
		return &guard.Actuation{Key: key, CanaryID: id, CanaryName: "web v2", Analysis: "golden", Service: "web",
			Trigger: guard.TriggerFail, Actuator: "rollback", Type: "webhook", State: st, Attempts: 1, MaxAttempts: 3,
			Request: &actuators.Request{Method: "POST", URL: "http://hook.test/rollback"}, Status: 200, Output: "ok",
			VerdictAt: t0, CreatedAt: t0, UpdatedAt: t0, DoneAt: &done,
			Event: actuators.Event{ID: id, Name: "web v2", Key: key, Actuator: "rollback", Trigger: guard.TriggerFail}}
	}

	t.Run("actions by key and by canary", func(t *testing.T) {
		s := open(t)
		want := act("ab/on_fail/rollback", guard.StateSucceeded)
		update(t, s, func(tx guard.Tx) error {
			// Inserted out of order; "abc" shares "ab"'s first letters but is another canary.
			for _, a := range []*guard.Actuation{act("abc/on_fail/rollback", guard.StatePending), act("ab/on_fail/notify", guard.StatePending),
				want, act("aa/on_pass/notify", guard.StateDryRun)} {
				if err := tx.PutActuation(a); err != nil {
					return err
				}
			}
			return nil
		})
		view(t, s, func(tx guard.Tx) error {
			got, err := tx.Actuation(want.Key)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back:\n got %+v\nwant %+v", got, want)
			}
			if _, err := tx.Actuation("zz/on_fail/rollback"); !errors.Is(err, guard.ErrNoActuation) {
				t.Errorf("missing key: want ErrNoActuation, got %v", err)
			}
			as, err := tx.CanaryActuations("ab")
			if err != nil {
				return err
			}
			if got := keys(as); got != "ab/on_fail/notify,ab/on_fail/rollback" {
				t.Errorf("canary ab's actions: %s", got)
			}
			if as, err := tx.CanaryActuations("nope"); err != nil || len(as) != 0 {
				t.Errorf("a canary without actions: %v, %v", as, err)
			}
			var all []*guard.Actuation
			if err := tx.EachActuation(func(a *guard.Actuation) error { all = append(all, a); return nil }); err != nil {
				return err
			}
			if got := keys(all); got != "aa/on_pass/notify,ab/on_fail/notify,ab/on_fail/rollback,abc/on_fail/rollback" {
				t.Errorf("every action: %s", got)
			}
			if u, ok := tx.(guard.UnfinishedTx); ok {
				var open []*guard.Actuation
				if err := u.EachUnfinished(func(a *guard.Actuation) error { open = append(open, a); return nil }); err != nil {
					return err
				}
				if got := keys(open); got != "ab/on_fail/notify,abc/on_fail/rollback" {
					t.Errorf("unfinished actions: %s", got)
				}
			}
			return nil
		})
		update(t, s, func(tx guard.Tx) error {
			a := act("ab/on_fail/notify", guard.StateFailed)
			a.Attempts, a.Error = 3, "receiver said 500"
			if err := tx.PutActuation(a); err != nil {
				return err
			}
			return tx.DeleteActuation("aa/on_pass/notify")
		})
		view(t, s, func(tx guard.Tx) error {
			got, err := tx.Actuation("ab/on_fail/notify")
			if err != nil || got.State != guard.StateFailed || got.Attempts != 3 || got.Error != "receiver said 500" {
				t.Errorf("overwritten action: %+v %v", got, err)
			}
			if _, err := tx.Actuation("aa/on_pass/notify"); !errors.Is(err, guard.ErrNoActuation) {
				t.Errorf("deleted action: %v", err)
			}
			if u, ok := tx.(guard.UnfinishedTx); ok {
				var open []*guard.Actuation
				if err := u.EachUnfinished(func(a *guard.Actuation) error { open = append(open, a); return nil }); err != nil {
					return err
				}
				if got := keys(open); got != "abc/on_fail/rollback" {
					t.Errorf("unfinished actions after one failed: %s", got)
				}
			}
			return nil
		})
	})

	t.Run("planned once", func(t *testing.T) {
		s := open(t)
		update(t, s, func(tx guard.Tx) error {
			if ok, err := tx.Planned("c1"); err != nil || ok {
				t.Errorf("before: %v %v", ok, err)
			}
			return tx.MarkPlanned("c1", guard.PlannedRecord{Time: t0, Trigger: guard.TriggerFail, Kind: "verdict"})
		})
		view(t, s, func(tx guard.Tx) error {
			for id, want := range map[string]bool{"c1": true, "c2": false, "c": false} {
				if ok, err := tx.Planned(id); err != nil || ok != want {
					t.Errorf("planned %s: %v %v, want %v", id, ok, err, want)
				}
			}
			return nil
		})
	})

	t.Run("audit log", func(t *testing.T) {
		s := open(t)
		var seqs []uint64
		update(t, s, func(tx guard.Tx) error {
			seqs = seqs[:0]
			for i := range 10 {
				e := &guard.Entry{Time: t0.Add(time.Duration(i) * time.Minute), Kind: guard.KindAction, Who: "canaryd",
					Canary: fmt.Sprintf("c%d", i%2), Outcome: "succeeded", Reason: fmt.Sprintf("entry %d", i)}
				if err := tx.AppendAudit(e); err != nil {
					return err
				}
				seqs = append(seqs, e.Seq)
			}
			return nil
		})
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("sequence numbers not increasing: %v", seqs)
			}
		}
		audit := func(q guard.Query) string {
			t.Helper()
			var out []string
			view(t, s, func(tx guard.Tx) error {
				es, err := tx.Audit(t.Context(), q)
				for _, e := range es {
					out = append(out, strings.TrimPrefix(e.Reason, "entry "))
				}
				return err
			})
			return strings.Join(out, ",")
		}
		cases := []struct {
			name string
			q    guard.Query
			want string
		}{
			{"newest first, limited", guard.Query{Limit: 3}, "9,8,7"},
			{"one canary", guard.Query{Canary: "c1", Limit: 100}, "9,7,5,3,1"},
			{"before a sequence number", guard.Query{Before: seqs[4], Limit: 100}, "3,2,1,0"},
			{"since", guard.Query{Since: t0.Add(7 * time.Minute), Limit: 100}, "9,8,7"},
			{"until, exclusive", guard.Query{Until: t0.Add(2 * time.Minute), Limit: 100}, "1,0"},
			{"no match", guard.Query{Outcome: "failed", Limit: 100}, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if got := audit(tc.q); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
		update(t, s, func(tx guard.Tx) error { return tx.PruneAudit(t0.Add(6 * time.Minute)) })
		if got := audit(guard.Query{Limit: 100}); got != "9,8,7,6" {
			t.Errorf("after pruning before 6: %q", got)
		}
		var e guard.Entry
		update(t, s, func(tx guard.Tx) error {
			e = guard.Entry{Time: t0.Add(time.Hour), Kind: guard.KindReload, Outcome: "ok"}
			return tx.AppendAudit(&e)
		})
		if e.Seq <= seqs[len(seqs)-1] {
			t.Errorf("an entry after pruning got seq %d, not after %d", e.Seq, seqs[len(seqs)-1])
		}
	})

	t.Run("history", func(t *testing.T) {
		s := open(t)
		// Hostile service names: a NUL byte, LIKE's wildcards, quotes.
		for _, svc := range []string{"web", "we%", `w'eb"\x`, "a\x00b"} {
			t.Run(fmt.Sprintf("%q", svc), func(t *testing.T) {
				update(t, s, func(tx guard.Tx) error {
					for i, f := range []guard.Fired{
						{Time: t0.Add(2 * time.Minute), Actuator: "rollback", Canary: "c2"},
						{Time: t0, Actuator: "rollback", Canary: "c0"},
						{Time: t0.Add(time.Minute), Actuator: "notify", Canary: "c1", Notification: true},
						{Time: t0.Add(3 * time.Minute), Actuator: "rollback", Canary: "c3"},
					} {
						f.Canary += svc[:1] // tell the services' entries apart
						if err := tx.AddHistory(svc, f); err != nil {
							return fmt.Errorf("add %d: %w", i, err)
						}
					}
					return nil
				})
				var got []guard.Fired
				update(t, s, func(tx guard.Tx) error {
					var err error
					got, err = tx.History(svc, t0.Add(time.Minute), t0.Add(-time.Hour))
					return err
				})
				p := svc[:1]
				want := []guard.Fired{
					{Time: t0.Add(time.Minute), Actuator: "notify", Canary: "c1" + p, Notification: true},
					{Time: t0.Add(2 * time.Minute), Actuator: "rollback", Canary: "c2" + p},
					{Time: t0.Add(3 * time.Minute), Actuator: "rollback", Canary: "c3" + p},
				}
				if !sameFired(got, want) {
					t.Errorf("from t0+1m:\n got %+v\nwant %+v", got, want)
				}
				// keep drops what is older for good: a later look from before it finds nothing there.
				update(t, s, func(tx guard.Tx) error {
					got, err := tx.History(svc, t0.Add(3*time.Minute), t0.Add(2*time.Minute))
					if !sameFired(got, want[2:]) {
						t.Errorf("from t0+3m keeping t0+2m: %+v", got)
					}
					return err
				})
				update(t, s, func(tx guard.Tx) error {
					got, err := tx.History(svc, t0.Add(-time.Hour), t0.Add(-time.Hour))
					if !sameFired(got, want[1:]) {
						t.Errorf("after the drop: %+v", got)
					}
					return err
				})
			})
		}
		update(t, s, func(tx guard.Tx) error {
			got, err := tx.History("nobody", t0.Add(-time.Hour), t0.Add(-time.Hour))
			if len(got) != 0 {
				t.Errorf("a service without history: %+v", got)
			}
			return err
		})
	})

	t.Run("open incidents", func(t *testing.T) {
		s := open(t)
		r := func(c string) guard.OpenIncident {
			return guard.OpenIncident{Canary: c, Key: c + "/on_fail/page", Time: t0}
		}
		update(t, s, func(tx guard.Tx) error {
			for _, o := range []struct{ svc, act, dedup, canary string }{
				{"web", "page", "d1", "c1"}, {"web", "page", "d2", "c2"}, {"web", "pd2", "d1", "c3"}, {"api", "page", "d1", "c4"},
			} {
				if err := tx.PutOpen(o.svc, o.act, o.dedup, r(o.canary)); err != nil {
					return err
				}
			}
			return tx.DeleteOpen("web", "page", "d2")
		})
		view(t, s, func(tx guard.Tx) error {
			got, err := tx.OpenIncidents("web")
			want := map[string]map[string]guard.OpenIncident{"page": {"d1": r("c1")}, "pd2": {"d1": r("c3")}}
			if !reflect.DeepEqual(norm(got), norm(want)) {
				t.Errorf("web's open incidents: %+v", got)
			}
			if got, err := tx.OpenIncidents("we"); err != nil || len(got) != 0 {
				t.Errorf("a service named like another's prefix: %+v %v", got, err)
			}
			return err
		})
	})

	t.Run("an error from fn changes nothing", func(t *testing.T) {
		s := open(t)
		boom := errors.New("boom")
		err := s.Update(t.Context(), func(tx guard.Tx) error {
			if err := tx.PutActuation(act("c1/on_fail/rollback", guard.StatePending)); err != nil {
				return err
			}
			if err := tx.MarkPlanned("c1", guard.PlannedRecord{Time: t0}); err != nil {
				return err
			}
			if err := tx.AppendAudit(&guard.Entry{Time: t0, Kind: guard.KindAction}); err != nil {
				return err
			}
			if err := tx.AddHistory("web", guard.Fired{Time: t0, Actuator: "rollback", Canary: "c1"}); err != nil {
				return err
			}
			if err := tx.PutOpen("web", "page", "d", guard.OpenIncident{Canary: "c1"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want fn's error", err)
		}
		// (History drops old entries: it is a write, so this looks in an Update.)
		update(t, s, func(tx guard.Tx) error {
			if _, err := tx.Actuation("c1/on_fail/rollback"); !errors.Is(err, guard.ErrNoActuation) {
				t.Errorf("action: %v", err)
			}
			if ok, err := tx.Planned("c1"); err != nil || ok {
				t.Errorf("planned: %v %v", ok, err)
			}
			if es, err := tx.Audit(t.Context(), guard.Query{Limit: 10}); err != nil || len(es) != 0 {
				t.Errorf("audit: %+v %v", es, err)
			}
			if h, err := tx.History("web", time.Time{}, time.Time{}); err != nil || len(h) != 0 {
				t.Errorf("history: %+v %v", h, err)
			}
			if o, err := tx.OpenIncidents("web"); err != nil || len(o) != 0 {
				t.Errorf("open: %+v %v", o, err)
			}
			return nil
		})
	})

	t.Run("a view refuses writes", func(t *testing.T) {
		s := open(t)
		err := s.View(t.Context(), func(tx guard.Tx) error {
			return tx.PutActuation(act("c1/on_fail/rollback", guard.StatePending))
		})
		if err == nil {
			t.Fatal("a write in a View succeeded")
		}
		view(t, s, func(tx guard.Tx) error {
			if _, err := tx.Actuation("c1/on_fail/rollback"); !errors.Is(err, guard.ErrNoActuation) {
				t.Errorf("the refused write is there: %v", err)
			}
			return nil
		})
	})

	// Writers never interleave: each read-modify-write sees the one before it, or actions
	// would be claimed twice (the guard's exactly-once rests on it).
	t.Run("writers one at a time", func(t *testing.T) {
		s := open(t)
		const key = "c1/on_fail/rollback"
		update(t, s, func(tx guard.Tx) error {
			a := act(key, guard.StatePending)
			a.Attempts = 0
			return tx.PutActuation(a)
		})
		const writers, each = 6, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					errs <- s.Update(context.Background(), func(tx guard.Tx) error {
						a, err := tx.Actuation(key)
						if err != nil {
							return err
						}
						a.Attempts++
						time.Sleep(time.Millisecond) // widen the window a lost update needs
						return tx.PutActuation(a)
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		view(t, s, func(tx guard.Tx) error {
			a, err := tx.Actuation(key)
			if err == nil && a.Attempts != writers*each {
				t.Errorf("attempts %d after %d increments: updates were lost", a.Attempts, writers*each)
			}
			return err
		})
	})
}

func keys(as []*guard.Actuation) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Key)
	}
	return strings.Join(out, ",")
}

func sameFired(got, want []guard.Fired) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Actuator != w.Actuator || g.Canary != w.Canary || g.Notification != w.Notification {
			return false
		}
	}
	return true
}

// norm makes the incidents' times comparable with DeepEqual (one location).
func norm(m map[string]map[string]guard.OpenIncident) map[string]map[string]guard.OpenIncident {
	out := map[string]map[string]guard.OpenIncident{}
	for a, byDedup := range m {
		out[a] = map[string]guard.OpenIncident{}
		for d, r := range byDedup {
			r.Time = r.Time.UTC()
			out[a][d] = r
		}
	}
	return out
}
