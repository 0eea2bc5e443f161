// Package boltfile opens bbolt files that may have been damaged — by a
// disk, a crash of the machine, or an operator's editor — without letting
// the damage crash the process that opens them.
//
// bbolt reads its file through a memory map and trusts the page structure
// it finds: a damaged file can make it panic on an assertion, or fault on a
// page that lies past the end of a truncated file. Open therefore checks a
// file while it opens it, before anything is written to it: the store's
// size against the file's, every record read once (so every reachable page
// is touched), and bbolt's own consistency check (tx.Check), with memory
// faults turned into panics and panics into a *DamageError. Callers word
// that error for their operators: which file, and what to do about it.
//
// An empty or missing file is not damaged: bbolt creates a new store in it.
package boltfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DamageError says that the bbolt file at Path is damaged, and how.
type DamageError struct {
	Path  string
	Cause string
}

func (e *DamageError) Error() string { return e.Path + ": " + e.Cause }

// Damaged returns the *DamageError for path with cause. A file shorter than
// the store it holds is said to be truncated, whatever broke first.
func Damaged(path string, cause any) *DamageError {
	if span, size, ok := Truncated(path); ok {
		return &DamageError{Path: path, Cause: fmt.Sprintf("truncated: the store spans %d bytes, the file has %d", span, size)}
	}
	return &DamageError{Path: path, Cause: fmt.Sprint(cause)}
}

// Guard runs fn with memory faults turned into panics and a panic turned
// into the *DamageError of path: for reading the records of a store opened
// with Open, which may still hold values that break their decoders.
func Guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = Damaged(path, fmt.Sprintf("reading it failed: %v", r))
		}
	}()
	return fn()
}

// Open opens (or creates) the bbolt file at path with mode 0600, waiting a
// second at most for another process holding it, and checks it as the
// package documentation says. A damaged file is a *DamageError, and is left
// as it was; a path that is not a regular file, or a lock not given up in
// time, is an ordinary error.
func Open(path string) (db *bolt.DB, err error) {
	fi, statErr := os.Stat(path)
	if statErr == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: not a regular file", path)
	}
	err = Guard(path, func() error {
		var oerr error
		db, oerr = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if oerr != nil {
			var pe *fs.PathError
			if errors.Is(oerr, bolterrors.ErrTimeout) || errors.As(oerr, &pe) {
				return fmt.Errorf("open %s: %w", path, oerr)
			}
			return Damaged(path, oerr)
		}
		return check(db, path)
	})
	if err != nil {
		CloseQuietly(db)
		return nil, err
	}
	return db, nil
}

// check verifies a freshly opened store before anything is written.
func check(db *bolt.DB, path string) error {
	return db.View(func(tx *bolt.Tx) error {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if tx.Size() > fi.Size() {
			return Damaged(path, fmt.Sprintf("truncated: the store spans %d bytes, the file has %d", tx.Size(), fi.Size()))
		}
		// Read every record: each reachable page is touched here, where a
		// fault is a recoverable panic, before tx.Check walks them.
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walk(b)
		}); err != nil {
			return Damaged(path, err)
		}
		// Read the whole channel: Check's goroutine ends only when drained.
		var first error
		n := 0
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
			n++
		}
		if first != nil {
			return Damaged(path, fmt.Sprintf("consistency check: %v (%d problem(s))", first, n))
		}
		return nil
	})
}

// walk reads every record of b and of the buckets nested in it.
func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walk(nb)
			}
		}
		return nil
	})
}

// CloseQuietly closes db, if any, ignoring the error and any panic a
// damaged file causes on the way.
func CloseQuietly(db *bolt.DB) {
	if db == nil {
		return
	}
	defer func() { _ = recover() }()
	_ = db.Close()
}
