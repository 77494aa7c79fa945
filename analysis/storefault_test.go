package analysis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/metrics"
	apiv1 "github.com/canaryd/canaryd/web/api/v1"
)

// failingDisk wraps a store whose disk can be made full or read-only: writes then fail
// the way bbolt reports a failed write or fsync, reads still work.
type failingDisk struct {
	analysis.Store
	errno atomic.Value // syscall.Errno, or nil when the disk is healthy
}

func (f *failingDisk) fail() error {
	if e, ok := f.errno.Load().(syscall.Errno); ok && e != 0 {
		return fmt.Errorf("boltstore: write: %w", e)
	}
	return nil
}

func (f *failingDisk) Create(ctx context.Context, c *analysis.Canary, src []byte) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Create(ctx, c, src)
}

func (f *failingDisk) Update(ctx context.Context, id string, fn analysis.Mutation) (*analysis.Canary, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Store.Update(ctx, id, fn)
}

func (f *failingDisk) RecordInterval(ctx context.Context, r *analysis.IntervalResult, fn analysis.Mutation) (*analysis.Canary, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Store.RecordInterval(ctx, r, fn)
}

// TestStoreOnFailingDisk: with the disk full or read-only the daemon stays up, answers
// reads, refuses writes with a 503 that names the cause, retries the interval it could
// not record, and carries on once the disk is back — without losing or doubling one.
func TestStoreOnFailingDisk(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS} {
		t.Run(errno.Error(), func(t *testing.T) {
			h := newHarness(t)
			// The harness gives the config, clock, provider and store; its scheduler is
			// replaced by one on the wrapped store.
			h.sched.Stop(context.Background())
			disk := &failingDisk{Store: h.store}
			reg := prometheus.NewRegistry()
			sched := analysis.NewScheduler(analysis.Options{
				Store: disk, Clock: h.clock, Logger: zaptest.NewLogger(t), Metrics: analysis.NewMetrics(reg),
				Workers: 2, QueryTimeout: 200 * time.Millisecond, RetryDelay: 10 * time.Second,
			})
			sched.SetEnv(&analysis.Env{Config: h.cfg, Providers: map[string]metrics.Provider{"fake": h.prov}})
			if err := sched.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sched.Stop(context.Background()) })
			srv := httptest.NewServer(apiv1.New(apiv1.Options{Reader: sched, Registrar: sched, Operator: sched}))
			t.Cleanup(srv.Close)

			c, err := sched.Register(context.Background(), analysis.Registration{
				Name: "web", Analysis: "basic",
				Baseline: map[string]string{"track": "baseline", "signal": "ok"},
				Canary:   map[string]string{"track": "canary", "signal": "ok"},
			})
			if err != nil {
				t.Fatal(err)
			}
			disk.errno.Store(errno)

			// Writes: a 503 naming the disk's error; nothing stored.
			body := `{"name":"web2","analysis":"basic","baseline":{"track":"a","signal":"ok"},"canary":{"track":"b","signal":"ok"}}`
			resp, err := http.Post(srv.URL+"/api/v1/canaries", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var e map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e["error"], errno.Error()) || resp.Header.Get("Retry-After") == "" {
				t.Errorf("register on a failing disk: %d %v", resp.StatusCode, e)
			}
			// Reads: the canary, as it was.
			resp, err = http.Get(srv.URL + "/api/v1/canaries/" + c.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("read on a failing disk: %d", resp.StatusCode)
			}
			// The scheduler's intervals fail to record and are retried.
			deadline := time.Now().Add(20 * time.Second)
			for series(t, reg, "canaryd_store_errors_total")[""] < 2 {
				if time.Now().After(deadline) {
					t.Fatal("no store errors counted")
				}
				h.clock.Advance(10 * time.Second)
				time.Sleep(5 * time.Millisecond)
			}
			if d, err := sched.Get(context.Background(), c.ID); err != nil || len(d.Results) != 0 || d.Status != analysis.StatusRunning {
				t.Fatalf("during the failure: %v, %d intervals, %s", err, len(d.Results), d.Status)
			}

			// The disk is back: the canary runs to its end, every interval once.
			disk.errno.Store(syscall.Errno(0))
			for {
				d, err := sched.Get(context.Background(), c.ID)
				if err != nil {
					t.Fatal(err)
				}
				if d.Status.Final() {
					if d.Status != analysis.StatusPass || len(d.Results) != 4 || len(d.Actions) != 1 {
						t.Fatalf("after the disk came back: %s, %d intervals, %d actions: %s", d.Status, len(d.Results), len(d.Actions), d.Reason)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("canary did not end after the disk came back")
				}
				h.clock.Advance(10 * time.Second)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// losingStore acknowledges one recorded interval without keeping it, as a database that
// loses its last commits in a crash does (synchronous_commit off, an asynchronous standby
// promoted in its primary's place).
type losingStore struct {
	analysis.Store
	lose int // the interval to lose, once
	lost atomic.Bool
}

func (s *losingStore) RecordInterval(ctx context.Context, r *analysis.IntervalResult, fn analysis.Mutation) (*analysis.Canary, error) {
	if r.Index != s.lose || !s.lost.CompareAndSwap(false, true) {
		return s.Store.RecordInterval(ctx, r, fn)
	}
	c, err := s.Store.Get(ctx, r.CanaryID)
	if err != nil {
		return nil, err
	}
	if _, err := fn(c); err != nil { // applied to the answer only
		return nil, err
	}
	return c, nil
}

// A store that lost an interval it acknowledged: the scheduler, which queued the next,
// judges again from the store's next interval instead of waiting forever for it (it
// used to find "interval already judged" and never queue the lost one).
func TestStoreLostAcknowledgedInterval(t *testing.T) {
	h := newHarness(t)
	h.stop()
	var ls *losingStore
	h.options = func(o *analysis.Options) {
		ls = &losingStore{Store: o.Store, lose: 2}
		o.Store = ls
	}
	h.start()
	c := h.register("ok", "ok")
	h.until("the canary to end", h.ended(c.ID))
	d := h.get(c.ID)
	var idx []int
	for _, r := range d.Results {
		idx = append(idx, r.Index)
	}
	if !ls.lost.Load() || d.Status != analysis.StatusPass || fmt.Sprint(idx) != "[2 3 4 5]" {
		t.Errorf("lost once: %v; %s, intervals %v", ls.lost.Load(), d.Status, idx)
	}
}
