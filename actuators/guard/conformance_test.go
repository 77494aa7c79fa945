package guard_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/actuators/guard/guardtest"
	"github.com/canaryd/canaryd/analysis/boltstore"
)

// The bbolt store passes the conformance suite the PostgreSQL one (pgguard) runs too.
func TestBoltStoreConformance(t *testing.T) {
	guardtest.Run(t, func(t *testing.T) guard.Store {
		st, err := boltstore.Open(filepath.Join(t.TempDir(), "canaryd.db"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := guard.NewBoltStore(st.DB())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
