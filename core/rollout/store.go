package rollout

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	db   *bolt.DB
	keep int
}

// Open opens or creates the store at path, keeping the newest keep rollouts
// of each app (DefaultKeep when keep <= 0). It waits a second at most for
// another process holding the file.
func Open(path string, keep int) (*Store, error) {
	if keep <= 0 {
		keep = DefaultKeep
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open rollout store %s: %w", path, err)
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
	return &Store{db: db, keep: keep}, nil
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
	err := s.db.Update(func(tx *bolt.Tx) error {
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
		if edit != nil {
			for _, o := range edit(r) {
				if all.Get(seqKey(o.Seq)) == nil {
					return fmt.Errorf("%w: %s", ErrNotFound, o.ID)
				}
				if err := putRollout(all, o); err != nil {
					return err
				}
			}
		}
		idx, err := tx.Bucket(bucketApps).CreateBucketIfNotExists([]byte(r.App))
		if err != nil {
			return err
		}
		if err := idx.Put(seqKey(seq), nil); err != nil {
			return err
		}
		return s.pruneLocked(all, idx)
	})
	if err != nil {
		return fmt.Errorf("create rollout of %s: %w", r.App, err)
	}
	return nil
}

// pruneLocked drops the oldest finished rollouts of one app index beyond
// the kept number; an active rollout is never dropped.
func (s *Store) pruneLocked(all, idx *bolt.Bucket) error {
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
			return err
		}
		if err := all.Delete(k); err != nil {
			return err
		}
	}
	return nil
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
