package fabric

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mesh/core/boltfile"
	bolt "go.etcd.io/bbolt"
)

// ErrCorrupt is returned by New when DataDir/fabric.db is damaged: not a
// bbolt file, truncated, with broken pages or with records that do not
// decode. The error names the file; nothing was written to it.
var ErrCorrupt = errors.New("fabric store is corrupt")

// corruptError words a damaged store for an operator. A file shorter than
// the store it holds is said to be truncated, whatever broke first.
func corruptError(path string, cause any) error {
	return fmt.Errorf("%w: %s: %v; nothing was changed. Restore the file from a backup, or move it aside to start with an empty fabric (its plans and budgets are then gone)", ErrCorrupt, path, boltfile.Damaged(path, cause).Cause)
}

// openStore opens the bbolt store at path, checked by boltfile.Open so that
// no damage panics or faults, and loads its plans and budgets; a record
// that does not decode or validate is damage too.
func openStore(path string) (db *bolt.DB, plans map[string]Plan, budgets map[string]Budget, err error) {
	db, err = boltfile.Open(path)
	if err != nil {
		var d *boltfile.DamageError
		if errors.As(err, &d) {
			return nil, nil, nil, corruptError(path, d.Cause)
		}
		return nil, nil, nil, err
	}
	plans, budgets = map[string]Plan{}, map[string]Budget{}
	err = boltfile.Guard(path, func() error {
		return db.Update(func(tx *bolt.Tx) error {
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
	})
	if err != nil {
		boltfile.CloseQuietly(db)
		var d *boltfile.DamageError
		if errors.As(err, &d) {
			err = corruptError(path, d.Cause)
		}
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("load %s: %w", path, err)
		}
		return nil, nil, nil, err
	}
	return db, plans, budgets, nil
}
