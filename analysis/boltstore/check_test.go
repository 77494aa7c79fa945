package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canaryd/canaryd/analysis"
)

// fillStore writes a store with enough canaries and intervals to span many pages and
// returns its path and the root page of the intervals bucket.
func fillStore(t *testing.T) (path string, root uint64, pageSize int, used int64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "canaryd.db")
	s, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.db.NoSync = true // the test's data need not survive a power cut
	ctx := t.Context()
	for i := range 60 {
		id := fmt.Sprintf("c%03d", i)
		c := &analysis.Canary{ID: id, Name: "web", Analysis: "a", AnalysisHash: "h", Status: analysis.StatusRunning, Intervals: 5, NextIndex: 1}
		if err := s.Create(ctx, c, []byte("src")); err != nil {
			t.Fatal(err)
		}
		for j := 1; j <= 5; j++ {
			pts := make([]analysis.TimeValue, 50)
			for k := range pts {
				pts[k] = analysis.TimeValue{float64(k * 1000), float64(k)}
			}
			r := &analysis.IntervalResult{CanaryID: id, Index: j, Points: []analysis.MetricPoints{{Metric: "m", Baseline: pts, Canary: pts}}}
			if _, err := s.RecordInterval(ctx, r, func(c *analysis.Canary) ([]analysis.Action, error) { c.NextIndex++; return nil, nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	pageSize = s.db.Info().PageSize
	if err := s.db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bktIntervals).RootPage())
		used = tx.Size()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, root, pageSize, used
}

// A truncated or corrupted file is a DamagedError naming the file and what to do, never
// a crash (bbolt faults past the end of a truncated file and asserts on bad pages).
func TestOpenDamaged(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, root uint64, pageSize int, used int64)
		want   string
	}{
		{"truncated to half of what it uses", func(t *testing.T, path string, _ uint64, _ int, used int64) {
			if err := os.Truncate(path, used/2); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"one page short", func(t *testing.T, path string, _ uint64, pageSize int, used int64) {
			if err := os.Truncate(path, used-int64(pageSize)); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"truncated inside the first meta page", func(t *testing.T, path string, _ uint64, _ int, _ int64) {
			if err := os.Truncate(path, 50); err != nil {
				t.Fatal(err)
			}
		}, "no valid bbolt meta page"},
		{"both meta pages overwritten", func(t *testing.T, path string, _ uint64, pageSize int, _ int64) {
			writeAt(t, path, 0, bytes.Repeat([]byte{0xAB}, 2*pageSize))
		}, "no valid bbolt meta page"},
		{"a bucket's root page overwritten", func(t *testing.T, path string, root uint64, pageSize int, _ int64) {
			writeAt(t, path, int64(root)*int64(pageSize), bytes.Repeat([]byte{0x5A}, pageSize))
		}, "bucket intervals"},
		{"a bucket's root page zeroed", func(t *testing.T, path string, root uint64, pageSize int, _ int64) {
			writeAt(t, path, int64(root)*int64(pageSize), make([]byte, pageSize))
		}, "bucket intervals"},
	}
	orig, root, pageSize, used := fillStore(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := copyFile(t, orig)
			tc.damage(t, path, root, pageSize, used)
			s, err := Open(path, time.Second)
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged file succeeded")
			}
			var de *DamagedError
			if !errors.As(err, &de) {
				t.Fatalf("want a DamagedError, got %T: %v", err, err)
			}
			msg := err.Error()
			for _, want := range []string{path, tc.want, "restore it from a backup", "mv " + path} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}

// An intact file opens, and a check cut short by its deadline still opens the store.
func TestOpenChecked(t *testing.T) {
	path, _, _, _ := fillStore(t)
	for _, budget := range []time.Duration{time.Minute, time.Nanosecond} {
		s, err := OpenWith(path, Options{LockTimeout: time.Second, CheckTimeout: budget})
		if err != nil {
			t.Fatalf("budget %s: %v", budget, err)
		}
		cs, err := s.List(t.Context(), "")
		if err != nil || len(cs) != 60 {
			t.Errorf("budget %s: %d canaries, %v", budget, len(cs), err)
		}
		s.Close()
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "canaryd.db")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}
