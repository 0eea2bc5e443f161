package rollout

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mycelium-mesh/mesh/core/boltfile"
	bolt "go.etcd.io/bbolt"
)

// DefaultKeep is how many rollouts of one app a Store keeps.
const DefaultKeep = 50

// ErrNotFound is returned for a rollout the store does not hold.
var ErrNotFound = errors.New("rollout not found")

var (
	bucketRollouts = []byte("rollouts") // seq (8 bytes, big endian) → JSON Rollout
	bucketApps     = []byte("apps")     // app → bucket of seq → nothing, oldest first
)

// Store persists rollouts in their own bbolt file. Every write is one
// transaction synced to disk before it returns, so a rollout recorded as
// progressing is still there after the mesh is killed.
type Store struct {
	db     *bolt.DB
	keep   int
	good   goodIndex
	writes atomic.Uint64 // committed write transactions, see Writes
}

// Writes returns how many write transactions (each one synced to disk) the
// store committed since it was opened: a deploy costs one.
func (s *Store) Writes() uint64 { return s.writes.Load() }

// ErrCorrupt is returned by Open when the store's file is damaged: not a
// bbolt file, truncated, with broken pages, or with records that do not
// decode. The error names the file and what to do; nothing was written to it.
var ErrCorrupt = errors.New("rollout store is corrupt")

func corruptError(path string, cause any) error {
	return fmt.Errorf("%w: %s: %v; nothing was changed. Restore the file from a backup, or move it aside to start with an empty rollout history (rollouts in progress are then not resumed, and no app has a last good digest to revert to until a rollout of it succeeds)", ErrCorrupt, path, boltfile.Damaged(path, cause).Cause)
}

// Open opens or creates the store at path, keeping the newest keep rollouts
// of each app (DefaultKeep when keep <= 0). It waits a second at most for
// another process holding the file. The file is checked as boltfile.Open
// does and every record decoded before anything is written, so a damaged
// file is an ErrCorrupt, never a panic.
func Open(path string, keep int) (*Store, error) {
	if keep <= 0 {
		keep = DefaultKeep
	}
	db, err := boltfile.Open(path)
	if err != nil {
		var d *boltfile.DamageError
		if errors.As(err, &d) {
			return nil, corruptError(path, d.Cause)
		}
		return nil, fmt.Errorf("open rollout store %s: %w", path, err)
	}
	if err := boltfile.Guard(path, func() error { return checkRecords(db) }); err != nil {
		boltfile.CloseQuietly(db)
		var d *boltfile.DamageError
		if errors.As(err, &d) {
			return nil, corruptError(path, d.Cause)
		}
		return nil, corruptError(path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRollouts, bucketApps} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init rollout store %s: %w", path, err)
	}
	st := &Store{db: db, keep: keep}
	if err := db.View(st.good.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("index rollout store %s: %w", path, err)
	}
	return st, nil
}

// checkRecords decodes every rollout and checks it against its key, and
// that every app index names rollouts of that app.
func checkRecords(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketRollouts)
		if all == nil {
			return nil // a new store
		}
		if err := all.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("rollout key %x is not a sequence number", k)
			}
			r, err := getRollout(all, k)
			if err != nil {
				return err
			}
			if err := r.check(binary.BigEndian.Uint64(k)); err != nil {
				return fmt.Errorf("rollout %d: %w", binary.BigEndian.Uint64(k), err)
			}
			return nil
		}); err != nil {
			return err
		}
		apps := tx.Bucket(bucketApps)
		if apps == nil {
			return nil
		}
		return apps.ForEach(func(app, v []byte) error {
			idx := apps.Bucket(app)
			if idx == nil {
				return fmt.Errorf("app index %q is not a bucket", app)
			}
			return idx.ForEach(func(k, _ []byte) error {
				if len(k) != 8 {
					return fmt.Errorf("app index %q: key %x is not a sequence number", app, k)
				}
				if v := all.Get(k); v == nil {
					return fmt.Errorf("app index %q names rollout %d, which is missing", app, binary.BigEndian.Uint64(k))
				}
				return nil
			})
		})
	})
}

// check reports what makes a decoded rollout stored under seq unusable.
func (r *Rollout) check(seq uint64) error {
	switch {
	case r.Seq != seq:
		return fmt.Errorf("the record says sequence %d", r.Seq)
	case r.App == "" || r.ID != fmt.Sprintf("%s-%d", r.App, seq):
		return fmt.Errorf("the record names id %q of app %q", r.ID, r.App)
	case !r.State.Valid():
		return fmt.Errorf("unknown state %q", r.State)
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// ParseID returns the sequence number of a rollout ID.
func ParseID(id string) (uint64, error) {
	i := strings.LastIndexByte(id, '-')
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%w: bad id %q", ErrNotFound, id)
	}
	return seq, nil
}

// Create assigns r its sequence and ID and stores it, with the rollouts in
// also (say, the one r supersedes, with detail naming r: edit it in the
// callback) saved in the same transaction. edit, when not nil, runs once r
// has its ID. When the app then has more than the kept number of rollouts,
// its oldest finished ones are dropped.
func (s *Store) Create(r *Rollout, edit func(*Rollout) []Rollout) error {
	var saved []Rollout // what the transaction wrote, for the index once it committed
	var dropped []uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		saved, dropped = saved[:0], dropped[:0]
		all := tx.Bucket(bucketRollouts)
		seq, err := all.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		r.ID = fmt.Sprintf("%s-%d", r.App, seq)
		if err := putRollout(all, *r); err != nil {
			return err
		}
		saved = append(saved, *r)
		if edit != nil {
			for _, o := range edit(r) {
				if all.Get(seqKey(o.Seq)) == nil {
					return fmt.Errorf("%w: %s", ErrNotFound, o.ID)
				}
				if err := putRollout(all, o); err != nil {
					return err
				}
				saved = append(saved, o)
			}
		}
		idx, err := tx.Bucket(bucketApps).CreateBucketIfNotExists([]byte(r.App))
		if err != nil {
			return err
		}
		if err := idx.Put(seqKey(seq), nil); err != nil {
			return err
		}
		dropped, err = s.pruneLocked(all, idx, dropped)
		return err
	})
	if err != nil {
		return fmt.Errorf("create rollout of %s: %w", r.App, err)
	}
	s.writes.Add(1)
	for _, o := range saved {
		s.good.set(o)
	}
	s.good.drop(r.App, dropped)
	return nil
}

// pruneLocked drops the oldest finished rollouts of one app index beyond
// the kept number; an active rollout is never dropped. It returns the
// sequences it dropped, appended to dropped.
func (s *Store) pruneLocked(all, idx *bolt.Bucket, dropped []uint64) ([]uint64, error) {
	n := 0 // Stats would miss this transaction's writes
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	var drop [][]byte
	for k, _ := c.First(); k != nil && n-len(drop) > s.keep; k, _ = c.Next() {
		r, err := getRollout(all, k)
		if err == nil && !r.State.Terminal() {
			continue
		}
		drop = append(drop, append([]byte(nil), k...))
	}
	for _, k := range drop {
		if err := idx.Delete(k); err != nil {
			return dropped, err
		}
		if err := all.Delete(k); err != nil {
			return dropped, err
		}
		dropped = append(dropped, binary.BigEndian.Uint64(k))
	}
	return dropped, nil
}

// Save replaces a stored rollout with r.
func (s *Store) Save(r Rollout) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketRollouts)
		if all.Get(seqKey(r.Seq)) == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, r.ID)
		}
		return putRollout(all, r)
	})
	if err != nil {
		return fmt.Errorf("save rollout %s: %w", r.ID, err)
	}
	s.writes.Add(1)
	s.good.set(r)
	return nil
}

// Get returns the rollout with the given ID.
func (s *Store) Get(id string) (Rollout, error) {
	seq, err := ParseID(id)
	if err != nil {
		return Rollout{}, err
	}
	var r Rollout
	err = s.db.View(func(tx *bolt.Tx) error {
		r, err = getRollout(tx.Bucket(bucketRollouts), seqKey(seq))
		return err
	})
	if err == nil && r.ID != id {
		err = fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r, err
}

// History returns up to n rollouts of app, newest first (all kept ones when
// n <= 0).
func (s *Store) History(app string, n int) ([]Rollout, error) {
	var out []Rollout
	err := s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketApps).Bucket([]byte(app))
		if idx == nil {
			return nil
		}
		all := tx.Bucket(bucketRollouts)
		c := idx.Cursor()
		for k, _ := c.Last(); k != nil && (n <= 0 || len(out) < n); k, _ = c.Prev() {
			r, err := getRollout(all, k)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", app, err)
	}
	return out, nil
}

// Active returns every rollout not in a terminal state, oldest first.
func (s *Store) Active() ([]Rollout, error) {
	var out []Rollout
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
			var r Rollout
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode rollout %x: %w", k, err)
			}
			if !r.State.Terminal() {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list active rollouts: %w", err)
	}
	return out, nil
}

func putRollout(b *bolt.Bucket, r Rollout) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(seqKey(r.Seq), v)
}

func getRollout(b *bolt.Bucket, k []byte) (Rollout, error) {
	v := b.Get(k)
	if v == nil {
		return Rollout{}, fmt.Errorf("%w: seq %d", ErrNotFound, binary.BigEndian.Uint64(k))
	}
	var r Rollout
	if err := json.Unmarshal(v, &r); err != nil {
		return Rollout{}, fmt.Errorf("decode rollout %d: %w", binary.BigEndian.Uint64(k), err)
	}
	return r, nil
}
