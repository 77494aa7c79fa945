package boltstore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/storetest"
)

func TestStore(t *testing.T) {
	var last string
	open := func(t *testing.T) analysis.Store {
		last = filepath.Join(t.TempDir(), "sub", "canaryd.db")
		s, err := Open(last, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reopen := func(t *testing.T) analysis.Store {
		s, err := Open(last, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, open, reopen)
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "canaryd.db")
	s, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := Open(path, 50*time.Millisecond); err == nil {
		t.Fatal("a second Open of a locked file must fail")
	}
}
