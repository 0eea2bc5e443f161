package fabric

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt is returned by New when DataDir/fabric.db is damaged: not a
// bbolt file, truncated, with broken pages or with records that do not
// decode. The error names the file; nothing was written to it.
var ErrCorrupt = errors.New("fabric store is corrupt")

// corruptError words a damaged store for an operator. A file shorter than
// the store it holds is said to be truncated, whatever broke first.
func corruptError(path string, cause any) error {
	if span, size, ok := truncatedSpan(path); ok {
		cause = fmt.Sprintf("truncated: the store spans %d bytes, the file has %d", span, size)
	}
	return fmt.Errorf("%w: %s: %v; nothing was changed. Restore the file from a backup, or move it aside to start with an empty fabric (its plans and budgets are then gone)", ErrCorrupt, path, cause)
}

// openStore opens the bbolt store at path and loads its plans and budgets.
//
// bbolt reads its file through a memory map and trusts the page structure it
// finds; a damaged file can make it panic, or fault on a page that lies past
// the end of a truncated file. openStore therefore checks the file while it
// opens it: the store's size against the file's, every record read once (so
// every reachable page is touched), bbolt's own consistency check (tx.Check),
// with faults turned into panics and panics into ErrCorrupt.
func openStore(path string) (db *bolt.DB, plans map[string]Plan, budgets map[string]Budget, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			closeQuietly(db)
			db, plans, budgets, err = nil, nil, nil, corruptError(path, fmt.Sprintf("reading it failed: %v", r))
		}
	}()
	fi, statErr := os.Stat(path)
	if statErr == nil && !fi.Mode().IsRegular() {
		return nil, nil, nil, fmt.Errorf("open %s: not a regular file", path)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		var pe *fs.PathError
		if errors.Is(err, bolterrors.ErrTimeout) || errors.As(err, &pe) {
			return nil, nil, nil, fmt.Errorf("open %s: %w", path, err)
		}
		return nil, nil, nil, corruptError(path, err)
	}
	if err := checkStore(db, path); err != nil {
		closeQuietly(db)
		return nil, nil, nil, err
	}
	plans, budgets = map[string]Plan{}, map[string]Budget{}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketPlans, bucketBudgets} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s in %s: %w", name, path, err)
			}
		}
		if err := tx.Bucket(bucketPlans).ForEach(func(k, v []byte) error {
			var p Plan
			if err := json.Unmarshal(v, &p); err != nil {
				return corruptError(path, fmt.Sprintf("plan %q: %v", k, err))
			}
			if err := p.Validate(); err != nil {
				return corruptError(path, fmt.Sprintf("plan %q: %v", k, err))
			}
			if p.AppName != string(k) {
				return corruptError(path, fmt.Sprintf("plan %q: the record names app %q", k, p.AppName))
			}
			plans[p.AppName] = p
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketBudgets).ForEach(func(k, v []byte) error {
			var b Budget
			if err := json.Unmarshal(v, &b); err != nil {
				return corruptError(path, fmt.Sprintf("budget %q: %v", k, err))
			}
			if err := b.Validate(); err != nil {
				return corruptError(path, fmt.Sprintf("budget %q: %v", k, err))
			}
			if b.AppName != string(k) {
				return corruptError(path, fmt.Sprintf("budget %q: the record names app %q", k, b.AppName))
			}
			budgets[b.AppName] = b
			return nil
		})
	})
	if err != nil {
		closeQuietly(db)
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("load %s: %w", path, err)
		}
		return nil, nil, nil, err
	}
	return db, plans, budgets, nil
}

// checkStore verifies a freshly opened store before anything is written.
func checkStore(db *bolt.DB, path string) error {
	return db.View(func(tx *bolt.Tx) error {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if tx.Size() > fi.Size() {
			return corruptError(path, fmt.Sprintf("truncated: the store spans %d bytes, the file has %d", tx.Size(), fi.Size()))
		}
		// Read every record: each reachable page is touched here, where a
		// fault is a recoverable panic, before tx.Check walks them.
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { return nil })
		}); err != nil {
			return corruptError(path, err)
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
			return corruptError(path, fmt.Sprintf("consistency check: %v (%d problem(s))", first, n))
		}
		return nil
	})
}

func closeQuietly(db *bolt.DB) {
	if db == nil {
		return
	}
	defer func() { _ = recover() }()
	_ = db.Close()
}
