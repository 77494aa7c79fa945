package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// DamagedError says that the store file cannot be used as it is: bbolt would crash on it
// (SIGBUS past the end of a truncated file, an assertion on a corrupted page), so canaryd
// refuses to start and says what the operator can do.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store %s is damaged (%s): restore it from a backup, or move it aside (mv %s %s.damaged) to start with an empty store",
		e.Path, e.Reason, e.Path, e.Path)
}

// The parts of bbolt's on-disk format the pre-check reads (bbolt's own meta page: a
// 16-byte page header, then magic, version, page size, flags, the root bucket, the
// freelist page, the high-water mark, the transaction id and an FNV-64a checksum of what
// precedes it). bbolt checks the meta pages itself but then maps the file trusting the
// high-water mark, and reads past the end of a truncated file fault.
const (
	metaMagic     = 0xED0CDAED
	metaVersion   = 2
	pageHeader    = 16
	metaSumOffset = 56 // bytes of the meta that the checksum covers
	metaLen       = metaSumOffset + 8
)

type metaPage struct {
	pageSize uint32
	hwm      uint64 // pages in use: the file must hold at least hwm*pageSize bytes
	txid     uint64
}

func parseMeta(b []byte) (metaPage, bool) {
	if len(b) < pageHeader+metaLen {
		return metaPage{}, false
	}
	m := b[pageHeader : pageHeader+metaLen]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != metaVersion {
		return metaPage{}, false
	}
	h := fnv.New64a()
	h.Write(m[:metaSumOffset])
	if h.Sum64() != le.Uint64(m[metaSumOffset:]) {
		return metaPage{}, false
	}
	mp := metaPage{pageSize: le.Uint32(m[8:]), hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if mp.pageSize < 512 || mp.pageSize > 1<<20 || mp.pageSize&(mp.pageSize-1) != 0 {
		return metaPage{}, false
	}
	return mp, true
}

// preCheck reads the two meta pages and compares the file's size with the high-water
// mark of the meta bbolt would use (the valid one with the larger transaction id). A file
// that does not exist or is empty is new, not damaged.
func preCheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("boltstore: stat %s: %w", path, err)
	}
	size := info.Size()
	if size == 0 {
		return nil
	}
	first := make([]byte, pageHeader+metaLen)
	if _, err := f.ReadAt(first, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("boltstore: read %s: %w", path, err)
	}
	var metas []metaPage
	m0, ok0 := parseMeta(first)
	if ok0 {
		metas = append(metas, m0)
	}
	// The second meta sits one page in; without a valid first one, try the usual sizes.
	sizes := []int64{4096, 8192, 16384, 32768, 65536}
	if ok0 {
		sizes = []int64{int64(m0.pageSize)}
	}
	for _, ps := range sizes {
		b := make([]byte, pageHeader+metaLen)
		if n, _ := f.ReadAt(b, ps); n < len(b) {
			continue
		}
		if m1, ok := parseMeta(b); ok && int64(m1.pageSize) == ps {
			metas = append(metas, m1)
			break
		}
	}
	if len(metas) == 0 {
		return &DamagedError{Path: path, Reason: fmt.Sprintf("no valid bbolt meta page in its %d bytes", size)}
	}
	use := metas[0]
	for _, m := range metas[1:] {
		if m.txid > use.txid {
			use = m
		}
	}
	if need := int64(use.hwm) * int64(use.pageSize); size < need {
		return &DamagedError{Path: path, Reason: fmt.Sprintf("truncated: %d bytes, its last transaction needs %d", size, need)}
	}
	return nil
}

// checkFile makes sure bbolt can open path without crashing, before the daemon opens it
// for writing: the size pre-check, then a walk of every bucket and key on a read-only
// handle (corrupted pages make bbolt panic or fault; here that happens on our goroutine,
// where it is caught), then bbolt's own consistency check (Tx.Check: pages referenced
// twice, keys out of order, pages lost). The walk stops at the deadline; Tx.Check cannot
// be stopped once started, so it runs only when the walk suggests it fits in what is left.
// Whatever is cut short is logged, and the store opens anyway.
func checkFile(path string, lockTimeout, budget time.Duration, log *zap.Logger) error {
	if err := preCheck(path); err != nil {
		return err
	}
	if info, err := os.Stat(path); err != nil || info.Size() == 0 {
		return nil // new: bbolt creates it
	}
	start := time.Now()
	deadline := start.Add(budget)
	db, err := openRO(path, lockTimeout, false)
	if err != nil {
		return err
	}
	done, werr := walk(db, deadline)
	db.Close()
	if werr != nil {
		return &DamagedError{Path: path, Reason: werr.Error()}
	}
	walked := time.Since(start)
	if !done {
		log.Warn("store check cut short at its deadline; the rest of the file was not checked",
			zap.String("file", path), zap.Duration("deadline", budget))
		return nil
	}
	// Tx.Check reads each page about twice, plus the freelist rebuild at open: ~3 walks.
	if rest := time.Until(deadline); 3*walked > rest {
		log.Warn("store check cut short: every page was read, but bbolt's consistency check would not fit the deadline",
			zap.String("file", path), zap.Duration("deadline", budget), zap.Duration("walk", walked))
		return nil
	}
	// Loading the freelist at open rebuilds it by walking the pages on a goroutine of
	// bbolt's that nothing recovers: the walk above has just shown that it reads them.
	db, err = openRO(path, lockTimeout, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var problems []error
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			problems = append(problems, e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: check %s: %w", path, err)
	}
	if len(problems) > 0 {
		reason := oneLine(problems[0].Error())
		if len(problems) > 1 {
			reason += fmt.Sprintf(", and %d more problems", len(problems)-1)
		}
		return &DamagedError{Path: path, Reason: reason}
	}
	log.Debug("store checked", zap.String("file", path), zap.Duration("took", time.Since(start)))
	return nil
}

// openRO opens path read-only, turning a panic of bbolt's into a DamagedError.
func openRO(path string, lockTimeout time.Duration, preload bool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &DamagedError{Path: path, Reason: oneLine(fmt.Sprint(r))}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout, PreLoadFreelist: preload, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, &DamagedError{Path: path, Reason: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return db, nil
}

// errCutShort stops the walk at its deadline.
var errCutShort = errors.New("cut short")

// walk reads every key and value of every bucket, nested ones included, on its own
// goroutine so that a fault on a corrupted page is a panic it recovers. It reports whether
// it got through the whole file before the deadline, and what was wrong if anything.
func walk(db *bolt.DB, deadline time.Time) (done bool, err error) {
	type result struct {
		done bool
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		debug.SetPanicOnFault(true)
		var where string
		defer func() {
			if r := recover(); r != nil {
				ch <- result{err: fmt.Errorf("reading %s: %s", where, oneLine(fmt.Sprint(r)))}
			}
		}()
		n := 0
		var visit func(name string, b *bolt.Bucket) error
		visit = func(name string, b *bolt.Bucket) error {
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				where = fmt.Sprintf("bucket %s", name)
				if n++; n%1024 == 0 && time.Now().After(deadline) {
					return errCutShort
				}
				if v == nil {
					if child := b.Bucket(k); child != nil {
						if err := visit(name+"/"+string(k), child); err != nil {
							return err
						}
					}
				}
			}
			return nil
		}
		err := db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				where = "bucket " + string(name)
				return visit(string(name), b)
			})
		})
		switch {
		case errors.Is(err, errCutShort):
			ch <- result{}
		case err != nil:
			ch <- result{err: err}
		default:
			ch <- result{done: true}
		}
	}()
	r := <-ch
	return r.done, r.err
}

// oneLine keeps a reason to one short line: it ends the daemon's single line of stderr.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
