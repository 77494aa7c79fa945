package analysis

import (
	"context"
	"fmt"
	"sync"

	"github.com/canaryd/canaryd/config"
)

// SnapshotSource reads a stored analysis snapshot by its hash; every Store is one.
type SnapshotSource interface {
	Analysis(ctx context.Context, hash string) ([]byte, error)
}

// Snapshots is the one cache of parsed analysis snapshots: the scheduler judges by them
// and the safety layer plans by them, so the daemon builds one and gives it to both
// (Options.Snapshots, guard.Options.Analyses). A snapshot never changes under its hash,
// so entries never go stale.
type Snapshots struct {
	src   SnapshotSource
	mu    sync.Mutex
	snaps map[string]*config.Analysis
}

// NewSnapshots makes an empty cache over src.
func NewSnapshots(src SnapshotSource) *Snapshots {
	return &Snapshots{src: src, snaps: map[string]*config.Analysis{}}
}

// Analysis returns the analysis snapshot c is judged by (the one it was registered with,
// whatever the config says now), parsing it once.
func (s *Snapshots) Analysis(ctx context.Context, c *Canary) (*config.Analysis, error) {
	s.mu.Lock()
	a, ok := s.snaps[c.AnalysisHash]
	s.mu.Unlock()
	if ok {
		return a, nil
	}
	src, err := s.src.Analysis(ctx, c.AnalysisHash)
	if err != nil {
		return nil, err
	}
	a, err = config.ParseAnalysis(c.Analysis, src)
	if err != nil {
		return nil, fmt.Errorf("analysis snapshot %s: %w", c.AnalysisHash, err)
	}
	s.remember(a)
	return a, nil
}

// remember caches an analysis a registration has just stored.
func (s *Snapshots) remember(a *config.Analysis) {
	s.mu.Lock()
	s.snaps[a.Hash] = a
	s.mu.Unlock()
}
